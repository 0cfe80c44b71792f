"""``python -m vtbench eval --run runs/NAME`` writes runs/NAME/eval.json: every protocol of
METHODS.md section 3 that the run's evaluation data supports (:func:`vtbench.eval.suite.evaluate`).

The evaluation data is the run's dataset in ``--split`` (default ``test``; narrated digits builds
it with the run's ``data_seed``, so its tasks are the training tasks). For the real formats the
files are the split: pass the held-out files with ``--data-path``/``--features-path`` (without
them the run's training files are evaluated, and the command says so).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ..data import build_dataset
from ..eval.suite import FEW_SHOT_EPISODES, PROTOCOLS, evaluate, flatten_metrics
from ..train import Run, TrainConfig, load_run
from ..train.batches import dataset_kwargs, load_training_data
from ..io import atomic_write
from ..train.checkpoint import METRICS, CheckpointError
from ..train.loop import build_model_for

EVAL_FILE = "eval.json"


def eval_dataset(config: TrainConfig, split: str = "test", data_path: str | None = None,
                 features_path: str | None = None):
    """The dataset a run is evaluated on: the run's data in ``split`` (real formats: the given files)."""
    changes = {k: v for k, v in (("data_path", data_path), ("features_path", features_path)) if v}
    if changes and config.data == "narrated-digits":
        raise ValueError(f"{' and '.join(changes)} (--data-path, --features-path) name real-format files: this run "
                         f"trained on generated narrated digits, which are evaluated on their own {split} split")
    if changes:
        config = config.replace(**changes)
    elif config.data != "narrated-digits" and not _split_is_a_subset(config):
        print(f"note: evaluating {config.data!r} on the run's training files ({config.data_path}); "
              "pass --data-path/--features-path for held-out ones", file=sys.stderr)
    dataset = build_dataset(config.data, split, **dataset_kwargs(config))
    if len(dataset) == 0:
        raise ValueError(f"the {config.data!r} {split} split is empty: nothing to evaluate")
    return dataset


def _split_is_a_subset(config: TrainConfig) -> bool:
    """YouCook2's official JSON holds every subset: the split picks one (vtbench.data)."""
    return config.data == "youcook2" and str(config.data_path).lower().endswith(".json")


def untrained_run(config: TrainConfig) -> Run:
    """The model ``train(config)`` would start from (same tokenizer, same seeded initialisation),
    never updated: the reference row of a comparison."""
    data = load_training_data(config)
    torch.manual_seed(config.seed)  # as the trainer does right before building the model
    model = build_model_for(config, data.tokenizer, data.input_dim)
    return Run(model.eval(), config, data.tokenizer, step=0, path=None)


def evaluate_loaded(run: Run, dataset, **options) -> dict:
    """Evaluate a loaded (or untrained) run on ``dataset``; ``options`` go to ``evaluate``."""
    result = evaluate(run.model, dataset, run.tokenizer, clip_len=run.config.clip_len,
                      max_words=run.config.max_words, seed=run.config.data_seed, **options)
    result["run"] = {"method": run.config.method, "seed": run.config.seed, "step": run.step,
                     "path": str(run.path) if run.path else None, "data": run.config.data,
                     "train_seconds": _train_seconds(run.path), "config": run.config.to_dict()}
    return result


def evaluate_run(run_dir, *, split: str = "test", data_path: str | None = None,
                 features_path: str | None = None, write: bool = True, **options) -> dict:
    """Load the run in ``run_dir`` (or its checkpoint file), evaluate it, and (``write``) save
    eval.json atomically in the run's folder."""
    run = load_run(run_dir)
    dataset = eval_dataset(run.config, split, data_path, features_path)
    result = evaluate_loaded(run, dataset, **options)
    result["run"]["split"] = split
    if write:
        write_json(run_folder(run_dir) / EVAL_FILE, result)
    return result


def run_folder(path) -> Path:
    """The folder of a run given as its folder or its checkpoint file."""
    path = Path(path)
    return path.parent if path.is_file() else path


def write_json(path: Path, obj) -> None:
    atomic_write(Path(path), lambda f: f.write((json.dumps(obj, indent=2) + "\n").encode()))


def _train_seconds(run_dir) -> float | None:
    """Training wall time from the run's metrics.jsonl (its last record), if any."""
    path = run_folder(run_dir) / METRICS if run_dir else None
    if path is None or not path.is_file():
        return None
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    try:
        return float(json.loads(lines[-1]).get("elapsed_s")) if lines else None
    except (ValueError, TypeError):
        return None


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vtbench eval",
                                description="Evaluate a trained run (writes RUN/eval.json).")
    p.add_argument("--run", required=True, help="run folder, e.g. runs/vt-twins")
    p.add_argument("--split", default="test", help="split of the run's dataset (default test)")
    p.add_argument("--data-path", help="real formats: the held-out captions/annotations to evaluate on")
    p.add_argument("--features-path", help="real formats: the held-out features folder")
    p.add_argument("--protocols",
                   help=f"comma-separated subset of: {', '.join(PROTOCOLS)} (default: all the data supports)")
    p.add_argument("--max-videos", type=int, help="evaluate on the first N videos only")
    p.add_argument("--episodes", type=int, default=FEW_SHOT_EPISODES, help=f"few-shot episodes (default {FEW_SHOT_EPISODES})")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    options = {"few_shot_episodes": args.episodes, "max_videos": args.max_videos}
    if args.protocols:
        options["protocols"] = [p.strip() for p in args.protocols.split(",") if p.strip()]
    try:
        if not Path(args.run).exists():
            raise FileNotFoundError(f"no run folder {args.run}")
        result = evaluate_run(args.run, split=args.split, data_path=args.data_path,
                              features_path=args.features_path, **options)
    except (FileNotFoundError, ValueError, CheckpointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    flat = flatten_metrics(result)
    width = max(map(len, flat))
    print("\n".join(f"{k:{width}s}  {v:.4f}" for k, v in flat.items()))
    print(f"wrote {run_folder(args.run) / EVAL_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m vtbench compare --config quick --seeds 3 [--methods ...] [--out figures/]``.

Trains every method with every seed (``vtbench.train.train``; a finished run in ``--runs`` is
reused, an interrupted one resumed), evaluates each on the test split (real-format data: the
held-out files of ``--data-path``/``--features-path``, or without them the runs' training files,
which the tables then say), and writes

* ``OUT/comparison.md``: a headline table and the full table, mean +- std over seeds;
* ``OUT/comparison.csv``: the same numbers in long form (method, metric, mean, std, n_seeds);
* ``OUT/comparison.json``: the command, every run's metrics and the summary;

plus ``RUNS/METHOD-seedS/eval.json`` per run. The ``untrained`` row is the initialisation every
method starts from at that seed (same tokenizer, same seeded weights), evaluated untouched.
Whatever the ranking is, it is written as measured: nothing here is tuned per method.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import math
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..eval.suite import FEW_SHOT_EPISODES, check_options, flatten_metrics, is_percent
from ..data import youcook2_subset
from ..losses import LOSSES, build_loss
from ..train import TrainConfig, TrainingDiverged, make_config, parse_overrides, train, valid_keys
from ..io import atomic_write
from ..train.checkpoint import CONFIG, CheckpointError, read_config
from ..train.config import PRESET_NAMES
from .evaluate import eval_dataset, evaluate_loaded, evaluate_run, untrained_run, write_json

METHODS = ("infonce", "milnce", "vt-twins", "tempclr", "cali-nce")
UNTRAINED = "untrained"
HEADLINE = (
    "retrieval/R@1", "retrieval/R@10", "retrieval/MedR", "retrieval/same_text/R@1",
    "video_paragraph/background_removed/dtw/R@1", "video_paragraph/background_removed/otam/R@1",
    "video_paragraph/background_kept/dtw/R@1", "step_localisation/recall",
    "few_shot/dtw/accuracy", "zero_shot/accuracy",
)
LOWER_IS_BETTER = ("MedR", "train_seconds")
DATA_OPTIONS = ("split", "data_path", "features_path")  # eval_options that pick the evaluation data
COSMETIC = ("progress", "device", "out", "save_every", "log_every")  # do not change what a run learns


@dataclass
class RunResult:
    label: str  # the method, or "untrained"
    seed: int
    metrics: dict[str, float]  # flat, see vtbench.eval.suite.flatten_metrics
    path: str | None = None
    train_seconds: float | None = None


@dataclass
class Comparison:
    results: list[RunResult] = field(default_factory=list)

    @property
    def summary(self) -> dict[str, dict[str, tuple[float, float, int]]]:
        return summarise(self.results)


def overrides_for(method: str, overrides: dict) -> dict:
    """The overrides that apply to ``method`` (a loss hyperparameter only to the methods that have it)."""
    keys = set(valid_keys(method))
    return {k: v for k, v in overrides.items() if k in keys}


def check_overrides(methods, overrides: dict) -> None:
    unused = sorted(set(overrides) - {k for m in methods for k in valid_keys(m)})
    if unused:
        valid = sorted({k for m in methods for k in valid_keys(m)})
        raise ValueError(f"unknown config key(s) {unused} for methods {list(methods)}; valid: {', '.join(valid)}")


def check_reusable(run_dir: Path, config: TrainConfig) -> None:
    """A run folder left by an earlier comparison is reused (or resumed) only if it was made with
    exactly this config: the trainer would otherwise continue a run with, e.g., fewer steps."""
    saved_path = run_dir / CONFIG
    if not saved_path.is_file():
        return
    saved, wanted = read_config(saved_path), config.to_dict()
    changed = sorted(k for k in wanted if k not in COSMETIC and saved.get(k) != wanted[k])
    if changed:
        diff = ", ".join(f"{k}: {saved.get(k)!r} there, {wanted[k]!r} here" for k in changed)
        raise ValueError(f"{run_dir} holds a run with another config ({diff}): pass another --runs folder")


def run_config(method: str, seed: int, preset: str, overrides: dict, runs_dir: Path) -> TrainConfig:
    """The config of one run of a comparison, in ``runs_dir/METHOD-seedS``."""
    return make_config(method, preset, overrides_for(method, overrides), seed=seed,
                       out=str(Path(runs_dir) / f"{method}-seed{seed}"))


def check_runs(methods, seeds, preset: str, overrides: dict, runs_dir: Path) -> None:
    """Every run's config as it will be made, its loss's own checks (TempCLR's aligner, ...) and
    that a runs folder left by an earlier comparison holds runs of exactly these configs: all of
    it before anything trains, not when the run's turn comes."""
    for method in methods:
        for seed in seeds:
            config = run_config(method, seed, preset, overrides, runs_dir)
            build_loss(method, **config.loss_kwargs())
            check_reusable(Path(config.out), config)


def check_methods(methods) -> list[str]:
    """The methods of a comparison: known, at least one, each once (a repeated method reuses its
    runs, and its seeds would count twice)."""
    methods = list(methods)
    unknown = [m for m in methods if m not in LOSSES]
    if unknown or not methods:
        raise ValueError(f"unknown method(s) {unknown}; valid: {', '.join(LOSSES)}")
    if len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct (a repeated method reuses its runs: its seeds would count twice), "
                         f"got {methods}")
    return methods


def train_and_evaluate(method: str, seed: int, preset: str, overrides: dict, runs_dir: Path,
                       eval_options: dict) -> RunResult:
    config = run_config(method, seed, preset, overrides, runs_dir)
    check_reusable(Path(config.out), config)
    run_dir = train(config, resume=True)
    result = evaluate_run(run_dir, **eval_options)
    return RunResult(method, seed, flatten_metrics(result), str(run_dir), result["run"]["train_seconds"])


def _data_options(eval_options: dict) -> dict:
    """The eval_options that pick the evaluation data (``eval_dataset``'s keyword arguments)."""
    return {k: eval_options[k] for k in DATA_OPTIONS if k in eval_options}


def evaluate_untrained(seed: int, preset: str, overrides: dict, eval_options: dict,
                       method: str = "infonce") -> RunResult:
    """The shared initialisation at ``seed`` (the model does not depend on the method)."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}  # loss hyperparameters do not shape the model
    config = make_config(method, preset, {k: v for k, v in overrides.items() if k in names}, seed=seed)
    options = {k: v for k, v in eval_options.items() if k not in DATA_OPTIONS}
    result = evaluate_loaded(untrained_run(config), eval_dataset(config, **_data_options(eval_options)), **options)
    return RunResult(UNTRAINED, seed, flatten_metrics(result))


def seed_list(seeds: int | list[int]) -> list[int]:
    """The seeds a comparison or an ablation runs: 0..seeds-1 for a count, else the list, checked
    (at least one, distinct: a repeated seed would reuse its run and count it twice)."""
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be at least 1 (seeds 0..N-1), got {seeds}")
        return list(range(seeds))
    seeds = list(seeds)
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct, at least one (a repeated seed reuses its run: n would count "
                         f"it twice), got {seeds}")
    return seeds


def run_comparison(methods=METHODS, seeds: int | list[int] = 3, preset: str = "quick", overrides=(),
                   runs_dir="runs/compare", out="figures", include_untrained: bool = True,
                   eval_options: dict | None = None, command: str | None = None) -> Comparison:
    """Train and evaluate every (method, seed); write the tables to ``out`` (None: write nothing)."""
    methods = check_methods(methods)
    if preset not in PRESET_NAMES:
        raise ValueError(f"unknown config preset {preset!r}; valid: {', '.join(PRESET_NAMES)}")
    seeds = seed_list(seeds)
    overrides = dict(parse_overrides(overrides)) if not isinstance(overrides, dict) else dict(overrides)
    check_overrides(methods, overrides)
    eval_options = dict(eval_options or {})
    check_options(**eval_options)  # before anything trains
    runs_dir = Path(runs_dir)
    check_runs(methods, seeds, preset, overrides, runs_dir)
    first = make_config(methods[0], preset, overrides_for(methods[0], overrides))
    evaluated = evaluated_on(first, eval_options)
    if first.data != "narrated-digits":  # a wrong --data-path fails now, not after the first run has trained
        eval_dataset(first, **_data_options(eval_options))
    comparison = Comparison()
    began = time.perf_counter()
    for seed in seeds:
        if include_untrained:
            comparison.results.append(evaluate_untrained(seed, preset, overrides, eval_options, methods[0]))
        for method in methods:
            print(f"[compare] {method} seed {seed} ({time.perf_counter() - began:.0f} s so far)", file=sys.stderr)
            comparison.results.append(train_and_evaluate(method, seed, preset, overrides, runs_dir, eval_options))
    if out is not None:
        header = {"command": command, "preset": preset, "seeds": seeds, "methods": methods,
                  "overrides": overrides, "seconds": time.perf_counter() - began,
                  "evaluated_on": evaluated, "eval_options": eval_options}
        write_tables(comparison, Path(out), header)
    return comparison


def evaluated_on(config: TrainConfig, eval_options: dict) -> str:
    """What the runs are evaluated on, in words, for the tables (see ``eval_dataset``); a ValueError
    for held-out files with narrated digits, before anything trains."""
    split = eval_options.get("split") or "test"
    held_out = [eval_options[k] for k in ("data_path", "features_path") if eval_options.get(k)]
    if config.data == "narrated-digits":
        if held_out:
            raise ValueError("data_path and features_path (--data-path, --features-path) name held-out real-format "
                             f"files: narrated digits are evaluated on their own {split} split")
        return f"the {split} split"
    captions = eval_options.get("data_path") or config.data_path
    features = eval_options.get("features_path") or config.features_path

    def which(path, key: str) -> str:
        whose = "held out" if eval_options.get(key) else "the runs' own"
        return f"{path} ({whose})"
    with_features = f", features {which(features, 'features_path')}" if features else ""
    if config.data == "youcook2" and str(captions).lower().endswith(".json"):  # the official JSON holds every subset
        subset = youcook2_subset(split)
        return f"the {subset} subset of {which(captions, 'data_path')}{with_features}"
    if held_out:
        return f"{which(captions, 'data_path')}{with_features}"
    return f"the runs' own training files ({config.data_path}): no held-out files were given (--data-path)"


def summarise(results: list[RunResult]) -> dict[str, dict[str, tuple[float, float, int]]]:
    """{label: {metric: (mean, std, n)}} over seeds; std is the sample std (n - 1), NaN for n = 1.
    Training time is the metric ``train_seconds``."""
    values: dict[str, dict[str, list[float]]] = {}
    for r in results:
        row = values.setdefault(r.label, {})
        metrics = dict(r.metrics)
        if r.train_seconds is not None:
            metrics["train_seconds"] = r.train_seconds
        for k, v in metrics.items():
            row.setdefault(k, []).append(float(v))
    return {label: {k: (float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else math.nan, len(v))
                    for k, v in row.items()} for label, row in values.items()}


def format_cell(metric: str, mean: float, std: float) -> str:
    scale = 100.0 if is_percent(metric) else 1.0
    text = f"{mean * scale:.1f}"
    return text if math.isnan(std) else f"{text} ± {std * scale:.1f}"


def _best(summary, labels, metric) -> str | None:
    """The trained method with the best mean (ties: none is marked)."""
    scored = [(summary[lab][metric][0], lab) for lab in labels if lab != UNTRAINED and metric in summary[lab]]
    if len(scored) < 2:
        return None
    lower = metric.rsplit("/", 1)[-1] in LOWER_IS_BETTER
    best = min(scored) if lower else max(scored)
    return best[1] if sum(1 for s, _ in scored if s == best[0]) == 1 else None


def markdown_table(summary, labels, metrics, transpose: bool) -> str:
    """Rows = labels and columns = metrics, or (``transpose``) rows = metrics."""
    def cell(lab, m):
        if m not in summary[lab]:
            return "–"
        text = format_cell(m, *summary[lab][m][:2])
        return f"**{text}**" if _best(summary, labels, m) == lab else text
    if transpose:
        lines = ["| metric | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        lines += [f"| {m} | " + " | ".join(cell(lab, m) for lab in labels) + " |" for m in metrics]
    else:
        lines = ["| method | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 1) + "|"]
        lines += [f"| {lab} | " + " | ".join(cell(lab, m) for m in metrics) + " |" for lab in labels]
    return "\n".join(lines)


def comparison_markdown(summary, header: dict) -> str:
    labels = [UNTRAINED] * (UNTRAINED in summary) + [m for m in header["methods"] if m in summary]
    metrics = list(dict.fromkeys(m for lab in labels for m in summary[lab]))
    headline = [m for m in HEADLINE if m in metrics]
    n = len(header["seeds"])
    command = header.get("command") or "vtbench.experiments.run_comparison(...)"
    # the runs' own training time, whenever it ran: a rerun that reuses every run takes only the evaluation's
    trained = sum(summary[lab]["train_seconds"][0] * summary[lab]["train_seconds"][2]
                  for lab in labels if "train_seconds" in summary[lab])
    return "\n".join([
        f"# Method comparison: {header['preset']} config, {n} seed{'s' * (n > 1)}",
        "",
        f"Made by `{command}`",
        f"({header['seconds']:.0f} s; training its runs took {trained:.0f} s, reused runs included; "
        f"overrides: {header['overrides'] or 'none'}).",
        "",
        f"Mean ± sample std over seeds, evaluated on {header.get('evaluated_on', 'the test split')}"
        f"{options_text(header.get('eval_options') or {})}. R@K, recall",
        "and accuracy in %; MedR in ranks and train_seconds in seconds (lower is better). Bold: the best trained",
        "method (none where the best mean is tied). `untrained` is the initialisation every method starts from.",
        "Protocols: docs/methods.md; the ranking is as measured.",
        "",
        "## Headline",
        "",
        markdown_table(summary, labels, headline, transpose=False),
        "",
        "## Every metric",
        "",
        markdown_table(summary, labels, metrics, transpose=True),
        "",
    ])


def options_text(eval_options: dict) -> str:
    """The evaluation options that change what was measured, in words ("" for the defaults)."""
    parts = []
    if eval_options.get("max_videos"):
        parts.append(f"its first {eval_options['max_videos']} videos")
    if eval_options.get("few_shot_episodes", FEW_SHOT_EPISODES) != FEW_SHOT_EPISODES:
        parts.append(f"{eval_options['few_shot_episodes']} few-shot episodes")
    if eval_options.get("protocols"):
        parts.append(f"protocols {', '.join(eval_options['protocols'])}")
    return f" ({'; '.join(parts)})" if parts else ""


def comparison_csv(summary) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["method", "metric", "mean", "std", "n_seeds"])
    for label, row in summary.items():
        for metric, (mean, std, n) in row.items():
            writer.writerow([label, metric, repr(mean), "" if math.isnan(std) else repr(std), n])
    return buf.getvalue()


def write_tables(comparison: Comparison, out: Path, header: dict) -> None:
    summary = comparison.summary
    atomic_write(out / "comparison.md", lambda f: f.write(comparison_markdown(summary, header).encode()))
    atomic_write(out / "comparison.csv", lambda f: f.write(comparison_csv(summary).encode()))
    runs = [{"method": r.label, "seed": r.seed, "path": r.path, "train_seconds": r.train_seconds, "metrics": r.metrics}
            for r in comparison.results]
    summary_json = {lab: {m: {"mean": mean, "std": None if math.isnan(std) else std, "n": n}
                          for m, (mean, std, n) in row.items()}
                    for lab, row in summary.items()}
    write_json(out / "comparison.json", {**header, "runs": runs, "summary": summary_json})


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vtbench compare",
                                description="Train every method with several seeds, evaluate, tabulate.")
    p.add_argument("--config", default="quick", help=f"preset: {' | '.join(PRESET_NAMES)} (default quick)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per method (default 3)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help=f"default: {' '.join(METHODS)}")
    p.add_argument("--out", default="figures", help="folder of comparison.md/.csv/.json (default figures)")
    p.add_argument("--runs", default="runs/compare", help="folder of the runs (default runs/compare)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every method it applies to (repeatable)")
    p.add_argument("--no-untrained", action="store_true", help="leave out the untrained reference row")
    add_eval_arguments(p)
    return p


def add_eval_arguments(p: argparse.ArgumentParser) -> None:
    """The evaluation options of compare and ablate (read back by :func:`eval_options_from`)."""
    p.add_argument("--episodes", type=int, default=FEW_SHOT_EPISODES,
                   help=f"few-shot episodes per run (default {FEW_SHOT_EPISODES})")
    p.add_argument("--max-videos", type=int, help="evaluate on the first N test videos only")
    p.add_argument("--data-path", help="real-format data: the held-out captions/annotations to evaluate on "
                                       "(without it the runs' training files are evaluated)")
    p.add_argument("--features-path", help="real-format data: the held-out features folder")


def eval_options_from(args: argparse.Namespace) -> dict:
    return {"few_shot_episodes": args.episodes, "max_videos": args.max_videos,
            **{k: v for k, v in (("data_path", args.data_path), ("features_path", args.features_path)) if v}}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    methods = [m for item in args.methods for m in item.split(",") if m]
    eval_options = eval_options_from(args)
    command = "python -m vtbench compare " + " ".join(shlex.quote(a) for a in argv)
    try:
        run_comparison(methods, args.seeds, args.config, args.overrides, args.runs, args.out,
                       not args.no_untrained, eval_options, command.strip())
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValueError, CheckpointError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {Path(args.out) / 'comparison.md'}, comparison.csv and comparison.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m vtbench.train.quickcheck [--methods ...] [--config quick] [--set key=value ...]``:
train each method and print how long it took and text-to-clip retrieval on the val split of
narrated digits before (the same initialisation, untrained) and after training."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from ..data import build_dataset
from ..eval.suite import evaluate
from ..losses import LOSSES
from .batches import dataset_kwargs, load_training_data
from .config import make_config
from .loop import build_model_for, load_run, train


def retrieval(model, tokenizer, config, max_videos: int) -> dict:
    val = build_dataset(config.data, "val", **dataset_kwargs(config))
    out = evaluate(model, val, tokenizer, clip_len=config.clip_len, max_words=config.max_words,
                   protocols=["retrieval"], max_videos=max_videos)
    result = out["retrieval"]
    flat = {k: round(v, 4) for k, v in result.items() if isinstance(v, (int, float))}
    flat.update({f"same_text/{k}": round(v, 4) for k, v in result.get("same_text", {}).items()})
    return flat


def check(method: str, preset: str, overrides: list[str], root: Path, max_videos: int) -> dict:
    config = make_config(method, preset, overrides, out=str(root / method), progress=False)
    data = load_training_data(config)
    torch.manual_seed(config.seed)  # the initialisation train() starts from
    untrained = build_model_for(config, data.tokenizer, data.input_dim).eval()
    before = retrieval(untrained, data.tokenizer, config, max_videos)
    began = time.perf_counter()
    run_dir = train(config)
    seconds = time.perf_counter() - began
    run = load_run(run_dir)
    after = retrieval(run.model, run.tokenizer, config, max_videos)
    return {"method": method, "train_s": round(seconds, 1), "before": before, "after": after}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vtbench.train.quickcheck")
    p.add_argument("--methods", nargs="*", default=list(LOSSES))
    p.add_argument("--config", default="quick")
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--max-videos", type=int, default=120)
    p.add_argument("--json", help="also write the results here")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:  # every config first: a bad method or key fails before anything trains
        for method in args.methods:
            make_config(method, args.config, args.overrides)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'method':10s} {'train s':>8s}  R@1 before -> after   R@5 before -> after   MedR before -> after"
              "   same-text R@1 before -> after")
        for method in args.methods:
            r = check(method, args.config, args.overrides, Path(tmp), args.max_videos)
            b, a = r["before"], r["after"]
            print(f"{method:10s} {r['train_s']:8.1f}  {b['R@1']:.3f} -> {a['R@1']:.3f}        "
                  f"{b['R@5']:.3f} -> {a['R@5']:.3f}        {b['MedR']:.0f} -> {a['MedR']:.0f}          "
                  f"{b.get('same_text/R@1', float('nan')):.3f} -> {a.get('same_text/R@1', float('nan')):.3f}", flush=True)
            results.append(r)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m vtbench train --method NAME --data narrated-digits [--config quick|full]
[--set key=value ...] --out runs/NAME [--resume] [--seed S]``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..losses import LOSSES
from .checkpoint import CONFIG, CheckpointError, read_config
from .config import PRESET_NAMES, TrainConfig, make_config, parse_overrides, unknown_message, valid_keys
from .loop import TrainingDiverged, train


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vtbench train", description="Train one method.")
    p.add_argument("--method", required=True, help=f"one of: {', '.join(LOSSES)}")
    p.add_argument("--data", help="narrated-digits (default), howto100m, youcook2, crosstask, msrvtt")
    p.add_argument("--config", help=f"preset: {' | '.join(PRESET_NAMES)} (default quick)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key or a loss hyperparameter (repeatable)")
    p.add_argument("--out", help="run folder (default runs/METHOD)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--seed", type=int, help="training seed (default 0)")
    return p


FLAGS = {"method": "--method", "data": "--data", "out": "--out", "seed": "--seed"}  # keys given by their own flag


def resolve(args) -> TrainConfig:
    """The config of this invocation: the preset with overrides, or on --resume the saved one with
    overrides (then --config and --data, if given, must name what the run was trained with: the
    trainer refuses a changed key)."""
    out = args.out or f"runs/{args.method}"
    overrides = parse_overrides(args.overrides)
    doubled = [key for key in FLAGS if key in overrides]
    if doubled:
        raise ValueError(f"--set {doubled[0]}=...: give it as {FLAGS[doubled[0]]}")
    if args.seed is not None:
        overrides["seed"] = args.seed
    saved = Path(out) / CONFIG
    if args.resume and saved.exists() and args.config is None and args.data is None:
        values = read_config(saved)
        if values.get("method") != args.method:
            raise CheckpointError(f"{out} holds a run of method {values.get('method')!r}, not {args.method!r}")
        unknown = [k for k in overrides if k not in valid_keys(args.method)]
        if unknown:
            raise ValueError(unknown_message(unknown, args.method))
        return TrainConfig.from_dict({**values, **overrides, "out": out})
    return make_config(args.method, args.config or "quick", overrides, data=args.data or "narrated-digits", out=out)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = resolve(args)
        run_dir = train(config, resume=args.resume)
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValueError, CheckpointError, OSError) as err:  # OSError: FileExistsError, an --out under a file, ...
        print(f"error: {err}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":  # under torchrun, once (from rank 0), not once a process
        print(f"trained {config.method} for {config.steps} steps: {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ablations: every method retrained at each value of one config key, evaluated the same way.

``python -m vtbench ablate --key skip_cost --values 0.5 0 -0.3 --methods vt-twins --seeds 3``
(:func:`ablation`) writes ``OUT/ablation.md``, ``ablation.csv`` and ``ablation.png``: any trainer
field or loss hyperparameter that every method named has (``--set`` fixes the others).

:func:`noise_ablation` is the one notebook 06 runs: the alignment-noise level of narrated digits,
how each method's results change as the narration drifts further from what is shown. Level 0 is
perfectly aligned narration (the ``clean`` preset), level 1 the default HowTo100M-like noise;
other levels scale the narration noise (shift mean and spread, unnarrated steps, fillers) through
the trainer key ``data_noise`` (NarratedDigits' ``noise``). Evaluation is always on the test
split's ground truth (clean captions and segments), which the narration noise does not touch, so
the levels are compared on the same footing.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import re
import shlex
import sys
from pathlib import Path

from ..eval.suite import check_options
from ..io import atomic_write
from ..train import TrainingDiverged, make_config, parse_overrides, valid_keys
from ..train.checkpoint import CheckpointError
from ..train.config import PRESET_NAMES
from .compare import (COSMETIC, HEADLINE, METHODS, add_eval_arguments, check_methods, check_runs, eval_options_from,
                      evaluate_untrained, evaluated_on, format_cell, options_text, overrides_for, run_comparison,
                      seed_list)


#: Keys an ablation cannot vary: the run's identity (seed, method, out: the ablation sets them) and
#: the settings that do not change what a run learns.
FIXED = ("seed", "method", "out", *COSMETIC)


def ablation(key: str, values, methods=METHODS, seeds: int | list[int] = 1, preset: str = "quick", overrides=(),
             runs_dir="runs/ablation", metrics=None, eval_options: dict | None = None,
             name: str | None = None) -> list[dict]:
    """Train and evaluate every method at every value of the config key ``key`` (a trainer field or
    a loss hyperparameter that each of ``methods`` has); one row per (value, method):
    ``{name: value, "method": m, "n_seeds": k, METRIC: mean, METRIC + " std": std, ...}`` for each
    of ``metrics`` (None: the comparison's headline metrics that the evaluation data measures),
    ``name`` defaulting to ``key``. Each value's runs go to ``runs_dir/NAME-VALUE``.

    Everything that can be checked is checked before anything trains: the values as the config
    and the loss take them (``"0.5"`` from a command line is 0.5), the metrics (an untrained model
    is evaluated once to list what the data measures), and that a runs folder left by an earlier
    ablation holds runs of exactly these configs."""
    name = name or key
    methods = check_methods(methods)
    seeds = seed_list(seeds)
    base = dict(overrides) if isinstance(overrides, dict) else parse_overrides(overrides)
    if key in FIXED:
        raise ValueError(f"{key!r} cannot be ablated: of {', '.join(FIXED)} the ablation sets the runs' seed, "
                         "method and folder, and the others do not change what a run learns")
    if key in base:
        raise ValueError(f"{key!r} is the key the ablation varies: leave it out of the overrides")
    if key == "data_noise" and base.get("data_preset") == "clean":
        raise ValueError("data_preset=clean fixes the narration noise at 0: every data_noise value would train the same")
    if not any(key in valid_keys(m) for m in methods):
        valid = sorted({k for m in methods for k in valid_keys(m)} - set(FIXED))
        raise ValueError(f"unknown config key {key!r} for methods {methods}; valid: {', '.join(valid)}")
    missing = [m for m in methods if key not in valid_keys(m)]
    if missing:
        raise ValueError(f"config key {key!r} does not apply to method(s) {missing}: ablate it over the methods "
                         "that have it")
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"values must be a sequence, got {values!r}")
    checked = []
    for value in values:
        for method in methods:  # the config's checks: type, range, unknown keys of the base overrides
            taken = make_config(method, preset, {**overrides_for(method, base), key: value}).to_dict()[key]
        checked.append(taken)
    folders = [_folder(name, v) for v in checked]
    if not checked or len(set(folders)) != len(folders):
        raise ValueError(f"values must be distinct, each naming its runs folder (numbers to 6 significant digits), "
                         f"got {checked} -> folders {folders}")
    for value, folder in zip(checked, folders):
        check_runs(methods, seeds, preset, {**base, key: value}, Path(runs_dir) / folder)
    eval_options = dict(eval_options or {})
    check_options(**eval_options)
    measured = set(evaluate_untrained(seeds[0], preset, {**base, key: checked[0]},
                                      eval_options, methods[0]).metrics)
    metrics = [m for m in HEADLINE if m in measured] if metrics is None else list(metrics)
    unknown = [m for m in metrics if m not in measured]
    if unknown:
        raise ValueError(f"metrics {unknown} are not measured here; measured: {', '.join(sorted(measured))}")
    rows = []
    for value, folder in zip(checked, folders):
        comparison = run_comparison(methods, seeds, preset, {**base, key: value}, Path(runs_dir) / folder, out=None,
                                    include_untrained=False, eval_options=eval_options)
        summary = comparison.summary
        for method in methods:
            row = {name: value, "method": method, "n_seeds": sum(r.label == method for r in comparison.results)}
            for m in metrics:
                mean, std, _ = summary[method].get(m, (math.nan, math.nan, 0))
                row.update({m: mean, f"{m} std": std})
            rows.append(row)
    return rows


def _folder(name: str, value) -> str:
    """The runs folder of one value: NAME-VALUE, numbers to 6 significant digits, safe characters only."""
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{name}-{_value(value)}")


def noise_overrides(level: float) -> dict:
    """Config overrides that train on narrated digits at noise ``level`` (0 = clean, 1 = default,
    2 = twice the narration shift and twice the unnarrated/filler rates)."""
    level = float(level)
    if not math.isfinite(level) or level < 0:
        raise ValueError(f"noise level must be a finite number >= 0, got {level}")
    return {"data_noise": level, "data_preset": ""}


def noise_ablation(levels=(0.0, 1.0), methods=METHODS, seeds: int | list[int] = 1, preset: str = "quick",
                   overrides=(), runs_dir="runs/ablation-noise", metrics=HEADLINE,
                   eval_options: dict | None = None) -> list[dict]:
    """Train and evaluate every method at every noise level; one row per (level, method):
    ``{"noise": level, "method": m, "n_seeds": k, METRIC: mean, METRIC + " std": std, ...}``
    for each of ``metrics`` (the flat names of :func:`vtbench.eval.suite.flatten_metrics`)."""
    base = dict(overrides) if isinstance(overrides, dict) else parse_overrides(overrides)
    levels = _check_levels(levels)  # all of them, before anything trains
    return ablation("data_noise", levels, methods, seeds, preset, {**base, "data_preset": ""}, runs_dir, metrics,
                    eval_options, name="noise")


def _check_levels(levels) -> list[float]:
    """Noise levels as floats, each valid and distinct (each names its runs folder, noise-{level:g})."""
    if isinstance(levels, (str, bytes)) or not hasattr(levels, "__iter__"):
        raise TypeError(f"levels must be a sequence of numbers, got {levels!r}")
    checked = []
    for level in levels:
        if isinstance(level, bool) or not isinstance(level, (int, float)):
            raise TypeError(f"levels must hold numbers, got {level!r}")
        checked.append(noise_overrides(level)["data_noise"])
    folders = [f"{level:g}" for level in checked]
    if not checked or len(set(folders)) != len(folders):
        raise ValueError(f"levels must be distinct (to 6 significant digits: each names a runs folder), got {checked}")
    return checked


def ablation_markdown(rows: list[dict], metrics=HEADLINE, by: str = "noise") -> str:
    """The rows of :func:`ablation` (``by``: their value's name) as a Markdown table (R@K, recall,
    accuracy in %)."""
    metrics = [m for m in metrics if any(m in r for r in rows)]
    lines = [f"| {by} | method | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for r in rows:
        cells = [format_cell(m, r[m], r[f"{m} std"]) for m in metrics]
        lines.append(f"| {_value(r[by])} | {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _value(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def ablation_csv(rows: list[dict], metrics, by: str) -> str:
    """Long form: one line per (value, method, metric) with mean, std and n_seeds."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([by, "method", "metric", "mean", "std", "n_seeds"])
    for r in rows:
        for m in metrics:
            std = r[f"{m} std"]
            writer.writerow([r[by], r["method"], m, repr(r[m]), "" if math.isnan(std) else repr(std), r["n_seeds"]])
    return buf.getvalue()


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m vtbench ablate",
                                description="Retrain methods at each value of one config key; tabulate and plot.")
    p.add_argument("--key", required=True, help="a trainer field or loss hyperparameter (e.g. skip_cost, data_noise)")
    p.add_argument("--values", nargs="+", required=True,
                   help="its values (e.g. 0.5 0 -0.3; commas also separate them: --values=-1e-3,0.5)")
    p.add_argument("--methods", nargs="+", default=list(METHODS), help=f"default: {' '.join(METHODS)}")
    p.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per method and value (default 1)")
    p.add_argument("--config", default="quick", help=f"preset: {' | '.join(PRESET_NAMES)} (default quick)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override for every method it applies to (repeatable)")
    p.add_argument("--metrics", nargs="+", help="default: the comparison's headline metrics the data measures")
    p.add_argument("--runs", help="folder of the runs (default runs/ablation-KEY)")
    p.add_argument("--out", help="folder of ablation.md/.csv/.png (default figures/ablation-KEY)")
    add_eval_arguments(p)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    methods = [m for item in args.methods for m in item.split(",") if m]
    values = [v for item in args.values for v in item.split(",") if v]
    runs = Path(args.runs or f"runs/ablation-{args.key}")
    out = Path(args.out or f"figures/ablation-{args.key}")
    eval_options = eval_options_from(args)
    command = "python -m vtbench ablate " + " ".join(shlex.quote(a) for a in argv)
    try:
        if args.config not in PRESET_NAMES:
            raise ValueError(f"unknown config preset {args.config!r}; valid: {', '.join(PRESET_NAMES)}")
        base = parse_overrides(args.overrides)
        method = methods[0] if methods else "infonce"
        evaluated = evaluated_on(make_config(method, args.config, overrides_for(method, base)), eval_options)
        rows = ablation(args.key, values, methods, args.seeds, args.config, base, runs, args.metrics, eval_options)
    except TrainingDiverged as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, CheckpointError, FileExistsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from ..viz import save_figure
    from ..viz.results import plot_ablation

    metrics = [k for k in rows[0] if k not in (args.key, "method", "n_seeds") and not k.endswith(" std")]
    subset = options_text(eval_options)
    n = args.seeds
    table = "\n".join([f"# Ablation of {args.key}: {args.config} config, {n} seed{'s' * (n > 1)}", "",
                        f"Made by `{command.strip()}`.", "",
                        f"Mean ± sample std over seeds, evaluated on {evaluated}{subset} (R@K, recall and "
                        "accuracy in %).", "",
                        ablation_markdown(rows, metrics, by=args.key), ""])
    atomic_write(out / "ablation.md", lambda f: f.write(table.encode()))
    atomic_write(out / "ablation.csv", lambda f: f.write(ablation_csv(rows, metrics, args.key).encode()))
    save_figure(plot_ablation(rows, metrics, by=args.key), out / "ablation.png")
    print(table)
    print(f"wrote {out / 'ablation.md'}, ablation.csv and ablation.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

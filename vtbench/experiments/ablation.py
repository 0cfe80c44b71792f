"""Ablation over the alignment-noise level of narrated digits: how each method's results change as
the narration drifts further from what is shown (notebook 06 calls :func:`noise_ablation`).

Level 0 is perfectly aligned narration (the ``clean`` preset), level 1 the default HowTo100M-like
noise; other levels scale the narration noise (shift mean and spread, unnarrated steps, fillers)
through the trainer key ``data_noise`` (NarratedDigits' ``noise``).
Evaluation is always on the test split's ground truth (clean captions and segments), which the
narration noise does not touch, so the levels are compared on the same footing.
"""
from __future__ import annotations

import math
from pathlib import Path

from ..train import parse_overrides
from .compare import HEADLINE, METHODS, run_comparison


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
    rows = []
    for level in levels:
        comparison = run_comparison(methods, seeds, preset, {**base, **noise_overrides(level)},
                                    Path(runs_dir) / f"noise-{level:g}", out=None, include_untrained=False,
                                    eval_options=eval_options)
        summary = comparison.summary
        measured = sorted({m for method in methods for m in summary[method]})
        unknown = [m for m in metrics if m not in measured]
        if unknown:
            raise ValueError(f"metrics {unknown} are not measured here; measured: {', '.join(measured)}")
        for method in methods:
            row = {"noise": level, "method": method, "n_seeds": sum(r.label == method for r in comparison.results)}
            for m in metrics:
                mean, std, _ = summary[method].get(m, (math.nan, math.nan, 0))
                row.update({m: mean, f"{m} std": std})
            rows.append(row)
    return rows


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


def ablation_markdown(rows: list[dict], metrics=HEADLINE) -> str:
    """The rows of :func:`noise_ablation` as a Markdown table (R@K, recall, accuracy in %)."""
    from .compare import format_cell

    metrics = [m for m in metrics if any(m in r for r in rows)]
    lines = ["| noise | method | " + " | ".join(metrics) + " |", "|---" * (len(metrics) + 2) + "|"]
    for r in rows:
        cells = [format_cell(m, r[m], r[f"{m} std"]) for m in metrics]
        lines.append(f"| {r['noise']:g} | {r['method']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)

"""Figures of a method comparison and of the noise ablation (notebook 06, the README).

Inputs are plain data: ``summary`` {label: {metric: (mean, std, n)}} as
``vtbench.experiments.summarise`` returns it, and the ablation rows of
``vtbench.experiments.ablation`` (or ``noise_ablation``).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt

from ..eval.suite import is_percent


#: One colour per method in every figure (others take the next free colours of tab10).
METHOD_COLOURS = {"untrained": "C7", "infonce": "C0", "milnce": "C1", "vt-twins": "C2", "tempclr": "C3",
                  "cali-nce": "C4"}


def method_colours(labels: Sequence[str]) -> dict[str, str]:
    """Each label's colour: its own from METHOD_COLOURS, or an unused tab10 colour."""
    free = iter(c for c in (f"C{k}" for k in range(10)) if c not in METHOD_COLOURS.values())
    return {label: METHOD_COLOURS.get(label) or next(free, "black") for label in labels}


def _short(metric: str) -> str:
    return metric.replace("video_paragraph/", "v-p/").replace("background_removed", "bg removed") \
        .replace("background_kept", "bg kept").replace("step_localisation/", "step loc. ")


def _error_bars(means, stds, scale):
    """[below, above] for matplotlib's yerr: the std (0 where there is none), and for a percentage
    (scale 100) cut at 0 and 100."""
    stds = [0.0 if math.isnan(s) else s for s in stds]
    if scale != 100:
        return [stds, stds]
    return [[min(s, m) for m, s in zip(means, stds)], [min(s, 100 - m) for m, s in zip(means, stds)]]


def plot_comparison(summary: Mapping[str, Mapping[str, tuple]], metrics: Sequence[str], labels: Sequence[str] | None = None,
                    columns: int = 4):
    """One bar chart per metric: mean over seeds with the sample std as the error bar (for a
    percentage, cut at 0 and 100: a bar of 9.8 +- 11.7 % does not reach below 0)."""
    labels = list(labels or summary)
    metrics = [m for m in metrics if any(m in summary[label] for label in labels)]
    rows = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.9 * rows), squeeze=False, constrained_layout=True)
    colours = list(method_colours(labels).values())
    for ax, metric in zip(axes.flat, metrics):
        scale = 100 if is_percent(metric) else 1
        means = [summary[lab].get(metric, (math.nan,))[0] * scale for lab in labels]
        stds = [summary[lab].get(metric, (0, math.nan))[1] * scale for lab in labels]
        ax.bar(range(len(labels)), means, yerr=_error_bars(means, stds, scale), color=colours, capsize=3)
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
        ax.set_title(_short(metric) + (" (%)" if scale == 100 else ""), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    return fig


def _x(value):
    """A value on the x axis: numbers as numbers, anything else (a str or bool setting) as a category."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def plot_ablation(rows: Sequence[Mapping], metrics: Sequence[str], by: str = "noise", columns: int = 4):
    """Each metric against the ablated value ``by`` (the noise level by default), one line per
    method (error bars: std over seeds), ``columns`` panels a row."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    colours = method_colours(methods)
    metrics = [m for m in metrics if any(m in r for r in rows)]
    columns = min(columns, len(metrics))
    n_rows = math.ceil(len(metrics) / columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(3.6 * columns, 3.0 * n_rows), squeeze=False,
                             constrained_layout=True)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    xs = sorted({_x(r[by]) for r in rows}, key=str)
    numeric = all(isinstance(x, (int, float)) for x in xs)
    xs = sorted(xs) if numeric else xs
    for ax, metric in zip(axes.flat, metrics):
        scale = 100 if is_percent(metric) else 1
        for method in methods:
            mine = [r for r in rows if r["method"] == method]
            if numeric:  # numbers in order, joined by a line; categories as given, markers only
                mine.sort(key=lambda r: r[by])
            means = [r[metric] * scale for r in mine]
            std = [r.get(f"{metric} std", math.nan) * scale for r in mine]
            bars = any(s > 0 for s in std)  # one seed (NaN): no error bars, and no caps in the legend either
            ax.errorbar([_x(r[by]) for r in mine], means, yerr=_error_bars(means, std, scale) if bars else None,
                        marker="o", capsize=3 if bars else 0, label=method, color=colours[method],
                        linestyle="-" if numeric else "none")
        if numeric:  # ticks at the values tried; a log axis where they span decades
            if min(xs) > 0 and max(xs) >= 100 * min(xs):
                ax.set_xscale("log")
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            ax.set_xticks([], minor=True)
        ax.set_title(_short(metric) + (" (%)" if scale == 100 else ""), fontsize=9)
        ax.set_xlabel("narration noise level" if by == "noise" else by)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return fig

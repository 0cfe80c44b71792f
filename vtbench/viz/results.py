"""Figures of a method comparison and of the noise ablation (notebook 06, the README).

Inputs are plain data: ``summary`` {label: {metric: (mean, std, n)}} as
``vtbench.experiments.summarise`` returns it, and the ablation rows of
``vtbench.experiments.noise_ablation``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt

from .training import percent


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
        scale = 100 if percent(metric) else 1
        means = [summary[lab].get(metric, (math.nan,))[0] * scale for lab in labels]
        stds = [summary[lab].get(metric, (0, math.nan))[1] * scale for lab in labels]
        stds = [0 if math.isnan(s) else s for s in stds]
        low = [min(s, m) if scale == 100 else s for m, s in zip(means, stds)]
        high = [min(s, 100 - m) if scale == 100 else s for m, s in zip(means, stds)]
        ax.bar(range(len(labels)), means, yerr=[low, high], color=colours, capsize=3)
        ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right", fontsize=8)
        ax.set_title(_short(metric) + (" (%)" if scale == 100 else ""), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    return fig


def plot_ablation(rows: Sequence[Mapping], metrics: Sequence[str]):
    """Each metric against the noise level, one line per method (error bars: std over seeds)."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    colours = method_colours(methods)
    metrics = [m for m in metrics if any(m in r for r in rows)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.0), squeeze=False, constrained_layout=True)
    for ax, metric in zip(axes[0], metrics):
        scale = 100 if percent(metric) else 1
        for method in methods:
            mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["noise"])
            std = [0 if math.isnan(r.get(f"{metric} std", math.nan)) else r[f"{metric} std"] * scale for r in mine]
            bars = any(s > 0 for s in std)  # one seed: no error bars, and no caps in the legend either
            ax.errorbar([r["noise"] for r in mine], [r[metric] * scale for r in mine], yerr=std if bars else None,
                        marker="o", capsize=3 if bars else 0, label=method, color=colours[method])
        ax.set_title(_short(metric) + (" (%)" if scale == 100 else ""), fontsize=9)
        ax.set_xlabel("narration noise level")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    return fig

"""Matplotlib heatmaps of costs, expected alignments and paths, side by side.

Rows are clips (video time runs down), columns are sentences. Ground-truth cells are outlined in
green (one box per run of true clips of a sentence); hard-path cells are marked with dots.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from ..io import atomic_write
from .alignments import KERNEL_TITLES, Alignment, Pair, align, path_accuracy

TRUTH_COLOUR = "#2ca02c"
PATH_COLOUR = "#d62728"


def truth_runs(truth: torch.Tensor) -> list[tuple[int, int, int]]:
    """The ground truth as boxes: (column, first row, last row) for each run of true cells."""
    runs = []
    for j in range(truth.shape[1]):
        column = truth[:, j].tolist()
        i = 0
        while i < len(column):
            if column[i]:
                start = i
                while i + 1 < len(column) and column[i + 1]:
                    i += 1
                runs.append((j, start, i))
            i += 1
    return runs


def draw_heatmap(ax, matrix: torch.Tensor, *, title: str = "", truth: torch.Tensor | None = None,
                 path: torch.Tensor | None = None, cmap: str = "viridis", vmin=None, vmax=None,
                 row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None):
    """One (N, M) heatmap on ``ax`` with the ground truth outlined and the path dotted."""
    image = ax.imshow(matrix.detach().cpu().float().numpy(), cmap=cmap, vmin=vmin, vmax=vmax,
                      aspect="auto", interpolation="nearest")
    if truth is not None:
        for j, first, last in truth_runs(truth):
            ax.add_patch(Rectangle((j - 0.5, first - 0.5), 1, last - first + 1, fill=False,
                                   edgecolor=TRUTH_COLOUR, linewidth=2))
    if path is not None:
        rows, cols = torch.nonzero(path > 0.5, as_tuple=True)
        ax.plot(cols.numpy(), rows.numpy(), "o", color=PATH_COLOUR, markersize=3.5)
    ax.set_title(title, fontsize=10)
    n, m = matrix.shape
    if col_labels is not None and m <= 12:
        ax.set_xticks(range(m), col_labels, rotation=90, fontsize=7)
    else:
        ax.set_xlabel("sentence")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if row_labels is not None and n <= 30:
        ax.set_yticks(range(n), row_labels, fontsize=7)
    else:
        ax.set_ylabel("clip")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    return image


def _panel_title(alignment: Alignment, truth) -> str:
    title = KERNEL_TITLES[alignment.kernel].split(" (")[0]  # "S2DTW (VT-TWINS)" -> "S2DTW"
    if alignment.kernel in ("s2dtw", "drop_dtw"):
        key, name = ("skip_cost", "tau") if alignment.kernel == "s2dtw" else ("drop_cost", "drop")
        title += f", {name} {alignment.settings[key]:g}"
    accuracy = path_accuracy(alignment.path, truth)
    return title if accuracy != accuracy else f"{title}\npath precision {accuracy:.2f}"


def plot_alignments(pair: Pair, alignments: Sequence[Alignment], *, show_cost: bool = True,
                    height: float | None = None):
    """The pair's cost, then each alignment's expected alignment (colour) and hard path (dots)."""
    panels = len(alignments) + int(show_cost)
    n = pair.similarity.shape[0]
    height = height or min(2.5 + 0.17 * n, 8)
    fig, axes = plt.subplots(1, panels, figsize=(2.3 * panels + 0.6, height), squeeze=False,
                             constrained_layout=True)
    axes = list(axes[0])
    labels = {"row_labels": pair.row_labels, "col_labels": pair.col_labels}
    if show_cost:
        image = draw_heatmap(axes.pop(0), pair.cost, title="cost 1 - cos", truth=pair.truth, cmap="magma_r",
                             **labels)
        fig.colorbar(image, ax=fig.axes[0], shrink=0.6)
    for k, (ax, alignment) in enumerate(zip(axes, alignments)):
        image = draw_heatmap(ax, alignment.expected, title=_panel_title(alignment, pair.truth), truth=pair.truth,
                             path=alignment.path, cmap="Blues", vmin=0, vmax=1, **labels)
        if show_cost or k > 0:  # row labels only on the leftmost panel
            ax.set_yticks([])
            ax.set_ylabel("")
    fig.colorbar(image, ax=axes, shrink=0.6, label="expected alignment")
    fig.suptitle(f"{pair.name}" + (f": {pair.note}" if pair.note else ""), fontsize=10)
    return fig


def plot_case_grid(pairs: Mapping[str, Pair], kernels: Sequence[str], **settings):
    """Rows: the pairs; columns: the cost and each kernel's expected alignment and hard path.

    Every cost panel has the same colour scale, 1 - cos from 0 (bright) to 2, so that costs can be
    compared across rows (an untrained model's flat cost looks flat); S2DTW runs on -cos, the same
    picture shifted by one."""
    cols = len(kernels) + 1
    fig, axes = plt.subplots(len(pairs), cols, figsize=(2.1 * cols + 0.8, 2.6 * len(pairs)), squeeze=False,
                             constrained_layout=True)
    for row, (name, pair) in zip(axes, pairs.items()):
        cost = draw_heatmap(row[0], pair.cost, title=f"{name}\ncost", truth=pair.truth, cmap="magma_r", vmin=0, vmax=2)
        for ax, kernel in zip(row[1:], kernels):
            alignment = align(pair, kernel, **settings)
            expected = draw_heatmap(ax, alignment.expected, title=_panel_title(alignment, pair.truth), truth=pair.truth,
                                    path=alignment.path, cmap="Blues", vmin=0, vmax=1)
            ax.set_yticks([])
            ax.set_ylabel("")
    fig.colorbar(cost, ax=axes[:, 0], location="left", shrink=0.5, label="cost 1 - cos (bright: low)")
    if kernels:
        fig.colorbar(expected, ax=axes[:, 1:], shrink=0.5, label="expected alignment")
    return fig


def plot_sweep(pair: Pair, kernel: str, name: str, values: Sequence[float], **settings):
    """The expected alignment of one kernel as one setting (``gamma``, ``smooth_gamma`` or
    ``skip_cost``) moves, side by side."""
    alignments = [align(pair, kernel, **{**settings, name: v}) for v in values]
    fig = plot_alignments(pair, alignments, show_cost=False)
    for ax, value, alignment in zip(fig.axes, values, alignments):
        ax.set_title(f"{name} = {value:g}\nvalue {alignment.value:.2f}", fontsize=9)
    fig.suptitle(f"{KERNEL_TITLES[kernel]} on '{pair.name}' as {name} moves", fontsize=10)
    return fig


def save_figure(fig, path: str | Path, dpi: int = 120) -> Path:
    """Save as PNG (or the format the suffix names), atomically: a failed save (a full disk, an
    interrupt) leaves the previous figure, never a truncated one. Returns the path."""
    path = Path(path)
    return atomic_write(path, lambda f: fig.savefig(f, format=path.suffix[1:] or "png", dpi=dpi, bbox_inches="tight"))

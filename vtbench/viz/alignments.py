"""What the figures show: a video/text pair as a similarity matrix, and each kernel's alignment of it.

A :class:`Pair` holds the cosine similarity z[i, j] between clip i (rows, video time) and sentence
j (columns) plus, where known, the ground truth (which clips each sentence describes).
:func:`align` runs one kernel of :mod:`vtbench.align` on it and returns its value, its expected
alignment E (the probability that the Gibbs-weighted path visits a cell; 0/1 at gamma = 0) and its
hard path, all (N, M) in the pair's own rows and columns, so every kernel can be drawn the same way.

Each kernel sees the cost its paper uses: 1 - z for DTW, soft-DTW, OTAM and Drop-DTW, and -z for
S2DTW (VT-TWINS' negative dot product on normalised embeddings).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from vtbench.align import (
    KERNELS,
    drop_dtw,
    dtw,
    dtw_path,
    expected_alignment,
    otam,
    s2dtw,
    s2dtw_grid,
    soft_dtw,
    soft_dtw_alignment,
)

KERNEL_NAMES = tuple(KERNELS)  # the kernels vtbench.align registers
DROP_COST = 0.5  # Drop-DTW's drop cost in the figures of trained runs (on 1 - cos)
KERNEL_TITLES = {
    "dtw": "DTW",
    "soft_dtw": "soft-DTW",
    "s2dtw": "S2DTW (VT-TWINS)",
    "otam": "OTAM (TempCLR)",
    "drop_dtw": "Drop-DTW",
}


@dataclass
class Pair:
    """One video (rows: clips in time order) against one text (columns: sentences in order).

    similarity: (N, M) cosine similarities in [-1, 1]; truth: (N, M) bool, True where clip i shows
    what sentence j says (None when unknown); labels name the rows and columns for the figures.
    """

    name: str
    similarity: torch.Tensor
    truth: torch.Tensor | None = None
    row_labels: list[str] | None = None
    col_labels: list[str] | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.similarity.dim() != 2:
            raise ValueError(f"similarity must be (N, M), got {tuple(self.similarity.shape)}")
        if self.truth is not None and self.truth.shape != self.similarity.shape:
            raise ValueError(f"truth {tuple(self.truth.shape)} must match similarity {tuple(self.similarity.shape)}")

    @property
    def cost(self) -> torch.Tensor:
        """1 - z, the cosine cost that the figures show."""
        return 1 - self.similarity


@dataclass
class Alignment:
    """A kernel's answer on one pair: value, expected alignment E and hard path, each (N, M)."""

    kernel: str
    value: float
    expected: torch.Tensor
    path: torch.Tensor
    settings: dict


def alignment_settings(loss_args: dict) -> dict:
    """The :func:`align` settings a method trained with, from its config's ``loss_args``: its gamma
    and, for VT-TWINS, S2DTW's smooth_gamma and skip_cost (align's defaults, the published values,
    for those a method does not have). Drop-DTW keeps its own drop cost, DROP_COST: no method trains
    with it, and S2DTW's skip cost is on another scale (-cos, not 1 - cos)."""
    settings = {key: loss_args[key] for key in ("gamma", "smooth_gamma", "skip_cost") if key in loss_args}
    return {**settings, "drop_cost": DROP_COST}


def check_kernel(kernel: str) -> str:
    if kernel not in KERNEL_NAMES:
        raise ValueError(f"kernel must be one of {KERNEL_NAMES}, got {kernel!r}")
    return kernel


def _s2dtw_cells(grid_alignment: torch.Tensor) -> torch.Tensor:
    """The real cells G[2i+1, 2j+1] of an S2DTW grid, back in (N, M)."""
    return grid_alignment[..., 1::2, 1::2]


def align(pair: Pair | torch.Tensor, kernel: str, gamma: float = 0.1, smooth_gamma: float = 0.1,
          skip_cost: float = 0.5, drop_cost: float | None = None) -> Alignment:
    """Run ``kernel`` on a pair (or a raw (N, M) similarity) in float64.

    ``gamma`` is the soft-min temperature of soft-DTW, S2DTW, OTAM and Drop-DTW (DTW ignores it);
    ``smooth_gamma`` and ``skip_cost`` are S2DTW's smoothing temperature and skip cost tau (on -cos);
    ``drop_cost`` is Drop-DTW's cost of dropping a clip (on 1 - cos; None: ``skip_cost``, as the
    explorer's one "skip / drop cost" slider sets both). Drop-DTW's rows are the sentences, which
    are all matched, so a pair needs at least as many clips as sentences.
    """
    check_kernel(kernel)
    z = (pair.similarity if isinstance(pair, Pair) else pair).detach().to(torch.float64).cpu()
    cost = 1 - z
    settings = {"gamma": gamma, "smooth_gamma": smooth_gamma, "skip_cost": skip_cost}
    if kernel == "dtw":
        path = dtw_path(cost)
        return Alignment(kernel, float(dtw(cost)), path, path, {})
    if kernel == "soft_dtw":
        return Alignment(kernel, float(soft_dtw(cost, gamma)), soft_dtw_alignment(cost, gamma), dtw_path(cost),
                         {"gamma": gamma})
    if kernel == "s2dtw":
        grid = s2dtw_grid(-z, smooth_gamma, skip_cost)
        value = float(s2dtw(-z, gamma, smooth_gamma, skip_cost))
        return Alignment(kernel, value, _s2dtw_cells(soft_dtw_alignment(grid, gamma)),
                         _s2dtw_cells(dtw_path(grid)), settings)
    if kernel == "otam":
        return _otam_both_ways(cost, gamma)
    n, m = cost.shape
    if m > n:
        raise ValueError(f"drop_dtw matches every sentence to a clip: it needs at least as many clips as "
                         f"sentences, got {n} clips and {m} sentences")
    drop_cost = skip_cost if drop_cost is None else drop_cost
    drop = torch.full((n,), float(drop_cost), dtype=cost.dtype)
    steps_by_clips = cost.T.contiguous()  # Drop-DTW: steps are rows, clips are columns

    def kernel_fn(c, g):
        return drop_dtw(c, drop, g)

    value = float(kernel_fn(steps_by_clips, gamma))
    expected = expected_alignment(kernel_fn, steps_by_clips, gamma).T
    path = expected_alignment(kernel_fn, steps_by_clips, 0.0).T
    return Alignment(kernel, value, expected, path, {"gamma": gamma, "drop_cost": drop_cost})


def _otam_both_ways(cost: torch.Tensor, gamma: float) -> Alignment:
    """TempCLR's symmetric OTAM(C) + OTAM(C^T). One direction assigns every column exactly one row
    and lets the rows start late and end early; the figure shows the mean of both directions'
    visit probabilities and the union of both hard paths."""
    value = float(otam(cost, gamma) + otam(cost.T, gamma))
    expected = (expected_alignment(otam, cost, gamma) + expected_alignment(otam, cost.T, gamma).T) / 2
    path = torch.maximum(expected_alignment(otam, cost, 0.0), expected_alignment(otam, cost.T, 0.0).T)
    return Alignment("otam", value, expected, path, {"gamma": gamma})


def path_accuracy(path: torch.Tensor, truth: torch.Tensor | None) -> float:
    """Share of the path's matched cells (clip, sentence) that the ground truth confirms; NaN
    without ground truth or without matched cells. Background clips a path skips do not count."""
    if truth is None:
        return float("nan")
    matched = path > 0.5
    total = int(matched.sum())
    return float("nan") if total == 0 else int((matched & truth.bool()).sum()) / total


def truth_mass(expected: torch.Tensor, truth: torch.Tensor | None) -> float:
    """Share of the expected alignment's mass on ground-truth cells (the soft path precision)."""
    if truth is None or float(expected.sum()) == 0:
        return float("nan")
    return float((expected * truth.to(expected.dtype)).sum() / expected.sum())


def sentence_recall(path: torch.Tensor, truth: torch.Tensor | None) -> float:
    """Share of the sentences with ground truth whose matched clips include at least one true clip
    (step-localisation recall, the path read as a localiser)."""
    if truth is None:
        return float("nan")
    has_truth = truth.any(0)
    if not bool(has_truth.any()):
        return float("nan")
    hit = ((path > 0.5) & truth.bool()).any(0)
    return float((hit & has_truth).sum()) / float(has_truth.sum())

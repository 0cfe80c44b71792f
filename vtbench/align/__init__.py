"""Alignment kernels: DTW, soft-DTW, S2DTW, OTAM and Drop-DTW on one DP engine.

>>> import torch
>>> from vtbench.align import soft_dtw, pairwise_cost
>>> x, y = torch.randn(4, 10, 16), torch.randn(4, 12, 16)
>>> soft_dtw(pairwise_cost(x, y, "sqeuclidean"), gamma=0.1).shape
torch.Size([4])
"""
from .checks import set_value_checks, value_checks
from .costs import METRICS, pairwise_cost
from .engine import solve, solve_alignment
from .recursions import DROP_DTW, OTAM, RECURSIONS, SOFT_DTW, Move, Recursion
from .variants import (
    drop_dtw,
    dtw,
    dtw_path,
    expected_alignment,
    otam,
    s2dtw,
    s2dtw_grid,
    smooth_cost,
    soft_dtw,
    soft_dtw_alignment,
)

KERNELS = {"dtw": dtw, "soft_dtw": soft_dtw, "s2dtw": s2dtw, "otam": otam, "drop_dtw": drop_dtw}

__all__ = [
    "KERNELS", "METRICS", "DROP_DTW", "OTAM", "RECURSIONS", "SOFT_DTW", "Move", "Recursion",
    "drop_dtw", "dtw", "dtw_path", "expected_alignment", "otam", "pairwise_cost", "s2dtw",
    "s2dtw_grid", "set_value_checks", "smooth_cost", "soft_dtw", "soft_dtw_alignment", "solve", "solve_alignment",
    "value_checks",
]

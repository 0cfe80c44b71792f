"""Pairwise costs between two sequences of embeddings, from one matmul.

Never expands to (B, N, M, D): cosine and squared Euclidean are rewritten through dot products.
"""
from __future__ import annotations

import torch

METRICS = ("cosine", "dot", "sqeuclidean")


def _check(x, y, metric, all_pairs):
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor of shape (..., L, D)")
        if t.dim() < 2:
            raise ValueError(f"{name} must have shape (..., L, D), got {tuple(t.shape)}")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"x and y must share the embedding size D, got {x.shape[-1]} and {y.shape[-1]}")
    if all_pairs and (x.dim() != 3 or y.dim() != 3):
        raise ValueError(f"all_pairs needs x (B_x, N, D) and y (B_y, M, D), got {tuple(x.shape)} and {tuple(y.shape)}")


def pairwise_cost(x, y, metric="cosine", *, all_pairs=False, eps=1e-8):
    """Cost between x (..., N, D) and y (..., M, D) -> (..., N, M).

    * ``cosine``: 1 - <x, y> / (|x| |y| + eps)  (TempCLR uses eps = 0.01);
    * ``dot``: -<x, y>  (VT-TWINS, on L2-normalised embeddings);
    * ``sqeuclidean``: |x|^2 + |y|^2 - 2 <x, y>  (the soft-DTW papers).

    With ``all_pairs=True``, x (B_x, N, D) and y (B_y, M, D) give every pair (B_x, B_y, N, M) from
    one matmul (B_x N, D) x (D, B_y M), as a contrastive batch needs; the result is contiguous, each
    pair's (N, M) block in one piece, as the alignment kernels read it.
    """
    _check(x, y, metric, all_pairs)
    if all_pairs:
        (bx, n, d), (by, m, _) = x.shape, y.shape
        dots = (x.reshape(bx * n, d) @ y.reshape(by * m, d).T).view(bx, n, by, m).transpose(1, 2).contiguous()
        if metric == "dot":  # in place on our own copy: no more memory, and neg's backward needs no input
            return dots.neg_()
    else:
        dots = x @ y.transpose(-1, -2)  # (..., N, M)
    if metric == "dot":
        return -dots
    xn, yn = x.norm(dim=-1), y.norm(dim=-1)  # (..., N), (..., M)
    xn, yn = (xn[:, None, :, None], yn[None, :, None, :]) if all_pairs else (xn[..., :, None], yn[..., None, :])
    if metric == "cosine":
        return 1 - dots / (xn * yn + eps)
    return (xn.square() + yn.square() - 2 * dots).clamp_min(0)

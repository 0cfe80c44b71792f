"""The reference backend: an anti-diagonal wavefront in plain torch.

Readable rather than fast, it runs on any device and is the oracle every other backend is
checked against. The forward pass fills R diagonal by diagonal (cells on one anti-diagonal are
independent); the backward pass walks the diagonals in reverse and pushes each cell's expected
alignment to its predecessors with the soft-min weights of the forward pass:

    E[pred] += E[cell] * exp((R[cell] - C[cell] - R[pred]) / gamma)     (gamma > 0)
    E[pred] += E[cell] * [pred is the first argmin]                      (gamma = 0)

Everything is accumulated in float64 so that small gammas stay exact.
"""
from __future__ import annotations

import torch

from ..recursions import Recursion

INF = float("inf")


def _smin(values: torch.Tensor, gamma: float) -> torch.Tensor:
    """smin_gamma over dim 0 of (K, ...) values; +inf entries drop out, all +inf gives +inf."""
    low = values.amin(dim=0)
    if gamma == 0:
        return low
    shift = torch.where(torch.isinf(low), torch.zeros_like(low), low)
    total = torch.exp(-(values - shift) / gamma).sum(dim=0)
    return shift - gamma * torch.log(total)


def _weights(values: torch.Tensor, gamma: float) -> torch.Tensor:
    """d smin / d values, (K, ...): the soft-min probabilities exp(-(v_k - low) / gamma) / their sum,
    or a one-hot first argmin; 0 where every value is +inf (an unreachable cell or end).

    Normalised from the values themselves, not exp(-(v_k - smin) / gamma) with the smin of the
    forward: that smin carries the rounding of R (~1e-16 |R|), which a gamma far below it would
    blow up into weights > 1. These sum to 1 at every gamma, so E stays a probability."""
    low = values.amin(dim=0, keepdim=True)
    reachable = low < INF
    if gamma == 0:
        first = values.argmin(dim=0, keepdim=True)
        return torch.zeros_like(values).scatter_(0, first, reachable.to(values.dtype))
    e = torch.exp(-(values - torch.where(reachable, low, 0.0)) / gamma)  # the argmin's is 1: the sum is >= 1
    return torch.where(reachable, e / e.sum(dim=0, keepdim=True), 0.0)


def _diagonal(d: int, n: int, m: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    i = torch.arange(max(0, d - m + 1), min(n - 1, d) + 1, device=device)
    return i, d - i


def _boundary(rec: Recursion, batch: int, n: int, m: int, like: torch.Tensor) -> torch.Tensor:
    """R padded with the boundary row and column: (B, S, N + 1, M + 1), interior +inf."""
    R = like.new_full((batch, rec.n_states, n + 1, m + 1), INF)
    for s, start in enumerate(rec.starts):
        if start == "corner":
            R[:, s, 0, 0] = 0.0
        elif start == "left":
            R[:, s, 1:, 0] = 0.0
        elif start == "left_first":
            R[:, s, 1, 0] = 0.0
    return R


def _predecessors(R, rec, s, i, j, col_mask):
    """Values of the predecessors of state s at cells (i, j): (K, B, L)."""
    values = []
    for move in rec.moves[s]:
        v = R[:, move.src, i + 1 - move.di, j + 1 - move.dj]  # (B, L)
        if move.masked and col_mask is not None:
            v = torch.where(col_mask[:, j], v, INF)
        values.append(v)
    return torch.stack(values)


def _end_values(R, rec, n_len, m_len, gamma):
    b = torch.arange(R.shape[0], device=R.device)
    finals = torch.stack([R[b, s, n_len, m_len] for s in rec.final])  # (F, B)
    return finals, _smin(finals, gamma)


def forward(cost, rec: Recursion, gamma, n_len, m_len, col_mask):
    """cost (B, S, N, M) -> value (B,) and the saved table R (B, S, N + 1, M + 1), float64."""
    B, S, N, M = cost.shape
    C = cost.to(torch.float64)
    R = _boundary(rec, B, N, M, C)
    for d in range(N + M - 1):
        i, j = _diagonal(d, N, M, C.device)
        for s in range(S):
            R[:, s, i + 1, j + 1] = C[:, s, i, j] + _smin(_predecessors(R, rec, s, i, j, col_mask), gamma)
    _, value = _end_values(R, rec, n_len, m_len, gamma)
    return value.to(cost.dtype), R


def backward(cost, R, rec: Recursion, gamma, n_len, m_len, col_mask):
    """The expected alignment E = d value / d cost, (B, S, N, M), in the cost's dtype."""
    B, S, N, M = cost.shape
    E = torch.zeros_like(R)
    b = torch.arange(B, device=R.device)
    finals, _ = _end_values(R, rec, n_len, m_len, gamma)
    seed = _weights(finals, gamma)
    for k, s in enumerate(rec.final):
        E[b, s, n_len, m_len] = seed[k]
    for d in reversed(range(N + M - 1)):
        i, j = _diagonal(d, N, M, R.device)
        for s in range(S):
            e = E[:, s, i + 1, j + 1]  # (B, L)
            live = e > 0
            if R.device.type == "cpu" and not bool(live.any()):
                continue  # nothing reaches this diagonal (on a GPU, asking would wait for the queue)
            preds = _predecessors(R, rec, s, i, j, col_mask)
            w = _weights(preds, gamma)
            push = torch.where(live, e * w, 0.0)  # (K, B, L)
            for move, p in zip(rec.moves[s], push):
                E[:, move.src, i + 1 - move.di, j + 1 - move.dj] += p
    return E[:, :, 1:, 1:].to(cost.dtype)
def available(device):
    return True

"""One DP engine for every alignment kernel.

``solve(cost, rec, gamma, ...)`` evaluates a :class:`~vtbench.align.recursions.Recursion` on a
batch of cost grids with a chosen backend, differentiably: the backward pass is the backend's own
O(S N M) reverse wavefront (the expected alignment), never autograd through a loop over cells.
The variants in :mod:`vtbench.align.variants` are short definitions on top of it.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from . import backends
from .recursions import Recursion


class _Solve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cost, rec, gamma, n_len, m_len, col_mask, backend):
        value, saved = backend.forward(cost, rec, gamma, n_len, m_len, col_mask)
        ctx.args = (saved, rec, gamma, n_len, m_len, col_mask, backend)
        ctx.save_for_backward(cost)
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_value):
        (cost,) = ctx.saved_tensors
        saved, rec, gamma, n_len, m_len, col_mask, backend = ctx.args
        E = backend.backward(cost, saved, rec, gamma, n_len, m_len, col_mask)
        return E.mul_(grad_value.to(E.dtype)[:, None, None, None]), None, None, None, None, None, None  # E is ours


def valid_cells(n_len: torch.Tensor, m_len: torch.Tensor, n: int, m: int) -> torch.Tensor:
    """(..., N, M) bool: the cells inside each pair's lengths."""
    rows = torch.arange(n, device=n_len.device) < n_len[..., None]
    cols = torch.arange(m, device=m_len.device) < m_len[..., None]
    return rows[..., :, None] & cols[..., None, :]


def band_mask(n: int, m: int, bandwidth: int | None, device) -> torch.Tensor | None:
    """(N, M) bool: the Sakoe-Chiba band |i - j| <= bandwidth, or None for no band."""
    if bandwidth is None:
        return None
    i = torch.arange(n, device=device)[:, None]
    j = torch.arange(m, device=device)[None, :]
    return (i - j).abs() <= bandwidth


def solve(
    cost: torch.Tensor,
    rec: Recursion,
    gamma: float,
    n_len: torch.Tensor,
    m_len: torch.Tensor,
    col_mask: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Value of ``rec`` for every pair: cost (B, S, N, M), lengths (B,) -> (B,).

    Inputs are assumed validated (the public variants do that); cells beyond a pair's lengths
    must hold finite values and receive zero gradient.
    """
    if cost.dtype in (torch.float16, torch.bfloat16):
        return solve(cost.float(), rec, gamma, n_len, m_len, col_mask, backend).to(cost.dtype)
    module = backends.select(backend, cost.device)
    return _Solve.apply(cost, rec, gamma, n_len, m_len, col_mask, module)


@torch.no_grad()
def solve_alignment(cost, rec, gamma, n_len, m_len, col_mask=None, backend="auto") -> torch.Tensor:
    """The expected alignment d value / d cost, (B, S, N, M), without building a graph."""
    module = backends.select(backend, cost.device)
    _, saved = module.forward(cost, rec, gamma, n_len, m_len, col_mask)
    return module.backward(cost, saved, rec, gamma, n_len, m_len, col_mask)

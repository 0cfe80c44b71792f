"""One DP engine for every alignment kernel.

``solve(cost, rec, gamma, ...)`` evaluates a :class:`~vtbench.align.recursions.Recursion` on a
batch of cost grids with a chosen backend, differentiably: the backward pass is the backend's own
O(S N M) reverse wavefront (the expected alignment), never autograd through a loop over cells.
The variants in :mod:`vtbench.align.variants` are short definitions on top of it.
"""
from __future__ import annotations

import functools

import torch

from . import backends
from .checks import checking_values, value_range
from .recursions import Recursion

SECOND_DERIVATIVE = ("vtbench's alignment kernels are differentiable once: their gradient (the expected alignment, "
                     "from a reverse pass) has no derivative of its own, so a second derivative through them "
                     "(a gradient penalty, a Hessian-vector product, torch.autograd.grad(..., create_graph=True) "
                     "differentiated again) is not available")


class _NoSecondDerivative(torch.autograd.Function):
    """Passes a backward's gradients through, tied to the tensors they depend on, and raises
    :data:`SECOND_DERIVATIVE` if anything differentiates them."""

    @staticmethod
    def forward(ctx, n_grads, *tensors):
        return tuple(t.view_as(t) for t in tensors[:n_grads])

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(SECOND_DERIVATIVE)


def differentiable_once(backward):
    """torch's ``once_differentiable``, made loud: the backward runs without building a graph and,
    when its caller asked for one (``create_graph=True``), its gradients are tied to the saved
    tensors and the incoming gradients through a node that raises on a second differentiation.
    (``once_differentiable`` only does that when an incoming gradient requires grad; otherwise the
    gradients come back as constants and a second derivative through them is silently wrong.)"""

    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        with torch.no_grad():
            grads = backward(ctx, *grad_outputs)
        if not torch.is_grad_enabled():
            return grads
        depends = [t for t in (*ctx.saved_tensors, *grad_outputs) if isinstance(t, torch.Tensor) and t.requires_grad]
        if not depends:
            return grads
        at = [k for k, g in enumerate(grads) if isinstance(g, torch.Tensor)]
        tied = _NoSecondDerivative.apply(len(at), *(grads[k] for k in at), *depends)
        grads = list(grads)
        for k, g in zip(at, tied):
            grads[k] = g
        return tuple(grads)

    return wrapper


class _Solve(torch.autograd.Function):
    @staticmethod
    def forward(ctx, cost, rec, gamma, n_len, m_len, col_mask, backend, fill):
        extra = {} if fill is None else {"fill": fill}  # (only backends that read interleaved grids see fill)
        value, saved = backend.forward(cost, rec, gamma, n_len, m_len, col_mask, **extra)
        ctx.args = (saved, rec, gamma, n_len, m_len, col_mask, backend, extra)
        ctx.save_for_backward(cost)
        return value

    @staticmethod
    @differentiable_once
    def backward(ctx, grad_value):
        (cost,) = ctx.saved_tensors
        saved, rec, gamma, n_len, m_len, col_mask, backend, extra = ctx.args
        E = backend.backward(cost, saved, rec, gamma, n_len, m_len, col_mask, **extra)
        return (E.mul_(grad_value.to(E.dtype)[:, None, None, None]),  # E is ours
                None, None, None, None, None, None, None)


def interleave(cost: torch.Tensor, fill: float) -> torch.Tensor:
    """The grid (..., 2N+1, 2M+1) that holds cost (..., N, M) at (2i+1, 2j+1) and ``fill`` everywhere
    else (S2DTW's weak-alignment grid, with fill the skip cost); differentiable."""
    *batch, n, m = cost.shape
    grid = cost.new_full((*batch, 2 * n + 1, 2 * m + 1), float(fill))
    grid[..., 1::2, 1::2] = cost
    return grid


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


def _check_problem(cost, rec: Recursion, n_len, m_len, fill=None) -> None:
    """The shapes solve relies on, and (on the CPU, where reading them costs no sync, unless
    value_checks(False)) the lengths' values: a kernel indexes the grid with them (the C++ kernel
    also checks them itself). What the public variants check more kindly."""
    if not isinstance(cost, torch.Tensor) or cost.dim() != 4 or cost.shape[1] != rec.n_states:
        raise ValueError(f"cost must be a (B, S, N, M) tensor with S = {rec.n_states} (the states of {rec.name!r}), "
                         f"got {tuple(cost.shape) if isinstance(cost, torch.Tensor) else type(cost).__name__}")
    B, _, N, M = cost.shape
    if fill is not None:
        N, M = 2 * N + 1, 2 * M + 1
    for name, lengths, size in (("n_len", n_len, N), ("m_len", m_len, M)):
        if not isinstance(lengths, torch.Tensor) or lengths.dtype != torch.int64 or tuple(lengths.shape) != (B,):
            raise ValueError(f"{name} must be an int64 tensor of shape ({B},), got "
                             + (f"{lengths.dtype} of shape {tuple(lengths.shape)}" if isinstance(lengths, torch.Tensor)
                                else type(lengths).__name__))
        if lengths.device.type == "cpu" and B and checking_values():
            low, high = value_range(lengths)
            if low < 1 or high > size:
                raise ValueError(f"{name} must lie in 1..{size} (the grid's size), got values in {low}..{high}")


def solve(
    cost: torch.Tensor,
    rec: Recursion,
    gamma: float,
    n_len: torch.Tensor,
    m_len: torch.Tensor,
    col_mask: torch.Tensor | None = None,
    backend: str = "auto",
    fill: float | None = None,
) -> torch.Tensor:
    """Value of ``rec`` for every pair: cost (B, S, N, M), lengths (B,) -> (B,).

    With ``fill``, the recursion runs on ``interleave(cost, fill)``, (B, S, 2N+1, 2M+1), and the
    lengths and column mask are that grid's; backends that can (``INTERLEAVED``: cpu, triton) read it
    from the cost without building it. Inputs are assumed validated (the public variants do
    that); cells beyond a pair's lengths must hold finite values and receive zero gradient.
    """
    if cost.dtype in (torch.float16, torch.bfloat16):
        return solve(cost.float(), rec, gamma, n_len, m_len, col_mask, backend, fill).to(cost.dtype)
    _check_problem(cost, rec, n_len, m_len, fill)
    module = backends.select(backend, cost.device, rec)
    if fill is not None and not getattr(module, "INTERLEAVED", False):
        cost, fill = interleave(cost, fill), None
    return _Solve.apply(cost, rec, gamma, n_len, m_len, col_mask, module, None if fill is None else float(fill))


@torch.no_grad()
def solve_alignment(cost, rec, gamma, n_len, m_len, col_mask=None, backend="auto") -> torch.Tensor:
    """The expected alignment d value / d cost, (B, S, N, M), without building a graph."""
    if cost.dtype in (torch.float16, torch.bfloat16):
        return solve_alignment(cost.float(), rec, gamma, n_len, m_len, col_mask, backend).to(cost.dtype)
    _check_problem(cost, rec, n_len, m_len)
    module = backends.select(backend, cost.device, rec)
    _, saved = module.forward(cost, rec, gamma, n_len, m_len, col_mask)
    return module.backward(cost, saved, rec, gamma, n_len, m_len, col_mask)

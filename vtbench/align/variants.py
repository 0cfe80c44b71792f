"""The alignment kernels of vtbench, each a short definition on the DP engine.

All take a cost tensor of shape (..., N, M) with any leading batch dimensions and return (...);
all are differentiable with respect to the cost (and drop costs), in float32 and float64, on any
device. ``x_lengths``/``y_lengths`` give each pair's own (n, m) inside a padded tensor: the value
is then that of the (n, m) top-left block and padded cells get zero gradient.
"""
from __future__ import annotations

import math

import torch

from .checks import check_bandwidth, check_cost, check_gamma, check_lengths, checking_values
from . import backends
from .engine import band_mask, differentiable_once, interleave, solve, solve_alignment, valid_cells
from .recursions import DROP_DTW, OTAM, SOFT_DTW

INF = float("inf")


def _prepare(cost, gamma, x_lengths, y_lengths, bandwidth=None):
    """Validate, zero the padding, apply the band; return flat (B, N, M) cost and lengths."""
    if not isinstance(cost, torch.Tensor):
        raise TypeError(f"cost must be a torch.Tensor, got {type(cost).__name__}")
    if cost.dim() < 2:
        raise ValueError(f"cost must have shape (..., N, M), got {tuple(cost.shape)}")
    gamma = check_gamma(gamma)
    *batch, n, m = cost.shape
    batch = torch.Size(batch)
    n_len = check_lengths(x_lengths, batch, n, "x_lengths", cost.device)
    m_len = check_lengths(y_lengths, batch, m, "y_lengths", cost.device)
    bandwidth = check_bandwidth(bandwidth, n_len, m_len, _own_shape(cost, x_lengths, y_lengths))
    if x_lengths is not None or y_lengths is not None:  # padded cells may hold anything: zero them
        valid = valid_cells(n_len, m_len, n, m)
        cost = torch.where(valid, cost, torch.zeros((), dtype=cost.dtype, device=cost.device))
    check_cost(cost)
    return _banded(cost, bandwidth).reshape(-1, n, m), gamma, n_len.reshape(-1), m_len.reshape(-1), batch


def _own_shape(cost, x_lengths, y_lengths) -> tuple[int, int] | None:
    """(N, M) when every pair has the cost's own lengths (none given): what the checks can read
    off the shape, without waiting for the device."""
    return tuple(cost.shape[-2:]) if x_lengths is None and y_lengths is None else None


def _banded(cost, bandwidth):
    """+inf outside the Sakoe-Chiba band |i - j| <= bandwidth (no band: the cost itself)."""
    band = band_mask(*cost.shape[-2:], bandwidth, cost.device)
    return cost if band is None else cost.masked_fill(~band, INF)


def soft_dtw(cost, gamma=1.0, *, x_lengths=None, y_lengths=None, bandwidth=None, backend="auto"):
    """Soft-DTW (Cuturi & Blondel, ICML 2017); ``gamma=0`` is hard DTW.

        R[i,j] = C[i,j] + smin_gamma(R[i-1,j-1], R[i-1,j], R[i,j-1]),  R[-1,-1] = 0,
        soft_dtw(C) = R[n-1, m-1].

    cost (..., N, M) -> (...). O(NM) time per pair. ``bandwidth`` w restricts paths to the
    Sakoe-Chiba band |i - j| <= w (a ValueError if that leaves a pair's end cell unreachable).
    R accumulates in float64, and each cell's soft-min weights are normalised from its
    predecessors' R, so the gradient stays a probability at any gamma (tending to the hard path as
    gamma -> 0, even below R's resolution, gamma < ~1e-15 |R|). The triton backend takes them from R
    itself, exp((R - C - R_pred) / gamma), exact to ~1e-16 |R| / gamma: use gamma >= 1e-10 |R| on a
    GPU, or gamma = 0 (exact hard DTW).
    """
    c, gamma, n_len, m_len, batch = _prepare(cost, gamma, x_lengths, y_lengths, bandwidth)
    return solve(c[:, None], SOFT_DTW, gamma, n_len, m_len, None, backend).reshape(batch)


def dtw(cost, *, x_lengths=None, y_lengths=None, bandwidth=None, backend="auto"):
    """Hard DTW: ``soft_dtw`` with gamma = 0, R[i,j] = C[i,j] + min(...)."""
    return soft_dtw(cost, 0.0, x_lengths=x_lengths, y_lengths=y_lengths, bandwidth=bandwidth, backend=backend)


def soft_dtw_alignment(cost, gamma=1.0, *, x_lengths=None, y_lengths=None, bandwidth=None, backend="auto"):
    """The expected alignment E = d soft_dtw / d C, (..., N, M): E[i,j] is the probability that
    the Gibbs-weighted path visits (i, j). 0 <= E <= 1, E[0,0] = E[n-1,m-1] = 1."""
    detached = cost.detach() if isinstance(cost, torch.Tensor) else cost  # (_prepare names a non-tensor)
    c, gamma, n_len, m_len, batch = _prepare(detached, gamma, x_lengths, y_lengths, bandwidth)
    E = solve_alignment(c[:, None], SOFT_DTW, gamma, n_len, m_len, None, backend)
    return E[:, 0].reshape(cost.shape)


def dtw_path(cost, *, x_lengths=None, y_lengths=None, bandwidth=None, backend="auto"):
    """The optimal DTW path as a 0/1 tensor (..., N, M) (ties broken towards the diagonal)."""
    return soft_dtw_alignment(cost, 0.0, x_lengths=x_lengths, y_lengths=y_lengths, bandwidth=bandwidth, backend=backend)


class _Smooth(torch.autograd.Function):
    """S = d + smin_gs(neighbours of d); the backward reuses the forward's soft-min weights
    (3, ..., N, M). This torch form is the reference; ``fast`` is a backend module with its own
    ``smooth_forward``/``smooth_backward`` (cpu, triton) that must equal it."""

    @staticmethod
    def forward(ctx, d, gs, fast):
        ctx.fast = fast
        if fast is not None:
            smoothed, weights = fast.smooth_forward(d.reshape(-1, *d.shape[-2:]), gs)
            ctx.save_for_backward(weights, d)  # (d: what a second derivative would depend on)
            return smoothed.view(d.shape)
        neighbours = d.new_full((3, *d.shape), INF)  # (3, ..., N, M); +inf where a neighbour is missing
        neighbours[0, ..., :, 1:] = d[..., :, :-1]  # d[i, j-1]
        neighbours[1, ..., 1:, :] = d[..., :-1, :]  # d[i-1, j]
        neighbours[2, ..., 1:, 1:] = d[..., :-1, :-1]  # d[i-1, j-1]
        neighbours[..., 0, 0] = 0.0  # the three missing neighbours of (0, 0) count as 0
        low = neighbours.amin(0)  # finite: every cell has a neighbour
        if gs == 0:
            weights = torch.zeros_like(neighbours).scatter_(0, neighbours.argmin(0, keepdim=True), 1.0)
            smin = low
        else:
            weights = torch.exp((low - neighbours) / gs)
            total = weights.sum(0)
            smin = low - gs * torch.log(total)
            weights /= total
        ctx.save_for_backward(weights, d)
        return d + smin

    @staticmethod
    @differentiable_once
    def backward(ctx, grad):
        weights, _ = ctx.saved_tensors
        if ctx.fast is not None:
            return ctx.fast.smooth_backward(grad.reshape(-1, *grad.shape[-2:]), weights).view(grad.shape), None, None
        to_neighbour = weights * grad  # (3, ..., N, M): what each cell sends to each neighbour
        grad_d = grad.clone()
        grad_d[..., :, :-1] += to_neighbour[0][..., :, 1:]
        grad_d[..., :-1, :] += to_neighbour[1][..., 1:, :]
        grad_d[..., :-1, :-1] += to_neighbour[2][..., 1:, 1:]
        return grad_d, None, None


def smooth_cost(cost, smooth_gamma=0.1, *, backend="auto"):
    """S2DTW's local neighbourhood smoothing (Ko et al., CVPR 2022):

        S[i,j] = d[i,j] + smin_gs(d[i,j-1], d[i-1,j], d[i-1,j-1]) over the neighbours that exist,
        S[0,0] = d[0,0] - gs * log 3 (the three missing neighbours count as 0).

    ``backend`` as for the DPs: the cpu backend smooths in C++, triton in a Triton kernel, torch in torch.
    """
    check_cost(cost)
    return _smooth(cost, check_gamma(smooth_gamma, "smooth_gamma"), backend)


def _smooth(cost, gs: float, backend: str):
    module = backends.select(backend, cost.device)
    fast = (module if hasattr(module, "smooth_forward") and cost.dtype in (torch.float32, torch.float64)
            and cost.numel() > 0 else None)
    return _Smooth.apply(cost, gs, fast)


def _check_skip_cost(skip_cost) -> float:
    if isinstance(skip_cost, bool) or not isinstance(skip_cost, (int, float)) or not math.isfinite(skip_cost):
        raise ValueError(f"skip_cost must be a finite number, got {skip_cost!r}")
    return float(skip_cost)


def s2dtw_grid(cost, smooth_gamma=0.1, skip_cost=0.5, *, backend="auto"):
    """S2DTW's weak-alignment grid: (..., 2N+1, 2M+1) with G[2i+1, 2j+1] = S[i,j] and every other
    cell the skip cost tau, so that a path may skip a clip or a sentence by walking over tau."""
    tau = _check_skip_cost(skip_cost)
    return interleave(smooth_cost(cost, smooth_gamma, backend=backend), tau)


def s2dtw(cost, gamma=0.1, smooth_gamma=0.1, skip_cost=0.5, *, x_lengths=None, y_lengths=None,
          bandwidth=None, backend="auto"):
    """S2DTW, the weak alignment of VT-TWINS (Ko et al., CVPR 2022), for any N and M:

        S2DTW(d) = soft_dtw_gamma(G),  G = s2dtw_grid(smooth(d, smooth_gamma), skip_cost),

    with d the base cost (VT-TWINS: d = -<v_i, t_j> on L2-normalised embeddings). cost (..., N, M)
    -> (...). Published defaults: gamma = smooth_gamma = 0.1, skip_cost = 0.5.
    """
    c, gamma, n_len, m_len, batch = _prepare(cost, gamma, x_lengths, y_lengths)
    tau = _check_skip_cost(skip_cost)
    smoothed = _smooth(c, check_gamma(smooth_gamma, "smooth_gamma"), backend)  # (c is checked)
    if bandwidth is None:  # the engine runs on interleave(smoothed, tau) (cpu and triton: without building it)
        value = solve(smoothed[:, None], SOFT_DTW, gamma, 2 * n_len + 1, 2 * m_len + 1, None, backend, fill=tau)
    else:  # a real cell (i, j) sits at (2i+1, 2j+1): |i - j| <= w <=> grid band 2w + 1, skip cells included
        check_bandwidth(bandwidth, n_len, m_len, _own_shape(cost, x_lengths, y_lengths))
        grid = _banded(interleave(smoothed, tau), 2 * bandwidth + 1)
        value = solve(grid[:, None], SOFT_DTW, gamma, 2 * n_len + 1, 2 * m_len + 1, None, backend)
    return value.reshape(batch)


def otam(cost, gamma=0.1, *, x_lengths=None, y_lengths=None, backend="auto"):
    """OTAM (Cao et al., CVPR 2020) in one direction, as TempCLR uses it (``gamma=0`` is hard).

    C is padded with a zero column on each side; the path may start in any row of the left pad
    column, the first row accumulates, and vertical moves are allowed only in the first real
    column and the right pad column; OTAM(C) = R[n-1, m+1]. TempCLR sums OTAM(C) + OTAM(C^T).
    """
    c, gamma, n_len, m_len, batch = _prepare(cost, gamma, x_lengths, y_lengths)
    padded = torch.nn.functional.pad(c, (0, 1))  # the right pad column; the left one is R[i,-1] = 0
    cols = torch.arange(c.shape[-1] + 1, device=c.device)
    col_mask = (cols == 0) | (cols == m_len[:, None])  # (B, M + 1): where vertical moves are allowed
    return solve(padded[:, None], OTAM, gamma, n_len, m_len + 1, col_mask, backend).reshape(batch)


def drop_dtw(cost, drop_cost, gamma=0.0, *, x_lengths=None, y_lengths=None, backend="auto"):
    """Drop-DTW (Dvornik et al., NeurIPS 2021): steps are rows, clips are columns; every step is
    matched in order, each clip j is matched or dropped at cost drop[j].

        Dp[i,j] = C[i,j] + smin(Dp[i-1,j-1], Dm[i-1,j-1], Dp[i,j-1])
        Dm[i,j] = drop[j] + smin(Dp[i,j-1], Dm[i,j-1]),  Dm[0,0] = 0, Dm[0,j] = sum(drop[:j])
        drop_dtw = smin(Dp[n,m], Dm[n,m])          (1-based tables, as in the paper)

    cost (..., N, M), drop_cost (..., M) or anything that broadcasts to it, a number included (+inf
    forbids dropping) -> (...).
    """
    c, gamma, n_len, m_len, batch = _prepare(cost, gamma, x_lengths, y_lengths)
    shape = _own_shape(cost, x_lengths, y_lengths)
    if shape is not None and shape[0] > shape[1] and c.numel():  # read off the shape: checked always
        raise ValueError(f"drop_dtw matches every step (row) to at least one clip (column): cost has "
                         f"{shape[0]} rows but {shape[1]} columns")
    if shape is None and checking_values() and bool((n_len > m_len).any()):  # (unchecked: such a pair gets +inf)
        raise ValueError("drop_dtw matches every step (row) to at least one clip (column): "
                         "x_lengths must not exceed y_lengths")
    if isinstance(drop_cost, bool):
        raise ValueError(f"drop_cost must be a floating-point tensor or a number, got {drop_cost!r}")
    if isinstance(drop_cost, (int, float)):  # a fill, not a copy from the host
        drop_cost = torch.full((), float(drop_cost), dtype=cost.dtype, device=cost.device)
    elif not isinstance(drop_cost, torch.Tensor):
        try:
            drop_cost = torch.as_tensor(drop_cost, dtype=cost.dtype, device=cost.device)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(f"drop_cost must be a floating-point tensor or a number, got {drop_cost!r}") from None
    if not drop_cost.is_floating_point():
        raise ValueError(f"drop_cost must be a floating-point tensor or a number, got {drop_cost.dtype}")
    n, m = c.shape[-2:]
    try:
        drop = drop_cost.to(device=c.device, dtype=c.dtype).expand(*batch, m).reshape(-1, m)
    except RuntimeError:
        raise ValueError(f"drop_cost must broadcast to (..., M) = {(*batch, m)}, got {tuple(drop_cost.shape)}") from None
    # the padding beyond y_lengths may hold anything, as the cost's
    drop = torch.where(torch.arange(m, device=c.device) < m_len[:, None], drop, torch.zeros((), dtype=c.dtype, device=c.device))
    check_cost(drop[:, None], "drop_cost", allow_inf=True)  # (B, 1, M): B may be 0
    matched = torch.nn.functional.pad(c, (0, 0, 1, 0), value=INF)  # row 0: no step yet
    dropped = drop[:, None, :].expand(-1, n + 1, m)
    grid = torch.stack([matched, dropped], dim=1)  # (B, 2, N + 1, M)
    return solve(grid, DROP_DTW, gamma, n_len + 1, m_len, None, backend).reshape(batch)


def expected_alignment(kernel, cost, *args, **kwargs):
    """d kernel(cost) / d cost for any kernel above (S2DTW, OTAM and Drop-DTW included), by autograd
    through the engine's backward: (..., N, M)."""
    if not isinstance(cost, torch.Tensor):
        raise TypeError(f"cost must be a torch.Tensor, got {type(cost).__name__}")
    with torch.enable_grad():
        leaf = cost.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(kernel(leaf, *args, **kwargs).sum(), leaf)
    return grad

"""Input validation shared by every public kernel: bad input is a ValueError naming the argument.

Types, shapes and hyperparameters are checked on the host, for free. The checks of the values in
tensors (no NaN or inf costs, lengths in range, an end cell the band can reach) must read the
device back: on a GPU each one waits until the queue has drained, so the host cannot run ahead,
and none is allowed inside a CUDA graph. ``value_checks(False)`` turns those off (on by default),
as torch.distributions' validate_args does: costs are then taken as they are (the value of a pair
with a NaN or inf cost is undefined, as it is for invalid arguments there), lengths are clamped into
1..size on the device instead of raising, and a pair whose lengths put its end cell outside the
band, or give Drop-DTW more steps than clips, gets +inf. Without lengths every pair has the cost's
own shape, which tells without a read-back: those two are then checked always.
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import torch

_check_values = True


def set_value_checks(enabled: bool) -> bool:
    """Turn the checks that read tensors' values back from the device on or off; returns the
    previous setting."""
    global _check_values
    if not isinstance(enabled, bool):
        raise ValueError(f"enabled must be True or False, got {enabled!r}")
    previous, _check_values = _check_values, enabled
    return previous


@contextlib.contextmanager
def value_checks(enabled: bool) -> Iterator[None]:
    """``with value_checks(False): ...`` runs the kernels without a device read-back (see above)."""
    previous = set_value_checks(enabled)
    try:
        yield
    finally:
        set_value_checks(previous)


def checking_values() -> bool:
    return _check_values


def check_cost(cost: torch.Tensor, name: str = "cost", *, allow_inf: bool = False) -> None:
    """Floating point, shape (..., N, M) with N, M >= 1, finite (``allow_inf``: +inf allowed)."""
    if not isinstance(cost, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(cost).__name__}")
    if cost.dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
        raise ValueError(f"{name} must be a floating-point tensor (float32, float64, float16 or bfloat16), got {cost.dtype}")
    if cost.dim() < 2:
        raise ValueError(f"{name} must have shape (..., N, M), got {tuple(cost.shape)}")
    if cost.shape[-1] == 0 or cost.shape[-2] == 0:
        raise ValueError(f"{name} must have N >= 1 and M >= 1, got shape {tuple(cost.shape)}")
    if not _check_values:
        return
    if not allow_inf and bool(torch.isfinite(cost.sum())):
        return  # the common case: one reduction (NaN and inf propagate into the sum), no temporaries;
        # a sum that overflows only sends finite costs the long way round
    bad = torch.isnan(cost) | (torch.isinf(cost) if not allow_inf else torch.isneginf(cost))
    if bool(bad.any()):
        what, rule = ("NaN or -inf", "finite or +inf") if allow_inf else ("NaN or inf", "finite")
        raise ValueError(f"{name} must be {rule}: it holds {int(bad.sum())} {what} value(s)")


def value_range(t: torch.Tensor) -> tuple:
    """(min, max) of a non-empty tensor as Python numbers, read back in one transfer (on a GPU: one
    sync, where int(t.min()) and int(t.max()) cost two)."""
    return tuple(torch.stack(torch.aminmax(t)).tolist())


def check_gamma(gamma: float, name: str = "gamma") -> float:
    if isinstance(gamma, torch.Tensor):
        if gamma.numel() != 1:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {tuple(gamma.shape)}")
        if gamma.requires_grad:
            raise ValueError(f"{name} is not differentiable: pass a number or a tensor that does not require grad")
        gamma = gamma.item()
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)):
        raise ValueError(f"{name} must be a number, got {type(gamma).__name__}")
    if not math.isfinite(gamma) or gamma < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {gamma}")
    return float(gamma)


def check_lengths(lengths, batch_shape: torch.Size, size: int, name: str, device) -> torch.Tensor:
    """Per-pair lengths as an int64 tensor of the batch shape, each in 1..size."""
    if lengths is None:
        return torch.full(batch_shape, size, dtype=torch.int64, device=device)
    if isinstance(lengths, torch.Tensor):
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise ValueError(f"{name} must hold integers, got {lengths.dtype}")
        t = lengths.to(device=device, dtype=torch.int64)
    elif isinstance(lengths, (int, Sequence)) and not isinstance(lengths, (str, bytes)):
        t = torch.as_tensor(lengths, device=device)
        if t.is_floating_point() or t.dtype == torch.bool:
            raise ValueError(f"{name} must hold integers, got {t.dtype}")
        t = t.to(torch.int64)
    else:
        raise ValueError(f"{name} must be a tensor or sequence of integers, got {type(lengths).__name__}")
    if t.dim() == 0:
        t = t.expand(batch_shape)
    if tuple(t.shape) != tuple(batch_shape):
        raise ValueError(f"{name} must have the batch shape {tuple(batch_shape)}, got {tuple(t.shape)}")
    if not _check_values:
        return t.clamp(1, size)  # on the device: a kernel never reads beyond the tensor
    if t.numel():
        low, high = value_range(t)
        if low < 1 or high > size:
            raise ValueError(f"{name} must lie in 1..{size} (the tensor's size), got values in {low}..{high}")
    return t


def check_bandwidth(bandwidth, n_len: torch.Tensor, m_len: torch.Tensor, shape=None) -> int | None:
    """The Sakoe-Chiba bandwidth, checked to leave every pair's end cell reachable. ``shape``: the
    cost's (N, M) when no lengths were given, so that the gap is known without reading the device
    and is checked even under ``value_checks(False)`` (otherwise a pair outside the band gets +inf)."""
    if bandwidth is None:
        return None
    if isinstance(bandwidth, bool) or not isinstance(bandwidth, int) or bandwidth < 0:
        raise ValueError(f"bandwidth must be an integer >= 0 or None, got {bandwidth!r}")
    if shape is not None:  # (an empty batch has no pair to reach)
        widest = abs(shape[0] - shape[1]) if n_len.numel() else 0
    elif not _check_values:
        return bandwidth
    else:
        widest = int((n_len - m_len).abs().max()) if n_len.numel() else 0
    if widest > bandwidth:
        raise ValueError(f"bandwidth={bandwidth} leaves the end cell unreachable: a pair has |n - m| = {widest}; "
                         f"use bandwidth >= {widest}")
    return bandwidth

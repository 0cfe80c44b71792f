"""Backends of the DP engine, registered by name.

Every backend exposes the same two functions over a batch of flattened problems:

* ``forward(cost, rec, gamma, n_len, m_len, col_mask) -> (value, saved)`` with cost (B, S, N, M),
  n_len and m_len (B,) int64 holding each pair's number of rows and columns (1..N, 1..M),
  col_mask (B, M) bool or None (where masked moves are allowed), value (B,) in cost's dtype, and
  ``saved`` whatever the backend needs for the backward pass;
* ``backward(cost, saved, rec, gamma, n_len, m_len, col_mask) -> E``, the expected alignment
  d value / d cost with shape (B, S, N, M).

``available(device)`` says whether a backend can run on a device, and ``unsupported(rec)``, where a
backend has it, why it cannot run a recursion (None: it can); the torch backend runs every one.
"""
from __future__ import annotations

import importlib
import warnings
from types import ModuleType

import torch

_MODULES = {"torch": "torch_ref", "cpu": "cpu", "triton": "triton_dp"}
BACKENDS = ("auto", *_MODULES)
_warned: set[str] = set()


def load(name: str) -> ModuleType:
    if name not in _MODULES:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    return importlib.import_module(f".{_MODULES[name]}", __name__)


def _usable(name: str, device: torch.device) -> bool:
    try:
        return load(name).available(device)
    except Exception as err:  # a missing compiler or package: fall back, and say so once
        if name not in _warned:
            _warned.add(name)
            warnings.warn(f"vtbench: the {name!r} backend is unavailable ({err}); using the torch backend", stacklevel=3)
        return False


def _refuses(module: ModuleType, rec) -> str | None:
    return None if rec is None or not hasattr(module, "unsupported") else module.unsupported(rec)


def select(name: str, device: torch.device, rec=None) -> ModuleType:
    """The backend module for ``name`` ("auto" picks cpu on CPU, triton on CUDA, else torch; and
    torch for a recursion ``rec`` the one it would pick cannot run)."""
    if name == "auto":
        preferred = "cpu" if device.type == "cpu" else "triton" if device.type == "cuda" else "torch"
        if preferred != "torch" and _usable(preferred, device) and not _refuses(load(preferred), rec):
            return load(preferred)
        return load("torch")
    module = load(name)
    if not module.available(device):
        raise ValueError(f"backend={name!r} cannot run on device {device}")
    reason = _refuses(module, rec)
    if reason:
        raise ValueError(f"backend={name!r} cannot run recursion {rec.name!r}: {reason} (backend='torch' runs "
                         "every recursion)")
    return module

"""The training objectives, registered by name with their published defaults."""
from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from .cali_nce import CaliNCE
from .infonce import InfoNCE
from .milnce import MILNCE
from .tempclr import TempCLR
from .vt_twins import VTTwins

LOSSES: dict[str, type[nn.Module]] = {
    "infonce": InfoNCE,
    "milnce": MILNCE,
    "vt-twins": VTTwins,
    "tempclr": TempCLR,
    "cali-nce": CaliNCE,
}


def _lookup(name: str) -> type[nn.Module]:
    if name not in LOSSES:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(LOSSES)}")
    return LOSSES[name]


def loss_parameters(name: str) -> dict[str, Any]:
    """The hyperparameters of method ``name`` and their (published) defaults."""
    params = inspect.signature(_lookup(name).__init__).parameters
    return {k: p.default for k, p in params.items() if p.kind is inspect.Parameter.KEYWORD_ONLY}


def build_loss(name: str, **hyperparameters) -> nn.Module:
    """``LOSSES[name](**hyperparameters)``; an unknown hyperparameter is a TypeError listing the valid ones."""
    valid = loss_parameters(name)
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        raise TypeError(f"method {name!r} has no hyperparameter(s) {unknown}; valid: {sorted(valid)}")
    return _lookup(name)(**hyperparameters)


def sampler_for(name: str) -> str:
    """The batch sampler (vtbench.data.samplers) method ``name`` trains on."""
    return _lookup(name).sampler

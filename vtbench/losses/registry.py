"""The training objectives, registered by name with their published defaults.

A new loss is an ``nn.Module`` class with a ``sampler`` class attribute (the name of the batch
sampler it trains on, ``vtbench.data.samplers.SAMPLERS``) and keyword-only hyperparameters, each
with a default of type bool, int, float or str (the types a config and ``--set key=value`` carry;
an annotation of one of them takes precedence over the default's type, so ``margin: float = 1``
accepts 0.5; a hyperparameter named like a config field, such as ``embed_dim``, takes that
field's value and must have its type). Register it from Python with :func:`register_loss`; for
the command line, publish it as an entry point of the group ``vtbench.losses`` in the package
that defines it::

    [project.entry-points."vtbench.losses"]
    my-loss = "my_package.losses:MyLoss"

and ``python -m vtbench train --method my-loss`` finds it once that package is installed. The
entry points are loaded on the first use of ``LOSSES`` (not when vtbench is imported, so a plugin
may import vtbench itself); one that fails, or that names a loss already registered, is a warning.
"""
from __future__ import annotations

import importlib.metadata
import inspect
import typing
import warnings
from collections.abc import MutableMapping
from typing import Any

from torch import nn

from .cali_nce import CaliNCE
from .infonce import InfoNCE
from .milnce import MILNCE
from .tempclr import TempCLR
from .vt_twins import VTTwins

CONFIG_TYPES = (bool, int, float, str)  # what a hyperparameter may be: what a config and --set carry
ENTRY_POINTS = "vtbench.losses"


class _Registry(MutableMapping):
    """The losses by name. It registers the installed plugins' (``load_entry_points``) the first
    time it is read: by then vtbench.losses is whole, whichever module imported what first."""

    def __init__(self, losses: dict[str, type[nn.Module]]):
        self._losses = dict(losses)
        self._loaded = False

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True  # first: registering reads the registry again
            load_entry_points()

    def __getitem__(self, name: str) -> type[nn.Module]:
        self._load()
        return self._losses[name]

    def __setitem__(self, name: str, cls: type[nn.Module]) -> None:
        self._losses[name] = cls

    def __delitem__(self, name: str) -> None:
        del self._losses[name]

    def __iter__(self):
        self._load()
        return iter(self._losses)

    def __len__(self) -> int:
        self._load()
        return len(self._losses)

    def __repr__(self) -> str:
        return f"LOSSES({self._losses!r})"


LOSSES: MutableMapping[str, type[nn.Module]] = _Registry({
    "infonce": InfoNCE,
    "milnce": MILNCE,
    "vt-twins": VTTwins,
    "tempclr": TempCLR,
    "cali-nce": CaliNCE,
})
_BY_NAME = {"bool": bool, "int": int, "float": float, "str": str}


def _annotations(cls) -> dict[str, type]:
    """The annotations of ``cls.__init__`` that are bool, int, float or str, resolved once (as types or,
    where some annotation does not resolve, e.g. a TYPE_CHECKING import, by the raw names)."""
    try:
        hints = typing.get_type_hints(cls.__init__)
    except Exception:
        hints = dict(getattr(cls.__init__, "__annotations__", {}))
    hints = {k: _BY_NAME.get(h.strip()) if isinstance(h, str) else h for k, h in hints.items()}
    return {k: h for k, h in hints.items() if h in CONFIG_TYPES}


def hyperparameters(cls) -> dict[str, tuple[Any, type]]:
    """{name: (default, type)} of a loss class's keyword-only hyperparameters; a ValueError naming
    what a config could not carry (a positional parameter, no default, a default of another type)."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(f"a loss must be an nn.Module class, got {cls!r}")
    out, annotations = {}, _annotations(cls)
    for k, p in list(inspect.signature(cls.__init__).parameters.items())[1:]:  # after self
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue  # *args, **kwargs (nn.Module.__init__'s): nothing a config could name
        where = f"{cls.__name__}.__init__'s parameter {k!r}"
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise ValueError(f"{where} must be keyword-only (after a bare *): hyperparameters are set by name")
        if p.default is inspect.Parameter.empty:
            raise ValueError(f"{where} needs a default (the published value): a config sets every hyperparameter")
        kind = annotations.get(k) or type(p.default)
        if kind not in CONFIG_TYPES:
            raise ValueError(f"{where} has the default {p.default!r}: a config carries bool, int, float or str "
                             f"(annotated or as the default's type)")
        if not (type(p.default) is kind or (kind is float and type(p.default) is int)):
            raise ValueError(f"{where} is annotated {kind.__name__} but its default {p.default!r} is of type "
                             f"{type(p.default).__name__}")
        out[k] = (float(p.default) if kind is float else p.default, kind)
    return out


def register_loss(name: str, cls: type[nn.Module]) -> type[nn.Module]:
    """Add ``cls`` to LOSSES as ``name`` after checking what the trainer needs of it (a ``sampler``
    that vtbench.data.samplers knows, hyperparameters a config can carry); returns ``cls``."""
    from ..data.samplers import SAMPLERS

    if not isinstance(name, str) or not name:
        raise ValueError(f"a loss name must be a non-empty string, got {name!r}")
    hyperparameters(cls)
    sampler = getattr(cls, "sampler", None)
    if sampler not in SAMPLERS:
        raise ValueError(f"loss {name!r} ({getattr(cls, '__name__', cls)!r}) needs a class attribute sampler naming a "
                         f"batch sampler, one of {', '.join(sorted(SAMPLERS))}; got {sampler!r}")
    if name in LOSSES and LOSSES[name] is not cls:
        raise ValueError(f"a loss named {name!r} is registered already ({LOSSES[name].__name__})")
    LOSSES[name] = cls
    return cls


def load_entry_points() -> None:
    """Register the losses that installed packages publish under the entry-point group
    ``vtbench.losses``; one that fails to load or register is a warning naming it."""
    for point in importlib.metadata.entry_points(group=ENTRY_POINTS):
        try:
            register_loss(point.name, point.load())
        except (Exception, SystemExit) as err:  # a broken plugin must not take vtbench down with it
            reason = f"{err!r}" if isinstance(err, SystemExit) else str(err)
            warnings.warn(f"vtbench: the loss {point.name!r} of entry point {point.value!r} was not registered: {reason}",
                          stacklevel=2)


def _lookup(name: str) -> type[nn.Module]:
    if name not in LOSSES:
        raise ValueError(f"unknown method {name!r}; valid: {', '.join(LOSSES)}")
    return LOSSES[name]


def loss_parameters(name: str) -> dict[str, Any]:
    """The hyperparameters of method ``name`` and their (published) defaults."""
    return {k: default for k, (default, _) in hyperparameters(_lookup(name)).items()}


def loss_types(name: str) -> dict[str, type]:
    """The type of each hyperparameter of method ``name`` (see :func:`hyperparameters`)."""
    return {k: kind for k, (_, kind) in hyperparameters(_lookup(name)).items()}


def build_loss(name: str, **hyperparameters) -> nn.Module:
    """``LOSSES[name](**hyperparameters)``; an unknown hyperparameter is a TypeError listing the valid ones."""
    valid = loss_parameters(name)
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        raise TypeError(f"method {name!r} has no hyperparameter(s) {unknown}; valid: {sorted(valid)}")
    return _lookup(name)(**hyperparameters)


def sampler_for(name: str) -> str:
    """The batch sampler (vtbench.data.samplers) method ``name`` trains on."""
    cls = _lookup(name)
    if not hasattr(cls, "sampler"):
        raise ValueError(f"loss {name!r} ({cls.__name__}) has no class attribute sampler: register it with "
                         "vtbench.losses.register_loss, which checks what the trainer needs")
    return cls.sampler

"""The training configuration: one flat dataclass, presets per method, ``key=value`` overrides.

A method's loss hyperparameters (``vtbench.losses.loss_parameters(method)``, published defaults)
sit beside the fields in the same flat namespace: ``--set gamma=0.2`` sets VT-TWINS' gamma.
Unknown keys and values of the wrong type are errors that list what is valid.

>>> cfg = make_config("vt-twins", "quick", ["gamma=0.2", "steps=10"])
>>> cfg.steps, cfg.loss_args["gamma"]
(10, 0.2)
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any

import torch

from ..losses import LOSSES, hyperparameters, loss_parameters

PRESET_NAMES = ("quick", "full")
#: Fields a resumed run may change (everything else must match the checkpoint).
RESUMABLE = ("steps", "save_every", "log_every", "device", "threads", "progress", "check_values", "out")


@dataclass
class TrainConfig:
    """Everything a run depends on; saved as config.json beside its checkpoint."""

    method: str = "infonce"
    data: str = "narrated-digits"
    out: str = "runs/infonce"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N (torchrun: auto or cuda, each process cuda:LOCAL_RANK)
    threads: int = 0  # CPU threads for torch (0: torch's default); small models run fastest on 1
    # data: narrated digits (data_seed, data_preset) or a real format (data_path, features_path)
    data_seed: int = 0
    data_preset: str = ""  # "" (HowTo100M-like noise) or "clean"
    data_noise: float = 1.0  # narrated digits: scales the narration noise (0 = clean, 1 = default)
    data_path: str = ""  # captions JSON/folder (howto100m), CSV/JSON (youcook2, msrvtt), root (crosstask)
    features_path: str = ""  # features/<video_id>.npy
    # batches (the sampler of the method, vtbench.data.samplers)
    n_clips: int = 8  # clips (and captions) per video: the sampler's n
    clip_len: int = 4  # rows per clip
    n_candidates: int = 5  # MIL-NCE: captions per clip
    max_words: int = 16
    jitter: bool = False
    batch_size: int = 16  # videos per step, over all processes
    # model (vtbench.models.MODELS)
    model: str = "auto"  # auto: frames for narrated digits, features otherwise
    embed_dim: int = 64
    hidden_dim: int = 128
    word_dim: int = 64
    context_layers: int = 1
    # optimisation
    steps: int = 300
    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"  # cosine | constant
    grad_clip: float = 0.0  # 0: off
    # bookkeeping
    save_every: int = 100
    log_every: int = 10
    progress: bool = True
    check_values: bool = True  # the input checks that read the device back (vtbench.align.value_checks)
    loss_args: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in LOSSES:
            raise ValueError(f"unknown method {self.method!r}; valid: {', '.join(LOSSES)}")
        for f in dataclasses.fields(self):
            if f.name != "loss_args":
                setattr(self, f.name, coerce(f.name, getattr(self, f.name), _field_types()[f.name]))
        hyper = hyperparameters(LOSSES[self.method])  # {name: (default, type)}, read off the class once
        defaults = {k: default for k, (default, _) in hyper.items()}
        unknown = sorted(set(self.loss_args) - set(defaults))
        if unknown:
            raise ValueError(unknown_message(unknown, self.method))
        args = {k: v for k, v in defaults.items() if k not in _field_types()}
        types, fields = {k: kind for k, (_, kind) in hyper.items()}, _field_types()
        clash = {k: (fields[k], kind) for k, kind in types.items() if k in fields and fields[k] is not kind}
        if clash:  # a hyperparameter named like a field takes the field's value (embed_dim): the types must agree
            raise ValueError(f"method {self.method!r}: " + "; ".join(
                f"hyperparameter {k!r} ({kind.__name__}) shares its name with a config field of type {field.__name__}, "
                "whose value it would take" for k, (field, kind) in clash.items()))
        for k, v in self.loss_args.items():
            args[k] = coerce(k, v, types[k])
        self.loss_args = args
        _check_values(self)

    def loss_kwargs(self) -> dict[str, Any]:
        """The loss's constructor arguments: its hyperparameters, plus config fields it shares (embed_dim)."""
        shared = {k: getattr(self, k) for k in loss_parameters(self.method) if k in _field_types()}
        return {**self.loss_args, **shared}

    def to_dict(self) -> dict[str, Any]:
        """Flat: the fields, then the method's hyperparameters."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "loss_args"}
        return {**out, **self.loss_args}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        fields = {k: v for k, v in values.items() if k in _field_types()}
        rest = {k: v for k, v in values.items() if k not in _field_types()}
        return cls(**fields, loss_args=rest)

    def replace(self, **changes) -> TrainConfig:
        """A copy with ``changes`` (fields or hyperparameters; a new method resets the hyperparameters)."""
        values = self.to_dict() if changes.get("method", self.method) == self.method else {
            k: v for k, v in self.to_dict().items() if k in _field_types()}
        return TrainConfig.from_dict({**values, **changes})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


def _field_types() -> dict[str, type]:
    hints = typing.get_type_hints(TrainConfig)
    return {f.name: hints[f.name] for f in dataclasses.fields(TrainConfig)}


def valid_keys(method: str) -> list[str]:
    return [k for k in _field_types() if k != "loss_args"] + sorted(
        k for k in loss_parameters(method) if k not in _field_types())


def unknown_message(keys, method: str) -> str:
    return f"unknown config key(s) {sorted(keys)} for method {method!r}; valid: {', '.join(valid_keys(method))}"


def coerce(key: str, value: Any, kind: type) -> Any:
    """value as ``kind`` (bool, int, float, str); strings from the command line are parsed."""
    if isinstance(value, str) and kind is not str:
        text = value.strip().lower()
        if kind is bool:
            if text in ("true", "1", "yes", "on"):
                return True
            if text in ("false", "0", "no", "off"):
                return False
        else:
            try:
                return kind(text)
            except ValueError:
                pass
        raise ValueError(f"config key {key!r} expects {kind.__name__}, got {value!r}")
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"config key {key!r} expects {kind.__name__}, got {value!r} ({type(value).__name__})")
    return value


def _check_values(cfg: TrainConfig) -> None:
    positive = ("steps", "n_clips", "clip_len", "n_candidates", "max_words", "batch_size", "embed_dim", "hidden_dim",
                "word_dim", "save_every", "log_every")
    bad = [k for k in positive if getattr(cfg, k) < 1]
    bad += [k for k in ("warmup_steps", "context_layers", "threads", "seed", "data_seed") if getattr(cfg, k) < 0]
    bad += [k for k in ("lr", "weight_decay", "grad_clip", "data_noise")
            if not (math.isfinite(getattr(cfg, k)) and getattr(cfg, k) >= 0)]
    if bad:
        raise ValueError(f"config key(s) {bad} out of range (steps and sizes >= 1, warmup_steps, context_layers, "
                         f"threads and seeds >= 0, rates finite and >= 0)")
    if cfg.device != "auto":
        try:
            torch.device(cfg.device)
        except RuntimeError:
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {cfg.device!r}") from None
    if cfg.warmup_steps >= cfg.steps:
        raise ValueError(f"warmup_steps={cfg.warmup_steps} must be below steps={cfg.steps}: the warmup would "
                         f"never reach lr, nor the schedule decay")
    if cfg.schedule not in ("cosine", "constant"):
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {cfg.schedule!r}")
    if cfg.method == "tempclr" and cfg.n_clips < cfg.loss_args["n_pairs"]:
        raise ValueError(f"tempclr needs n_clips >= n_pairs, got {cfg.n_clips} < {cfg.loss_args['n_pairs']}")
    if cfg.method == "tempclr" and cfg.loss_args["shuffle"] == "segments":
        raise ValueError("tempclr shuffle='segments' needs each clip's ground-truth segment (batch['segment_ids']), "
                         "which the training batches do not carry; use shuffle='sentences'")


# Presets: (preset, method) -> overrides. "quick" trains each method on narrated digits in under a
# minute on 2 CPU cores; "full" follows the published training defaults where they apply
# (VT-TWINS: 8 clips and captions, batch 16, Adam lr 1e-3, cosine; TempCLR: 5 pairs, alpha 0.7).
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"steps": 400, "batch_size": 16, "lr": 2e-3, "save_every": 100, "log_every": 10, "threads": 1},
    "full": {"steps": 3000, "batch_size": 16, "lr": 1e-3, "save_every": 500, "log_every": 25,
             "warmup_steps": 100, "embed_dim": 128, "hidden_dim": 256},
}
METHOD_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("quick", "infonce"): {"n_clips": 4},
    ("quick", "milnce"): {"n_clips": 4, "n_candidates": 3},
    ("quick", "vt-twins"): {"n_clips": 8},
    ("quick", "tempclr"): {"n_clips": 5},
    ("quick", "cali-nce"): {"n_clips": 8},
    ("full", "infonce"): {"n_clips": 8},
    ("full", "milnce"): {"n_clips": 8, "n_candidates": 5},
    ("full", "tempclr"): {"n_clips": 5},
}


def make_config(method: str, preset: str = "quick", overrides: list[str] | dict[str, Any] = (), **fields) -> TrainConfig:
    """The ``preset`` config of ``method`` with ``overrides`` (``["key=value", ...]`` or a dict)
    and ``fields`` applied, in that order."""
    if method not in LOSSES:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(LOSSES)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown config preset {preset!r}; valid: {', '.join(PRESET_NAMES)}")
    values: dict[str, Any] = {"method": method, "out": f"runs/{method}", **PRESETS[preset],
                              **METHOD_PRESETS.get((preset, method), {})}
    values.update(parse_overrides(overrides) if not isinstance(overrides, dict) else overrides)
    values.update(fields)
    unknown = [k for k in values if k not in valid_keys(method)]
    if unknown:
        raise ValueError(unknown_message(unknown, method))
    return TrainConfig.from_dict(values)


def parse_overrides(pairs) -> dict[str, str]:
    """``["key=value", ...]`` -> {key: "value"} (types are checked by TrainConfig)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value
    return out

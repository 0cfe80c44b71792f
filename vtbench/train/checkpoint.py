"""Checkpoints: written atomically (a temporary file in the same folder, flushed, then renamed over
the old one), so a run killed at any moment leaves either the previous checkpoint or the new one."""
from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_write

FORMAT = "vtbench-run"
VERSION = 1
CHECKPOINT = "checkpoint.pt"
CONFIG = "config.json"
METRICS = "metrics.jsonl"


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be used: corrupt, not vtbench's, or from another method."""


def rng_state() -> dict[str, Any]:
    """The host RNGs' states, as tensors and plain Python values (so checkpoints load with
    weights_only). Not the GPUs': the trainer reseeds torch, CUDA included, at every step, and a
    list of one state per visible GPU could not be restored on a machine that shows fewer."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)]
    return {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))  # a "cuda" entry (older checkpoints) is not restored


def save(run_dir: Path, *, step: int, config: dict, model, loss, optimizer, scheduler, tokenizer,
         metrics_lines: int, model_args: dict, interval: dict, elapsed_s: float = 0.0) -> Path:
    """Write run_dir/checkpoint.pt atomically (and config.json beside it). ``interval``: the
    metrics accumulated since the last log line, so a resumed run logs the same numbers;
    ``elapsed_s``: the wall time of the ``step`` steps so far, so a resumed run keeps counting."""
    state = {
        "format": FORMAT, "version": VERSION, "method": config["method"], "step": step, "config": config,
        "model": model.state_dict(), "loss": loss.state_dict(), "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(), "rng": rng_state(), "tokenizer": tokenizer.state_dict(),
        "metrics_lines": metrics_lines, "model_args": model_args,
        "interval": interval, "elapsed_s": float(elapsed_s),
    }
    path = Path(run_dir) / CHECKPOINT
    atomic_write(path, lambda f: torch.save(state, f))
    atomic_write(Path(run_dir) / CONFIG, lambda f: f.write(json.dumps(config, indent=2).encode()))
    return path


def read_config(path: Path) -> dict[str, Any]:
    """A run's config.json as a dict; CheckpointError naming the file if it is not a JSON object."""
    try:
        values = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path} is not a readable run config ({type(err).__name__}: {err})") from None
    if not isinstance(values, dict):
        raise CheckpointError(f"{path} is not a run config: it holds a JSON {type(values).__name__}, not an object")
    return values


def load(path: Path, method: str | None = None) -> dict[str, Any]:
    """Read a checkpoint (a file or a run folder) on the CPU; CheckpointError if it is missing,
    corrupt, not a vtbench run, or (with ``method``) from another method."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # never runs code from the file
    except Exception as err:  # damaged bytes surface as any of a dozen types (KeyError, TypeError, ...)
        raise CheckpointError(f"{path} is corrupt or not a checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a vtbench run checkpoint")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {state.get('version')}; this vtbench reads {VERSION}")
    if method is not None and state["method"] != method:
        raise CheckpointError(f"{path} is a checkpoint of method {state['method']!r}, not {method!r}")
    return state

"""Atomic array caches: a cache file is either complete or absent, never half-written.

A cache is one ``.npz`` holding named arrays plus a JSON metadata record (stored as bytes, so
loading never needs pickle). Writing goes to a temporary file in the same folder, is flushed to
disk, then moved into place with ``os.replace`` (atomic on POSIX and Windows): a process killed
mid-write leaves at most a stray ``*.tmp`` file, which the next write sweeps up. Reading verifies
the zip CRCs, the metadata and a format tag; anything wrong reads as "no cache" so the caller
regenerates.
"""
from __future__ import annotations

import glob
import json
import os
import time
from pathlib import Path

import numpy as np

from ..io import atomic_write

_META_KEY = "__meta__"
FORMAT = "vtbench-cache-1"


def default_cache_dir() -> Path:
    """``$VTBENCH_CACHE_DIR``, else ``data/cache`` of the source checkout, else ``~/.cache/vtbench``.

    Anchoring on the checkout (not the working directory) lets notebooks, which run from
    ``notebooks/``, share the cache with the command line.
    """
    if os.environ.get("VTBENCH_CACHE_DIR"):
        return Path(os.environ["VTBENCH_CACHE_DIR"])
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return root / "data" / "cache"
    return Path.home() / ".cache" / "vtbench"


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict) -> Path:
    """Write ``arrays`` and the JSON-serialisable ``meta`` to ``path`` atomically."""
    path = Path(path)
    payload = dict(arrays)
    record = {"format": FORMAT, **meta}
    payload[_META_KEY] = np.frombuffer(json.dumps(record).encode("utf-8"), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **payload))
    return path


def load_arrays(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict] | None:
    """Read a cache written by :func:`save_arrays`; ``None`` when absent, truncated or corrupt."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        # np.load(path) leaves its file open when the zip cannot be read: open it here
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            if len(set(npz.files)) != len(npz.files):  # a damaged name hides a member behind another
                return None
            # Reading every member in full makes zipfile check its CRC.
            arrays = {key: npz[key] for key in npz.files}
        meta = json.loads(arrays.pop(_META_KEY).tobytes().decode("utf-8"))
    except Exception:  # damaged zip headers also raise NotImplementedError, RuntimeError, ... (not Ctrl-C)
        return None
    if not isinstance(meta, dict) or meta.pop("format", None) != FORMAT:
        return None
    return arrays, meta


def sweep_temporaries(folder: str | os.PathLike, stem: str, *, older_than_s: float = 600.0) -> int:
    """Remove ``stem.*.tmp`` leftovers of killed writes; returns how many were removed.

    Only files older than ``older_than_s`` go, so a write in progress in another process is safe.
    """
    removed, now = 0, time.time()
    for tmp in Path(folder).glob(f"{glob.escape(stem)}.*.tmp"):
        try:
            if now - tmp.stat().st_mtime > older_than_s:
                tmp.unlink()
                removed += 1
        except OSError:  # raced with its writer or another sweeper
            pass
    return removed

"""The fast CPU backend: the recursions of :mod:`vtbench.align.recursions` in C++ (csrc/dp_cpu.cpp).

    R_s[i,j] = C_s[i,j] + smin_gamma { R_s'[i-di, j-dj] : (s', di, dj) in moves[s] }
    E[pred] += E[cell] * exp((R[cell] - C[cell] - R[pred]) / gamma)     (the backward pass)

Same interface and the same numbers as the torch reference (``torch_ref``), in O(S N M) time per
pair and one more O(S N M) pass for the backward. Pairs are processed in chunks of L = 24 or 16
lanes (4 or 1 for batches of at most 8 or 2), batch innermost in memory, so exp/log vectorise
across pairs; chunks run in parallel on ATen's threads; everything is accumulated in float64.
The forward saves the soft-min weight of every move (float64; for float32 costs of three-move
recursions on batches of more than 8, two float32 per cell, the two weights that are not the
argmin's, as accurate as the float32 gradient: see ``FLOAT32_WEIGHTS``), or for gamma 0 the first
argmin (int8), and the backward multiplies and adds, with no exp at all, holding two rows of E at a
time. ``saved`` is (weights (chunks, per chunk), end seeds (B, F)).

Two things serve S2DTW (variants.s2dtw) alone: ``fill`` (``INTERLEAVED``): the cost holds the cells
(2i+1, 2j+1) of a grid whose other cells are all ``fill``, and the kernel reads that grid row by
row from them, never building it, and returns the gradient of those cells only; and
``smooth_forward``/``smooth_backward``, S2DTW's local smoothing (the torch form in variants.py is
the reference), vectorised over each pair's cells.

The weights and gradients come from a small pool of buffers that the extension keeps and hands out
again once nobody holds them (first touches of fresh memory cost about as much as the DP here);
``release_memory()`` empties it.

The extension is compiled once per source, flags, torch and CPU, and cached in
``$VTBENCH_CACHE`` (default ``~/.cache/vtbench``); ``python -m vtbench.align.backends.cpu --build``
compiles it ahead of time (``make env`` does). Where it cannot be built, ``available`` raises and
``backend="auto"`` falls back to the torch backend with a warning.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from types import ModuleType

import torch

from ..recursions import Recursion

SOURCE = Path(__file__).with_name("csrc") / "dp_cpu.cpp"
_START_CODES = {None: 0, "corner": 1, "left": 2, "left_first": 3}
_module: ModuleType | None = None
_failure: Exception | None = None


def _flags() -> list[str]:
    # -march=native is safe because the cache key includes this CPU's feature flags; no -ffast-math:
    # it would assume away the +inf costs of bands and drop rows (exp/log are vectorised by hand).
    flags = ["-O3", "-march=native", "-fopenmp-simd"]
    if platform.machine().lower() in {"x86_64", "amd64"}:
        flags.append("-mprefer-vector-width=512")  # where AVX-512 exists, use it (measured 1.4x here)
    if sys.platform.startswith("linux"):
        flags.append("-fopenmp")  # at::parallel_for is OpenMP in the torch wheels; shares torch's libgomp
    return flags


def _cpu_signature() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), platform.processor())
    except OSError:
        return platform.processor() or platform.machine()


def cache_dir() -> Path:
    root = os.environ.get("VTBENCH_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vtbench"
    return Path(root) / "cpp"


def _name() -> str:
    key = hashlib.sha256()
    for part in (SOURCE.read_bytes(), " ".join(_flags()).encode(), torch.__version__.encode(),
                 sys.version.encode(), _cpu_signature().encode()):
        key.update(part)
    return f"vtbench_dp_cpu_{key.hexdigest()[:16]}"


#: A build takes a minute or two; a build lock older than this was left by a build that was
#: killed (SIGKILL, out of memory): torch's lock names no owner, and its wait has no end.
STALE_LOCK_S = 900


def wait_for_build(lock: Path, poll_s: float = 0.5) -> None:
    """Return once ``lock`` (another process's build, torch.utils.cpp_extension's) is gone; a lock
    older than :data:`STALE_LOCK_S` is removed with a warning instead of waited for forever."""
    said = False
    while True:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return
        if age > STALE_LOCK_S:
            warnings.warn(f"vtbench: removing the C++ kernel's build lock {lock}, {age:.0f} s old: a build that was "
                          "killed left it", stacklevel=3)
            lock.unlink(missing_ok=True)
            return
        if not said:
            print(f"vtbench: waiting for another process to build the C++ CPU kernel ({lock}) ...", file=sys.stderr,
                  flush=True)
            said = True
        time.sleep(poll_s)


def extension(verbose: bool = False) -> ModuleType:
    """The compiled extension: imported from the cache, or compiled once (with a message) and cached.

    A failure (no compiler) is remembered, so that it costs one attempt per process."""
    global _module, _failure
    if _module is not None:
        return _module
    if _failure is not None:
        raise _failure
    name = _name()
    directory = cache_dir() / name
    library = directory / f"{name}{'.pyd' if sys.platform == 'win32' else '.so'}"
    try:
        wait_for_build(directory / "lock")
        # the name hashes everything that goes into the library, so one that exists is up to date
        # (unless another process is still writing it: then its build lock is there too)
        if library.exists() and not (directory / "lock").exists():
            spec = importlib.util.spec_from_file_location(name, library)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            from torch.utils import cpp_extension

            directory.mkdir(parents=True, exist_ok=True)
            print(f"vtbench: compiling the C++ CPU kernel once (cached in {directory}) ...", file=sys.stderr, flush=True)
            flags = _flags()
            module = cpp_extension.load(name, [str(SOURCE)], extra_cflags=flags,
                                        extra_ldflags=[f for f in flags if f == "-fopenmp"],
                                        build_directory=str(directory), verbose=verbose)
    except Exception as err:  # no compiler, no ninja, a broken toolchain
        _failure = RuntimeError(f"cannot build the vtbench C++ CPU kernel: {err}")
        raise _failure from err
    _module = module
    return module


def available(device) -> bool:
    """True for CPU tensors once the extension is built (raises where it cannot be)."""
    return torch.device(device).type == "cpu" and extension() is not None


_codes: dict[Recursion, list[int]] = {}


def unsupported(rec: Recursion) -> str | None:
    """Why this backend cannot run ``rec``, or None. The kernel holds at most 4 states of at most 4
    moves, and sweeps a row state by state, so a horizontal move must read the same or an earlier
    state (true of every recursion in recursions.py)."""
    if rec.n_states > 4 or any(len(moves) > 4 for moves in rec.moves):
        return "it runs at most 4 states of at most 4 moves each"
    for s, moves in enumerate(rec.moves):
        if any(move.di == 0 and move.src > s for move in moves):
            return "it sweeps each row state by state, so a horizontal move may not read a later state"
    return None


def encode(rec: Recursion) -> list[int]:
    """The recursion as the flat int list the C++ side decodes:
    [S, F, finals..., then per state: start, K, (src, di, dj, masked) * K] (``unsupported`` first)."""
    if rec not in _codes:
        reason = unsupported(rec)
        if reason:
            raise ValueError(f"the cpu backend cannot run recursion {rec.name!r}: {reason} (use backend='torch')")
        code = [rec.n_states, len(rec.final), *rec.final]
        for start, moves in zip(rec.starts, rec.moves):
            code += [_START_CODES[start], len(moves)]
            for move in moves:
                code += [move.src, move.di, move.dj, int(move.masked)]
        _codes[rec] = code
    return _codes[rec]


def _args(cost, n_len, m_len, col_mask):
    mask = torch.empty(0, dtype=torch.bool) if col_mask is None else col_mask.to(torch.bool).contiguous()
    return cost.contiguous(), n_len.to(torch.int64).contiguous(), m_len.to(torch.int64).contiguous(), mask


#: Save the weights of float32 costs packed in float32 where the kernel can (three moves per state,
#: batches of more than 8: soft-DTW, OTAM, S2DTW), else in float64: a third of the memory, with the
#: gradient within 2e-7 of the one from float64 weights (measured ~5e-8 on 16 pairs of 128 x 128
#: and 256 x 256, gamma 1e-3 to 10; the float32 gradient itself rounds at 6e-8).
FLOAT32_WEIGHTS = True


#: The kernel reads an interleaved grid (``fill``, see engine.solve) from its cost cells, never building it.
INTERLEAVED = True


def forward(cost, rec: Recursion, gamma, n_len, m_len, col_mask, fill=None):
    """cost (B, S, N, M) -> value (B,) in the cost's dtype, and what the backward needs: the
    soft-min weights of every move (or, for gamma 0, the first argmins) and the end seeds."""
    cost, n_len, m_len, mask = _args(cost, n_len, m_len, col_mask)
    f32 = FLOAT32_WEIGHTS and cost.dtype == torch.float32
    value, saved, seed = extension().forward(cost, encode(rec), float(gamma), n_len, m_len, mask, f32, fill)
    return value.to(cost.dtype), (saved, seed)


def backward(cost, saved, rec: Recursion, gamma, n_len, m_len, col_mask, fill=None):
    """The expected alignment E = d value / d cost, (B, S, N, M), in the cost's dtype."""
    cost, n_len, m_len, mask = _args(cost, n_len, m_len, col_mask)
    return extension().backward(cost, *saved, encode(rec), float(gamma), n_len, m_len, mask, fill)


def smooth_forward(cost, smooth_gamma):
    """S2DTW's smoothing (variants.smooth_cost) of cost (B, N, M): S and the soft-min weights (3, B, N, M)."""
    return extension().smooth_forward(cost.contiguous(), float(smooth_gamma))


def smooth_backward(grad, weights):
    """d loss / d cost from d loss / d S and smooth_forward's weights."""
    return extension().smooth_backward(grad.contiguous(), weights)


def release_memory() -> None:
    """Give the extension's pooled buffers (weights, gradients) that nobody holds back to the system."""
    if _module is not None:
        _module.release_memory()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vtbench.align.backends.cpu", description=__doc__.splitlines()[0])
    parser.add_argument("--build", action="store_true", help="compile the extension now (cached)")
    parser.add_argument("--verbose", action="store_true", help="show the compiler's output")
    args = parser.parse_args(argv)
    if not args.build:
        parser.print_help()
        return 0
    try:
        extension(verbose=args.verbose)
    except RuntimeError as err:
        print(f"vtbench: {err}", file=sys.stderr)
        return 1
    print(f"vtbench: C++ CPU kernel ready in {cache_dir() / _name()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

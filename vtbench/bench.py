"""Kernel benchmarks against the peers: ``python -m vtbench.bench kernels [--device cpu|cuda]``.

Every row of a table is measured in the same run, side by side on the same inputs:

* time: the median wall time of ``--repeat`` forward+backward passes (fewer for a peer whose runs
  add up to more than 30 s), after one warm-up pass that also pays any JIT compilation (numba,
  triton); "vs vtbench" is that time over vtbench's (the first row of the workload), so 8.0 means
  8 times slower than vtbench;
* peak memory of one pass: on CPU the growth of the process's peak resident set (VmHWM, reset
  through /proc/self/clear_refs after a gc, malloc_trim and emptying the C++ kernel's buffer
  pool) over its resident set before the pass,
  which counts every allocator (torch, numpy, numba, C++); on CUDA torch's max_memory_allocated
  over the memory allocated before the pass, plus what setting the row up left allocated (a CUDA
  graph's private pool, allocated when it is captured);
* agrees: the largest relative difference to vtbench of the values and of the gradients, "yes"
  below 1e-3 (pysdtw stores R in float32, so each of its soft-min weights is off by about
  |R| 2^-24 / gamma: ~1e-4 at 256 x 256).

Workloads (METHODS.md 1.1 and 1.2): soft-DTW on random costs, and the VT-TWINS loss over all pairs
of a batch of videos (S2DTW of every video with every narration, costs from one matmul, loss and
backward to the embeddings; the same for every row), against the published pipeline re-stated: the smoothing and the
(2n+1) x (2m+1) interleaving in torch, then pysdtw's soft-DTW on that grid.
"""
from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .align import SOFT_DTW, pairwise_cost, s2dtw, soft_dtw, solve, value_checks

INF = float("inf")
GAMMA = 0.1  # the soft-DTW gamma of every workload (VT-TWINS' published value)
S2DTW_ARGS = dict(gamma=0.1, smooth_gamma=0.1, skip_cost=0.5)  # VT-TWINS' published defaults
BUDGET_S = 30.0  # timed runs of one row stop once they add up to this (at least one run)

Run = Callable[[], tuple[torch.Tensor, torch.Tensor]]  # one forward+backward: (values, gradient)


BOUND = "memory-bandwidth bound"  # the name of a workload's bound row


@dataclass
class Row:
    workload: str
    name: str
    ms: float | None = None
    memory_mib: float | None = None
    error: float | None = None  # largest relative difference to the reference row
    agrees: str = "-"
    reference: bool = False
    runs: int | None = None  # timed runs (fewer than --repeat where they reached BUDGET_S)


# ---- the implementations, each as "make a forward+backward pass on these inputs" ----

def _autograd(value_of: Callable[[torch.Tensor], torch.Tensor], leaf_input: torch.Tensor) -> Run:
    def run():
        leaf = leaf_input.detach().requires_grad_(True)
        value = value_of(leaf)
        (grad,) = torch.autograd.grad(value.sum(), leaf)
        return value.detach(), grad
    return run


def _vtbench_s2dtw(backend: str):
    return lambda cost: s2dtw(cost, **S2DTW_ARGS, backend=backend)


def _cuda_graphed(value_of, example: torch.Tensor):
    """``value_of`` captured in CUDA graphs, forward and backward (torch.cuda.make_graphed_callables),
    under value_checks(False) (a read-back cannot be captured): a call replays them, the host's
    share reduced to the replay. What a training step captured whole would see of the kernels."""
    with value_checks(False):
        return torch.cuda.make_graphed_callables(value_of, (example.detach().requires_grad_(True),))


def _triton_soft_dtw(cost: torch.Tensor) -> torch.Tensor:
    return soft_dtw(cost, GAMMA, backend="triton")


def _unchecked(value_of):
    """``value_of`` without the input checks that read the device back (a GPU sync each)."""
    def run(cost):
        with value_checks(False):
            return value_of(cost)
    return run


def _engine_soft_dtw(cost: torch.Tensor) -> torch.Tensor:
    """vtbench's soft-DTW straight through the engine (cpu backend): the kernel without the public
    functions' input checks, cost (B, N, M) -> (B,)."""
    B, n, m = cost.shape
    n_len, m_len = torch.full((B,), n), torch.full((B,), m)
    return solve(cost[:, None], SOFT_DTW, GAMMA, n_len, m_len, backend="cpu")


def _pysdtw(cost: torch.Tensor) -> torch.Tensor:
    """pysdtw's soft-DTW of cost matrices (B, N, M): pysdtw takes sequences and a distance function,
    so the cost is handed over as the first "sequence" with the identity as distance."""
    import numpy
    if not hasattr(numpy, "row_stack"):  # numba-cuda 0.68 still registers numpy's alias, which numpy 2.5 removed
        numpy.row_stack = numpy.vstack
    import pysdtw

    sdtw = pysdtw.SoftDTW(gamma=GAMMA, dist_func=lambda x, _y: x, use_cuda=cost.is_cuda)
    return sdtw(cost, cost.new_zeros(cost.shape[0], cost.shape[2], cost.shape[2]))


def _tslearn(cost: torch.Tensor) -> Run:
    """tslearn's soft-DTW, one pair at a time (numpy float64; it has no batch)."""
    from tslearn.metrics import SoftDTW

    def run():
        values, grads = [], []
        for c in cost.double().numpy():
            sdtw = SoftDTW(c, gamma=GAMMA)
            values.append(sdtw.compute())
            grads.append(torch.from_numpy(sdtw.grad()))
        return torch.tensor(values), torch.stack(grads)
    return run


def published_s2dtw(d: torch.Tensor, value_of=_pysdtw) -> torch.Tensor:
    """S2DTW as VT-TWINS computes it (METHODS.md 1.2), re-stated: base cost d (B, n, m) ->
    S[i,j] = d[i,j] - gs log(sum over existing neighbours (i,j-1), (i-1,j), (i-1,j-1) of exp(-d / gs)),
    the three neighbours of (0,0) counting as 0; G (B, 2n+1, 2m+1) = tau with G[2i+1, 2j+1] = S[i,j];
    then a soft-DTW kernel (pysdtw's) on G. Like the published code, no max is subtracted."""
    gs, tau = S2DTW_ARGS["smooth_gamma"], S2DTW_ARGS["skip_cost"]
    B, n, m = d.shape
    padded = F.pad(d, (1, 0, 1, 0), value=INF)
    neighbours = torch.stack([padded[:, 1:, :-1], padded[:, :-1, 1:], padded[:, :-1, :-1]])  # (3, B, n, m)
    origin = torch.zeros(n, m, dtype=torch.bool, device=d.device)
    origin[0, 0] = True
    neighbours = torch.where(origin, torch.zeros((), dtype=d.dtype, device=d.device), neighbours)
    smoothed = d - gs * torch.log(torch.exp(-neighbours / gs).sum(0))
    grid = d.new_full((B, 2 * n + 1, 2 * m + 1), tau)
    grid[:, 1::2, 1::2] = smoothed
    return value_of(grid)


def vt_twins_loss(video: torch.Tensor, text: torch.Tensor, s2dtw_of) -> tuple[torch.Tensor, torch.Tensor]:
    """The VT-TWINS loss (METHODS.md 2.3) of L2-normalised embeddings (B, n, d), (B, m, d):
    d = -<v, t> for all pairs (vtbench's pairwise_cost, one matmul), s = -S2DTW,
    L = mean_i [logsumexp_j s(V_j, T_i) - s(V_i, T_i)]. Returns the loss and the S2DTW matrix (B_video, B_text)."""
    cost = pairwise_cost(video, text, "dot", all_pairs=True)  # (B, B, n, m)
    distance = s2dtw_of(cost.reshape(-1, *cost.shape[2:])).reshape(cost.shape[:2])
    similarity = -distance
    return (torch.logsumexp(similarity, dim=0) - similarity.diagonal()).mean(), distance


def _loss_run(video, text, s2dtw_of) -> Run:
    def run():
        v, t = video.detach().requires_grad_(True), text.detach().requires_grad_(True)
        loss, distance = vt_twins_loss(v, t, s2dtw_of)
        loss.backward()
        return distance.detach(), torch.cat([v.grad.flatten(), t.grad.flatten()])
    return run


# ---- measuring ----

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def peak_memory_mib(run: Run, device: torch.device) -> float | None:
    """Peak memory of one pass over what was in use before it (see the module docstring)."""
    gc.collect()
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        _sync(device)
        return (torch.cuda.max_memory_allocated(device) - before) / 2**20
    from .align.backends import cpu
    cpu.release_memory()  # the C++ kernel's buffer pool too: every pass is measured cold
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # give freed heap back, so the baseline is tight
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current resident set
        before = _status_kib("VmRSS")
    except (OSError, AttributeError, StopIteration):
        return None  # not Linux
    run()
    return (_status_kib("VmHWM") - before) / 1024


def measure(row: Row, make_run: Callable[[], Run], device: torch.device, repeat: int, reference, tolerance: float):
    """Fill ``row`` (time, memory, agreement with ``reference``); returns this run's output."""
    try:
        held = torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
        run = make_run()
        if device.type == "cuda":  # a CUDA graph's pool: allocated by the capture, before any pass
            _sync(device)
            held = torch.cuda.memory_allocated(device) - held
        output = run()  # warm-up: JIT compilation, allocator growth
        _sync(device)
        times = []
        while len(times) < repeat and (not times or sum(times) < BUDGET_S):  # a slow peer gets fewer runs
            start = time.perf_counter()
            run()
            _sync(device)
            times.append(time.perf_counter() - start)
        row.ms, row.runs = 1e3 * statistics.median(times), len(times)
        row.memory_mib = peak_memory_mib(run, device)
        if row.memory_mib is not None:
            row.memory_mib += held / 2**20
        _agree(row, output, reference, tolerance)  # (an output of other shapes fails its row, not the table)
    except Exception as err:  # a peer that is missing or fails: say so in the table
        _failed(row, err)
        return None
    return output


def _failed(row: Row, err: Exception) -> None:
    message = str(err).splitlines()[0][:80] if str(err) else ""
    row.agrees = f"failed: {type(err).__name__} {message}".strip()


def _agree(row: Row, output, reference, tolerance: float) -> None:
    """row.agrees: "reference" for the reference row, else how far ``output`` is from ``reference``."""
    if row.reference:
        row.agrees = "reference"
    elif reference is not None:
        errors = [_relative_error(a, b) for a, b in zip(output, reference, strict=True)]
        row.error = math.nan if any(math.isnan(e) for e in errors) else max(errors)  # (max() skips a NaN after a number)
        row.agrees = f"{'yes' if row.error <= tolerance else 'NO'} ({row.error:.0e})"


def _relative_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| over max |b|: the largest difference relative to the reference's scale."""
    if a.shape != b.shape:
        raise ValueError(f"an output of shape {tuple(a.shape)} where the reference's is {tuple(b.shape)}")
    a, b = a.detach().double().cpu().flatten(), b.detach().double().cpu().flatten()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


# ---- the tables ----

def _workload(rows, title, candidates, device, repeat, tolerance=1e-3):
    """Measure every (name, make_run) of one workload; the first is vtbench, the reference (if it
    fails, e.g. with no C++ compiler, the next row that runs is, and says so)."""
    reference = None
    for k, (name, make_run) in enumerate(candidates):
        row = Row(title, name, reference=reference is None)
        output = measure(row, make_run, device, repeat, reference, tolerance)
        if row.reference and output is None:
            row.reference = False
        elif row.reference:
            reference = output
            if k > 0:  # the first row that ran, not the first row
                row.agrees = "reference (the rows above failed)"
        rows.append(row)


def cpu_rows(repeat: int, quick: bool = False) -> list[Row]:
    device, rows = torch.device("cpu"), []
    gen = torch.Generator().manual_seed(0)
    B, sizes, videos = (4, (16, 32), 8) if quick else (32, (64, 256), 64)  # 8 clips, 8 sentences: grids 17x17
    for n in sizes:
        cost = torch.rand(B, n, n, generator=gen)
        candidates = [
            ("vtbench soft_dtw, cpu backend", lambda: _autograd(lambda c: soft_dtw(c, GAMMA, backend="cpu"), cost)),
            ("vtbench engine.solve, cpu backend (the kernel without input checks)",
             lambda: _autograd(_engine_soft_dtw, cost)),
            ("vtbench soft_dtw, torch backend", lambda: _autograd(lambda c: soft_dtw(c, GAMMA, backend="torch"), cost)),
            ("pysdtw (numba, CPU)", lambda: _autograd(_pysdtw, cost)),
            ("tslearn (numba, per pair)", lambda: _tslearn(cost)),
        ]
        if n > 64:
            candidates.pop(2)  # the reference backend is not a fast path
        _workload(rows, f"soft-DTW fwd+bwd, B={B}, {n}x{n}", candidates, device, repeat)
    video = F.normalize(torch.randn(videos, 8, 512, generator=gen), dim=-1)
    text = F.normalize(torch.randn(videos, 8, 512, generator=gen), dim=-1)
    candidates = [
        ("vtbench s2dtw, cpu backend", lambda: _loss_run(video, text, _vtbench_s2dtw("cpu"))),
        ("published pipeline with vtbench engine.solve as its DP (cpu backend)",
         lambda: _loss_run(video, text, lambda c: published_s2dtw(c, value_of=_engine_soft_dtw))),
        ("vtbench s2dtw, torch backend", lambda: _loss_run(video, text, _vtbench_s2dtw("torch"))),
        ("published pipeline (torch + pysdtw CPU)", lambda: _loss_run(video, text, published_s2dtw)),
    ]
    _workload(rows, f"VT-TWINS loss fwd+bwd, {videos}x{videos} pairs, 8x8 (S2DTW grid 17x17)", candidates, device,
              repeat)
    return rows


def bandwidth_bound_ms(n_cells: int, device: torch.device) -> float | None:
    """Lower bound on a float32 DP's forward+backward time from memory traffic alone: it must read
    the cost in the forward, read it again in the backward and write the gradient, 3 * 4 bytes per
    cell; peak bandwidth = 2 (double data rate) * memory clock (kHz -> Hz) * bus width (bits -> bytes).
    Anything a kernel stores for the backward (R, argmins) only adds to the traffic. A cost small
    enough to stay in L2 between the passes (the H100's 50 MiB: 128 x 128 at B = 64, 4 MiB, and the
    VT-TWINS workload's 16 MiB) could be read from DRAM once, 8 bytes a cell: there the bound is up to
    1.5x above the true floor (at 128 x 128 the dependent steps, not the bytes, bound any wavefront).
    None off CUDA."""
    if device.type != "cuda":
        return None
    props = torch.cuda.get_device_properties(device)
    clock_khz, bus_bits = getattr(props, "memory_clock_rate", 0), getattr(props, "memory_bus_width", 0)
    if not clock_khz or not bus_bits:
        return None
    bandwidth = 2 * clock_khz * 1e3 * bus_bits / 8  # bytes / s
    return 1e3 * 12 * n_cells / bandwidth


def gpu_rows(repeat: int, quick: bool = False, device: torch.device = torch.device("cuda")) -> list[Row]:
    """The GPU table: the triton backend (as called, without the checks that read back, and captured
    in a CUDA graph) against pysdtw's CUDA kernel and the torch backend. (On CPU tensors, with
    Triton's interpreter, the same rows but the graph's run at the quick sizes: the tests do that.)"""
    rows = []
    gen = torch.Generator(device=device).manual_seed(0)
    B, sizes, videos = (4, (16, 32), 4) if quick else (64, (128, 512, 2048), 256)
    for n in sizes:
        cost = torch.rand(B, n, n, generator=gen, device=device)
        candidates = [
            ("vtbench soft_dtw, triton backend", lambda: _autograd(_triton_soft_dtw, cost)),
            ("vtbench soft_dtw, triton backend, value_checks(False)",
             lambda: _autograd(_unchecked(_triton_soft_dtw), cost)),
            ("vtbench soft_dtw, torch backend", lambda: _autograd(lambda c: soft_dtw(c, GAMMA, backend="torch"), cost)),
            (f"pysdtw (numba, {device.type.upper()})", lambda: _autograd(_pysdtw, cost)),
        ]
        if device.type == "cuda":
            candidates.insert(2, ("vtbench soft_dtw, triton backend, CUDA graph",
                                  lambda: _autograd(_cuda_graphed(_triton_soft_dtw, cost), cost)))
        if n > 512:  # the torch backend: thousands of kernel launches per diagonal sweep, minutes
            candidates = [c for c in candidates if "torch backend" not in c[0]]
        title = f"soft-DTW fwd+bwd, B={B}, {n}x{n}"
        _workload(rows, title, candidates, device, repeat)
        rows.append(Row(title, f"{BOUND} (12 bytes per cell)", bandwidth_bound_ms(B * n * n, device)))
    video = F.normalize(torch.randn(videos, 8, 512, generator=gen, device=device), dim=-1)
    text = F.normalize(torch.randn(videos, 8, 512, generator=gen, device=device), dim=-1)
    candidates = [
        ("vtbench s2dtw, triton backend", lambda: _loss_run(video, text, _vtbench_s2dtw("triton"))),
        ("vtbench s2dtw, triton backend, value_checks(False)",
         lambda: _loss_run(video, text, _unchecked(_vtbench_s2dtw("triton")))),
        (f"published pipeline (torch + pysdtw {device.type.upper()})", lambda: _loss_run(video, text, published_s2dtw)),
    ]
    title = f"VT-TWINS loss fwd+bwd, {videos}x{videos} pairs, 8x8 (S2DTW grid 17x17)"
    _workload(rows, title, candidates, device, repeat)
    rows.append(Row(title, f"{BOUND} (12 bytes per cost cell: the 17x17 grid need not be built)",
                    bandwidth_bound_ms(videos**2 * 8 * 8, device)))
    return rows


#: The triton backend's launch knobs that ``triton-configs`` times (module constants of triton_dp):
#: _WARP rows per group (32: one warp, its row shift a warp shuffle; more: the shift through shared
#: memory), _WIDE_WARP the same in stripes of _MAX_ROWS rows (grids of 2048 rows and more), _TILE
#: cells per step when small problems share a program, _CELLS_PER_WARP (num_warps), _PREFETCH (a
#: step's loads issued one step ahead), _DIAGONAL_MAJOR (grids of at least this many rows stored
#: anti-diagonal by anti-diagonal, so that a step's loads and stores coalesce; 0 always, inf never),
#: _FAST_LOG (float32 soft-min's log as lg2.approx: compiled only, the interpreter ignores it),
#: _REORDER (a diagonal-major grid's C and E reordered to and from that storage; off, the kernels
#: read C and write E row-major, R alone diagonal-major: no reorder, uncoalesced C and E),
#: _STRIPE_ROWS (grids of more rows run one program per stripe of this many rows, side by side,
#: each waiting for the stripe above: fewer cells per thread and step, more multiprocessors busy).
TRITON_KNOBS = ("_WARP", "_WIDE_WARP", "_TILE", "_CELLS_PER_WARP", "_PREFETCH", "_DIAGONAL_MAJOR", "_FAST_LOG",
                "_REORDER", "_STRIPE_ROWS")
_NEVER = float("inf")
#: The configurations timed, values of TRITON_KNOBS: the default first, then one knob changed at a
#: time (_REORDER off also with every grid's R diagonal-major), and the previous default last
#: (row-major, 32-row groups everywhere); the README reads figures/triton_configs_cuda.md, the run
#: that confirmed these defaults (the _REORDER and _STRIPE_ROWS rows came after it: no GPU has
#: timed them yet).
TRITON_CONFIGS = [
    (32, 128, 64, 32, True, 256, False, True, _NEVER), (64, 128, 64, 32, True, 256, False, True, _NEVER),
    (128, 128, 64, 32, True, 256, False, True, _NEVER), (32, 32, 64, 32, True, 256, False, True, _NEVER),
    (32, 64, 64, 32, True, 256, False, True, _NEVER), (32, 128, 256, 32, True, 256, False, True, _NEVER),
    (32, 128, 64, 16, True, 256, False, True, _NEVER), (32, 128, 64, 64, True, 256, False, True, _NEVER),
    (32, 128, 64, 32, False, 256, False, True, _NEVER), (32, 128, 64, 32, True, 0, False, True, _NEVER),
    (32, 128, 64, 32, True, _NEVER, False, True, _NEVER), (32, 128, 64, 32, True, 256, True, True, _NEVER),
    (32, 128, 64, 32, True, 256, False, False, _NEVER), (32, 128, 64, 32, True, 0, False, False, _NEVER),
    (32, 128, 64, 32, True, 256, False, True, 1024), (32, 128, 64, 32, True, 256, False, True, 512),
    (32, 128, 64, 32, True, 256, False, True, 256), (32, 32, 64, 32, True, _NEVER, False, True, _NEVER)]


@contextlib.contextmanager
def _triton_config(config: tuple):
    from .align.backends import triton_dp

    saved = [getattr(triton_dp, name) for name in TRITON_KNOBS]
    for name, value in zip(TRITON_KNOBS, config):
        setattr(triton_dp, name, value)
    try:
        yield
    finally:
        for name, value in zip(TRITON_KNOBS, saved):
            setattr(triton_dp, name, value)


def triton_configs(device: torch.device) -> list[tuple]:
    """TRITON_CONFIGS; in the interpreter (CPU) only those that compute differently: it has no
    warps (_CELLS_PER_WARP makes no difference there) and runs no PTX (_FAST_LOG neither)."""
    if device.type == "cuda":
        return list(TRITON_CONFIGS)
    distinct = {}
    for config in TRITON_CONFIGS:
        distinct.setdefault(_computes(config), config)
    return list(distinct.values())


def _computes(config: tuple) -> tuple:
    """The knobs of a configuration that change what the interpreter computes."""
    return tuple(value for name, value in zip(TRITON_KNOBS, config) if name not in ("_CELLS_PER_WARP", "_FAST_LOG"))


def _kernel_ms(run: Run, device: torch.device, repeat: int) -> float:
    """The median GPU time of one pass: every kernel it runs, the triton kernels and the torch ops
    around them (the reorders of C and E to and from diagonal-major storage, the seeds), summed
    (torch.profiler; the host's share, checks and launches, left out)."""
    per_pass = [sum(event.device_time_total for event in kernel_events(run, device)) for _ in range(repeat)]
    return statistics.median(per_pass) / 1e3


def kernel_events(run: Run, device: torch.device) -> list:
    """torch.profiler's CUDA events of one pass, one per kernel name (device_time_total in µs,
    count): what ``_kernel_ms`` sums, and .ci/gpu-check lists kernel by kernel."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        run()
        _sync(device)
    return [event for event in prof.key_averages() if event.device_type == DeviceType.CUDA]


def triton_config_rows(repeat: int, quick: bool = False, device: torch.device = torch.device("cuda")) -> list[Row]:
    """The triton backend's kernel time per launch configuration (TRITON_CONFIGS), on the GPU
    table's workloads: what to tune TRITON_KNOBS by. Each
    configuration is checked against the default's values and gradients."""
    gen = torch.Generator(device=device).manual_seed(0)
    B, sizes, videos = (1, (40,), 4) if quick else (64, (128, 512, 2048), 256)
    workloads = [(f"soft-DTW fwd+bwd, B={B}, {n}x{n}, triton kernels",
                  _autograd(_triton_soft_dtw, torch.rand(B, n, n, generator=gen, device=device))) for n in sizes]
    video = F.normalize(torch.randn(videos, 8, 512, generator=gen, device=device), dim=-1)
    text = F.normalize(torch.randn(videos, 8, 512, generator=gen, device=device), dim=-1)
    workloads.append((f"VT-TWINS loss fwd+bwd, {videos}x{videos} pairs, 8x8, triton kernels",
                      _loss_run(video, text, _vtbench_s2dtw("triton"))))
    rows = []
    for title, run in workloads:
        reference = None
        for k, config in enumerate(triton_configs(device)):
            name = ", ".join(f"{knob}={value}" for knob, value in zip(TRITON_KNOBS, config))
            row = Row(title, name, reference=k == 0)
            rows.append(row)
            try:
                with _triton_config(config):
                    start = time.perf_counter()
                    output = run()  # compiles this configuration (on CPU: interprets it, timed as such)
                    row.ms = 1e3 * (time.perf_counter() - start)
                    if device.type == "cuda":
                        row.ms = _kernel_ms(run, device, repeat)
            except Exception as err:
                _failed(row, err)
                continue
            _agree(row, output, reference, 1e-5)
            reference = output if row.reference else reference
    return rows


def markdown(rows: list[Row], device: torch.device, repeat: int, what: str = "kernels") -> str:
    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{_cpu_name()}, {torch.get_num_threads()} threads"
    versions = f"torch {torch.__version__}"
    if what == "triton-configs" or device.type == "cuda":
        try:
            import triton

            versions += f", triton {triton.__version__}"
        except ImportError:
            pass
    timed = "the kernels' GPU time" if what == "triton-configs" and device.type == "cuda" else "wall time"
    lines = [f"Kernel benchmark on {where}; {versions}; {timed}, median of {repeat} runs, one process, "
             f"side by side (`python -m vtbench.bench {what}`).", "",
             "| workload | implementation | fwd+bwd ms | vs vtbench | peak memory MiB | agrees (max rel. diff) |",
             "|---|---|---:|---:|---:|---|"]
    base = {row.workload: row.ms for row in rows if row.reference and row.ms is not None}
    for row in rows:
        ratio = _number(row.ms / base[row.workload]) if row.ms is not None and row.workload in base else "-"
        ms = _number(row.ms) if row.ms is not None else "-"
        if row.runs is not None and row.runs < repeat:
            ms += f" ({row.runs} runs)"
        memory = f"{row.memory_mib:.1f}" if row.memory_mib is not None else "-"
        lines.append(f"| {row.workload} | {row.name} | {ms} | {ratio} | {memory} | {row.agrees} |")
    memory = ("growth of the process's peak resident set (VmHWM) during one pass, every allocator counted"
              if device.type == "cpu" else "torch.cuda.max_memory_allocated during one pass, over what was allocated before")
    bound = (" (a bound's 0.02: vtbench takes 50 times the bound)"
             if any(row.name.startswith(BOUND) for row in rows) else "")
    lines += ["", f"vs vtbench: time over the first row of the workload{bound}. Peak memory: {memory}. Agrees: the "
              "largest relative difference of the values and of the gradients to the first row."]
    return "\n".join(lines) + "\n"


def _number(x: float) -> str:
    """One decimal from 1 up, else two significant digits: a bound of 0.0026 ms must not read 0.0
    (and 0.996 reads 1.0, not 1)."""
    short = f"{x:.2g}"
    return f"{x:.1f}" if x >= 1 or float(short) >= 1 else short


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _set_threads(n: int) -> None:
    torch.set_num_threads(n)
    try:
        import numba  # pysdtw's and tslearn's kernels

        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except ImportError:
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vtbench.bench", description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["kernels", "triton-configs"],
                        help="kernels: vtbench against its peers; triton-configs: the triton backend's launch "
                             "configurations against each other (kernel time)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per row (median)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch and numba alike (default: theirs)")
    parser.add_argument("--out", help="also write the Markdown table to this file")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test, not a benchmark)")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads must be >= 1")
    if args.out and os.path.isdir(args.out):
        parser.error(f"--out {args.out} is a folder: name the file to write the table to")
    if args.threads:
        _set_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device here")
    if args.what == "triton-configs":
        if device.type != "cuda":
            parser.error("triton-configs needs --device cuda (the tests run it in Triton's interpreter)")
        rows = triton_config_rows(args.repeat, args.quick, device)
    elif device.type == "cuda":
        rows = gpu_rows(args.repeat, args.quick, device)
    else:
        rows = cpu_rows(args.repeat, args.quick)
    table = markdown(rows, device, args.repeat, args.what)
    print(table, end="")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The triton backend: the engine's anti-diagonal wavefront as Triton kernels, for CUDA tensors.

    forward   R_s[i,j]  = C_s[i,j] + smin_gamma { R_s'[i-di, j-dj] : (s', di, dj) in moves[s] }
    backward  E_s'[i,j] = sum over the moves (s', di, dj) of every state s of
                          E_s[i+di, j+dj] * exp((R_s[i+di, j+dj] - C_s[i+di, j+dj] - R_s'[i,j]) / gamma)
              (gamma = 0: the weight is 1 when the move is the successor's first argmin, else 0)

Same interface and the same numbers as the torch reference (``torch_ref``), which defines the
semantics: start cells, masked moves, +inf costs without NaN, the first-argmin tie-break, lengths.
Every Recursion is compiled into its own specialised kernels: its moves and start cells are
``tl.constexpr`` tuples, so the loops over states and moves unroll at compile time.

Layout. A program walks P problems at once, stripe by stripe of ROWS = W * LANES rows (N rounded up
to a power of two, at most ``_MAX_ROWS``: several cells per thread, and no length cap, as more
stripes follow; offsets within one problem are 32-bit, so ``_launch`` refuses a problem of 2^31
cells or more, S N M, which would wrap them). Step t of a stripe holds its anti-diagonal, the cells
(i0 + l, t - l), l < ROWS, as a (P * W, LANES) register tile: W groups of LANES consecutive rows per
problem, a group on the lanes of one warp (32 rows; 128, across warps, in stripes of _MAX_ROWS).
Each state's previous diagonal stays in registers, with its shift by one lane (``tl.gather``: within
a warp a shuffle), the cells one row up: the vertical predecessors of this step and the diagonal
ones of the next. A group's first lane reads the row above it from R in global memory, where the
group above stored it one step earlier (or the previous stripe did), behind a barrier each step.
Small problems (the contrastive batch: B^2 grids of 8-32 steps) share a program, P of them side by
side. The backward pass is the same walk in reverse, pulling E from the successors on the two
following diagonals (a group's last lane reads the row below it). What a step reads that the stripe
does not write (the costs, the column mask; in the backward R) is loaded one step ahead (PREFETCH),
so its latency hides behind the step before.

Storage. A grid of at least ``_DIAGONAL_MAJOR`` rows is stored diagonal-major (DIAG, ``_at``):
cell (i, j) at ((i + j) % M, i) of an (M, N) array, so that a step's cells lie side by side and
its loads and stores coalesce (row-major, each of a warp's 32 cells is a different cache line).
R (the kernels' own) then is; a plain grid's C is reordered into it once, in the forward, and
kept for the backward (soft; the hard backward never reads C), and E is reordered back after the
backward (``_reorder_kernel``); an interleaved grid reads and writes C's cells row-major (they
are few). With ``_REORDER`` off, R alone is stored diagonal-major and the kernels read C and write
E row-major where they lie (``_grid_at``): no reorder (6.4 of the 23.1 ms of a B=64 pass at
2048 x 2048 on an H100), against a step's C and E each touching a cache line per row (32 B sectors
for 4 useful bytes, each line used again by the next diagonals while it stays in L2). Untimed: no
GPU has run it yet (triton-configs has its rows), so it stays off.

Launch knobs (module constants, timed by ``python -m vtbench.bench triton-configs --device cuda``;
every kernel of a B=64 soft-DTW pass; the numbers here are an H200's, at commit c9495aa, and
figures/triton_configs_cuda.md an H100's, at commit aa1eac5). Diagonal-major
storage and 128-row groups took 2048 x 2048 from 39.1 to 19.7 ms (each alone: 25.8 and 35.9) and
512 x 512 from 1.9 to 1.7; forced on at 128 x 128 it was slower (0.28 against 0.21 ms: the
reorders cost more than coalescing saves there), and 128-row groups are slower below 2048 rows
(0.49 against 0.22 ms at 128 x 128). The prefetch: 0.30 to 0.22 ms at 128 x 128, 21.7 to 19.7 at
2048 x 2048. Handing the row over through shared memory instead of global memory (commit 55cffc1,
knob _SHARED) was slower at every size and was taken out again. _TILE 64 rather than 256: 1.3
against 1.6 ms for the contrastive batch's 65,536 S2DTW grids. At 2048 x 2048 the forward and
backward kernels take 6.3 and 6.1 ms (~1.5 us a diagonal step: B programs on the GPU's 132
multiprocessors, a few hundred instructions per step and thread, mostly index and mask
arithmetic, a barrier and a global round trip) and the three reorders 5.9 ms, four times a
copy's time (all timed on commit c9495aa). Since then the reorder has lost half its instructions,
and the DP loops a tenth by carrying each step's anti-diagonal residue (``_step``) instead of
taking remainders (compiled for sm_90, a 2048-row step costs a thread 405 instructions forward
and 426 backward, from 450 and 484), and a pass reorders C once, not twice. An H100 (commit
aa1eac5, figures/triton_configs_cuda.md now holds its run) took 6.6 ms forward, 7.9 backward and
6.4 for the two reorders at 2048 x 2048 (~3.2 ms per GiB each: still five times a copy there).
_FAST_LOG (off) takes the float32 soft-min's log as lg2.approx (``_log``: 333 instructions a
forward step instead of 405): on that H100 it took the forward from 6.6 to 5.3 ms, but moved the
values and gradients by 1e-4 at 2048 x 2048 (3e-5 at 512), more than the 1e-5 it had to meet, so
it stays off.

A program per stripe (``_STRIPE_ROWS``, off: no GPU has run it yet; triton-configs and
.ci/gpu-check time it). At 2048 x 2048 a B = 64 pass keeps 64 programs busy, 4 cells a thread a
step. With _STRIPE_ROWS = 512 each problem's four stripes run on programs of their own, side by
side (``_place``): the stripe below starts its step t once the stripe above has done its step
ROWS - 1 + t, which stores the row it reads, so the stripes run as a pipeline ROWS steps apart and
a pass still takes N + M - 1 steps, now of one cell a thread, on four times the programs. Each
stripe counts its steps done in a progress counter in global memory every _PUBLISH steps
(``_publish``: a barrier, then thread 0's release store) and the next waits on it (``_wait``:
thread 0's acquire loads, spinning only when the count it last read is short; the row itself is
read past L1, ``_handed``). A program takes a ticket, not its program id, to know its stripe, so
the one it waits for has started and is running: no wait can outlast the GPU's scheduling. The
backward is the same, bottom-up. The interpreter runs programs one after another, each to its end
(tickets in program order, so every wait finds its count reached): it checks the indices and that
every count waited for is reached (the tests time out otherwise), not the memory ordering, which
only a GPU can (the CUDA tests compare the striped walk's numbers to the one-program walk's).

S2DTW's grid. With ``fill`` (``INTERLEAVED``, see engine.solve) the kernels run on the grid
interleave(C, fill), (2N+1) x (2M+1), reading its cost cells (2i+1, 2j+1) from C and every other
cell as fill, and the backward writes the gradient of the cost cells only: the grid is never
built, nor its gradient gathered. A row that the group above reads from memory in the backward
(when a problem's rows span several groups) goes through a grid-sized buffer instead of E.
S2DTW's smoothing before it is one elementwise kernel each way (``smooth_forward``/``smooth_backward``,
the interface of the cpu backend's C++ smoothing), equal to variants.smooth_cost's torch form.

Precision. R is accumulated and stored in float64, so the differences R[cell] - C[cell] - R[pred]
that the soft-min weights exponentiate stay exact even when |R| is large and gamma is small (the
failure of float32 peers). Float64 costs are computed in float64 throughout (the reference's
numbers to ~1e-15). For float32 costs exp and log run in float32 on those float64 differences, so
their error does not grow with |R|: E stays within ~1e-7 of the float64 reference at small gamma
and ~1e-6 (of max E) at gamma ~ 1 on short grids, for an exp and a log per move that cost a fraction
of float64's. It grows with the path instead, each step's weight one float32 exponential: an H200
measured 1.2e-5 of max E at 2048 x 2048, gamma 0.1 (use float64 costs for tighter gradients).
The exponent is the difference times log2(e) / gamma, computed once per call (``_exp_neg``): the
loop holds no float64 division (compiled for sm_90 the soft-DTW kernels went from ~50 float64
FMAs per step, the divisions' Newton steps, to 2). These weights are exact to ~1e-16 |R| / gamma
(R's rounding): the torch and cpu backends normalise each cell's weights from its predecessors
instead (``torch_ref._weights``), which keeps E a probability even at gamma < 1e-15 |R|; here that
would cost a soft-min per successor in the backward, so below ~1e-10 |R| use gamma = 0.
``saved`` is (R (B, S, N, M) float64 (stored as ``_at`` says), or at gamma = 0 the int8 index of
each cell's argmin move;
the final-state seeds of E, (B, S) float64).

The kernels also run on CPU tensors in Triton's interpreter when TRITON_INTERPRET=1 was set
before this module was imported (the tests do that); the interpreter is slow, so only small shapes.
Checked with Triton 3.6 (the GPU image's; its interpreter needs numpy < 2.3) and 3.9: the
interpreter tests and the sm_90 compilation of every kernel; and on an H200 (commit c9495aa) and
an H100 (commit aa1eac5), Triton 3.6: the CUDA tests, ``python -m vtbench.bench kernels --device
cuda`` (README.md) and triton-configs.
"""
from __future__ import annotations

import contextlib
import functools
import math
import os

import torch
import triton
import triton.language as tl

from ..recursions import Recursion
from .torch_ref import _smin, _weights

INF = tl.constexpr(float("inf"))  # a constexpr: kernels may read it
_KIND = {(1, 1): 0, (1, 0): 1, (0, 1): 2}  # diagonal, vertical, horizontal: index into a cell's predecessors
_ROWS_FROM = {None: (0, -1), "corner": (-1, -1), "left": (0, 2**30), "left_first": (0, 0)}
_WARP = 32  # rows per group: one warp's lanes, shifted by warp shuffles
_WIDE_WARP = 128  # rows per group in stripes of _MAX_ROWS rows (the row shift through shared memory)
_MAX_ROWS = 2048  # rows per stripe: the groups of one program, stacked
_TILE = 64  # cells per step of one program when P small problems share it
_PROGRAMS = 256  # pack problems only while at least this many programs remain
_CELLS_PER_WARP = 32  # num_warps = a step's cells over this, 1..16
_PREFETCH = True  # load a step's inputs one step ahead
_DIAGONAL_MAJOR = 256  # grids of at least this many rows are stored anti-diagonal by anti-diagonal
_REORDER = True  # such a grid's C and E too, reordered to and from it (False: read and written row-major)
_STRIPE_ROWS = float("inf")  # grids of more rows run one program per stripe of this many (a power of two)
_PUBLISH = 8  # a striped program tells the next stripe how far it is every this many steps (a power of two)
_FAST_LOG = False  # float32 soft-min's log as lg2.approx (``_log``): faster, but off by 1e-4 on an H100
# (python -m vtbench.bench triton-configs times other values of these: bench.TRITON_KNOBS)


def available(device) -> bool:
    """True on CUDA; on CPU only in Triton's interpreter (TRITON_INTERPRET=1 set before import)."""
    device = torch.device(device)
    if device.type == "cuda":
        return True
    return device.type == "cpu" and _INTERPRETED and os.environ.get("TRITON_INTERPRET") == "1"


# ----------------------------------------------------------------------------------- kernels


@triton.jit
def _boundary(FIRST: tl.constexpr, LAST: tl.constexpr, i, j):
    """R_s at a cell outside the grid: 0 at the start cells R_s[i, -1], FIRST <= i <= LAST
    (R[-1, -1] for a corner start), +inf everywhere else."""
    is_start = (j == -1) & (i >= FIRST) & (i <= LAST)
    return tl.where(is_start, 0.0, INF).to(tl.float64)


@triton.jit
def _row_up(x, first):
    """The cell one row up on a stored diagonal: y[:, l] = x[:, l - 1], y[:, 0] = first (G, 1).
    Along the lanes of a warp: tl.gather is then a warp shuffle."""
    lane = tl.arange(0, x.shape[1])[None, :]
    shifted = tl.gather(x, tl.broadcast_to(tl.maximum(lane - 1, 0), x.shape), 1)
    return tl.where(lane == 0, first, shifted)


@triton.jit
def _row_down(x, last):
    """The cell one row down on a stored diagonal: y[:, l] = x[:, l + 1], y[:, -1] = last (G, 1)."""
    lane = tl.arange(0, x.shape[1])[None, :]
    shifted = tl.gather(x, tl.broadcast_to(tl.minimum(lane + 1, x.shape[1] - 1), x.shape), 1)
    return tl.where(lane == x.shape[1] - 1, last, shifted)


@triton.jit
def _wrap(diagonal, M, DIAG: tl.constexpr):
    """Anti-diagonal row + col as ``_at`` takes it: with DIAG its residue mod M (diagonal >= 0)."""
    if DIAG:
        return diagonal % M
    else:
        return diagonal


@triton.jit
def _step(wrapped, delta: tl.constexpr, M, DIAG: tl.constexpr):
    """The next (delta 1) or previous (delta -1) anti-diagonal of a ``_wrap``-ed one: the kernels
    carry it from step to step, so that their loops hold no remainder (each a dozen instructions
    or more, which every thread would repeat)."""
    moved = wrapped + delta
    if DIAG:
        if delta > 0:
            moved = tl.where(moved == M, 0, moved)
        else:
            moved = tl.where(moved < 0, M - 1, moved)
    return moved


@triton.jit
def _at(row, wrapped, N, M, DIAG: tl.constexpr):
    """Where cell (row, col) of an (N, M) grid is stored, ``wrapped`` = ``_wrap(row + col)``: DIAG
    (diagonal-major) at ((row + col) % M, row) of an (M, N) array, else row-major. Diagonal-major is
    a bijection (for a fixed row the columns take every residue once) that puts an anti-diagonal's
    cells side by side, so a step's loads and stores coalesce; a step's cells share their diagonal."""
    if DIAG:
        return wrapped * N + row
    else:
        return row * M + (wrapped - row)


@triton.jit
def _handed(ptr, mask, other, STRIPED: tl.constexpr):
    """A load of what another group or program stored: STRIPED (another program, on another
    multiprocessor), from L2 (``.cg``), past this multiprocessor's L1, which other programs' stores do
    not update."""
    if STRIPED:
        return tl.load(ptr, mask=mask, other=other, cache_modifier=".cg")
    else:
        return tl.load(ptr, mask=mask, other=other)


@triton.jit
def _above(R, state, row, col, wrapped, n, m, FIRST: tl.constexpr, LAST: tl.constexpr, N, M, DIAG: tl.constexpr,
           STRIPED: tl.constexpr):
    """R_s[row, col], (G, 1), wrapped = ``_wrap(row + col)``: the row above a group (stored by the
    group above or the previous stripe), or the boundary."""
    row, col = row + tl.zeros_like(n), col + tl.zeros_like(n)  # (G, 1): no scalar & tensor masks
    inside = (row >= 0) & (row < n) & (col >= 0) & (col < m)
    value = _handed(R + state + _at(row, wrapped, N, M, DIAG), inside, INF, STRIPED)
    return tl.where(inside, value, _boundary(FIRST, LAST, row, col))


@triton.jit
def _cost_cell(problem, row, col, inside, N, M):
    """Where grid cell (row, col) of interleave(C, fill), (N, M) = (2 Nc + 1, 2 Mc + 1), is a cost cell
    of C (B, S, Nc, Mc), and its offset there: (2i+1, 2j+1) holds C_s[i, j]."""
    inner = inside & (row % 2 == 1) & (col % 2 == 1)
    return inner, problem * (N // 2) * (M // 2) + (row // 2) * (M // 2) + col // 2


@triton.jit
def _grid_at(row, col, wrapped, N, M, DIAG: tl.constexpr):
    """``_at`` from the cell's column: where C and E store it (the kernels' CE_DIAG), which may be
    row-major while R is diagonal-major (``wrapped`` then is a residue, not row + col)."""
    if DIAG:
        return _at(row, wrapped, N, M, DIAG)
    else:
        return row * M + col


@triton.jit
def _cost(C, problem, row, col, wrapped, inside, N, M, DIAG: tl.constexpr, FILLED: tl.constexpr, fill):
    """C_s[row, col] in float64, (G, LANES) or (G, 1), of the problem-and-state ``problem`` = b * S + s,
    C stored as ``_grid_at`` says (DIAG: the kernels' CE_DIAG; wrapped = ``_wrap(row + col)``); FILLED:
    the grid interleave(C, fill), whose cell (2i+1, 2j+1) is C_s[i, j] (C row-major) and every other fill."""
    if FILLED:
        inner, at = _cost_cell(problem, row, col, inside, N, M)
        return tl.where(inner, tl.load(C + at, mask=inner, other=0.0).to(tl.float64), fill)
    else:
        return tl.load(C + problem * N * M + _grid_at(row, col, wrapped, N, M, DIAG), mask=inside,
                       other=0.0).to(tl.float64)


@triton.jit
def _below(HANDOFF, R, C, CHOICE, problem, row, col, wrapped, n, m, N, M, DIAG: tl.constexpr,
           CE_DIAG: tl.constexpr, HARD: tl.constexpr, FILLED: tl.constexpr, fill, STRIPED: tl.constexpr):
    """(E_s, decision_s) of cell (row, col) below a group (stored in HANDOFF by the group below or
    the next stripe), (G, 1) each, wrapped = ``_wrap(row + col)``; zero outside the problem. R and
    CHOICE stored as DIAG says, HANDOFF and C as CE_DIAG does (``_grid_at``)."""
    row, col = row + tl.zeros_like(n), col + tl.zeros_like(n)
    inside = (row < n) & (col >= 0) & (col < m)
    grid = problem * N * M
    e = _handed(HANDOFF + grid + _grid_at(row, col, wrapped, N, M, CE_DIAG), inside, 0.0, STRIPED).to(tl.float64)
    at = grid + _at(row, wrapped, N, M, DIAG)
    if HARD:
        key = tl.load(CHOICE + at, mask=inside, other=0).to(tl.float64)
    else:
        key = tl.load(R + at, mask=inside, other=0.0) - _cost(C, problem, row, col, wrapped, inside, N, M, CE_DIAG,
                                                              FILLED, fill)
    return e, key


@triton.jit
def _pred(preds, vertical, MOVE: tl.constexpr):
    """R of the predecessor a move names (``_move``: src * 6 + kind * 2 + masked); +inf where a
    masked move is barred."""
    value = preds[MOVE // 6][MOVE // 2 % 3]
    if MOVE % 2:
        value = tl.where(vertical, value, INF)
    return value


@triton.jit
def _exp_neg(diff, scale, MATH: tl.constexpr):
    """exp(-diff / gamma) of a float64 difference, as exp2(-diff * scale) in MATH with scale =
    log2(e) / gamma (``_scalars``): no float64 division in the loop. In float32 the difference, the
    scale and their product are each rounded once (the division's form rounded the quotient and
    Triton's exp its product with log2(e)): about 1e-7 of the exponent either way."""
    return tl.exp2(-diff.to(MATH) * scale)


@triton.jit
def _log(x, FAST: tl.constexpr):
    """log x. FAST (float32 x, compiled only: the interpreter runs no PTX): lg2.approx.f32, one
    multifunction-unit instruction (MUFU.LG2), times ln 2, instead of libdevice's logf, ~20
    instructions (compiled for sm_90, a 2048-row forward step costs a thread 333 instructions
    instead of 405). Its error is absolute, ~2^-22 of log2 x, where logf's is relative, and a
    soft-min takes the log of a sum in [1, 3]. On an H100 (commit aa1eac5, triton-configs) it moved
    the values and gradients by 1e-4 at 2048 x 2048 (3e-5 at 512), more than the 1e-5 they must
    meet: ``_FAST_LOG`` stays off."""
    if FAST:
        log2 = tl.inline_asm_elementwise("lg2.approx.f32 $0, $1;", "=r,r", [x], dtype=tl.float32, is_pure=True,
                                         pack=1)
        return log2 * 0.6931471805599453
    return tl.log(x)


@triton.jit
def _relax(MOVES: tl.constexpr, STATE: tl.constexpr, cost, preds, vertical, gamma, scale, HARD: tl.constexpr,
           MATH: tl.constexpr, FAST_LOG: tl.constexpr):
    """C_s + smin_gamma over the moves of state s, and the first argmin (the move gamma = 0 takes).

    smin is computed as torch_ref does: shift by the minimum (0 when every predecessor is +inf,
    which then gives +inf, never inf - inf)."""
    low = _pred(preds, vertical, MOVES[STATE][0])
    choice = tl.zeros(low.shape, tl.int32)
    for k in tl.static_range(1, len(MOVES[STATE])):
        value = _pred(preds, vertical, MOVES[STATE][k])
        better = value < low  # strict: a tie keeps the earlier move, as torch.argmin does
        low = tl.where(better, value, low)
        choice = tl.where(better, k, choice)
    if HARD:
        smin = low
    else:
        shift = tl.where(low == INF, 0.0, low)
        total = tl.zeros(low.shape, MATH)
        for k in tl.static_range(len(MOVES[STATE])):
            total += _exp_neg(_pred(preds, vertical, MOVES[STATE][k]) - shift, scale, MATH)
        smin = shift - gamma * _log(total, FAST_LOG).to(tl.float64)
    return cost + smin, choice


@triton.jit
def _pull(MOVES: tl.constexpr, TARGET: tl.constexpr, own, succ, col_ok, scale, HARD: tl.constexpr,
          MATH: tl.constexpr):
    """Sum over the moves (s, k) out of state TARGET of E_s[succ] * d smin_s[succ] / d R_TARGET[cell].

    own: R_TARGET on this diagonal; succ[s][kind] = (E_s, decision_s) of the successor reached by a
    move of that kind; a successor with E = 0 is skipped, so unreachable cells never meet inf - inf."""
    total = tl.zeros(own.shape, tl.float64)
    for s in tl.static_range(len(MOVES)):
        for k in tl.static_range(len(MOVES[s])):
            if MOVES[s][k] // 6 == TARGET:  # (src * 6 + kind * 2 + masked, see _move)
                e = succ[s][MOVES[s][k] // 2 % 3][0]
                key = succ[s][MOVES[s][k] // 2 % 3][1]
                take = e > 0
                if MOVES[s][k] % 2:
                    take = take & col_ok[MOVES[s][k] // 2 % 3]
                if HARD:
                    total += tl.where(take & (key == k), e, 0.0)
                else:
                    weight = _exp_neg(own - key, scale, MATH).to(tl.float64)
                    total += tl.where(take, e * weight, 0.0)
    return total


@triton.jit
def _tile(N_LEN, M_LEN, B, program, P: tl.constexpr, W: tl.constexpr, LANES: tl.constexpr):
    """This program's cells of one step: P problems x W groups of LANES rows, a (P * W, LANES) tile,
    of the problems program * P to program * P + P - 1 (``program``: ``_place``'s).

    Returns b (G, 1) the problem of each group, first (G, 1) the group's first row in a stripe,
    lane (G, LANES) each cell's row in the stripe, and the lengths n, m (G, 1) (0: no problem)."""
    group = tl.arange(0, P * W)[:, None]
    b = program * P + group // W
    first = (group % W) * LANES
    lane = first + tl.arange(0, LANES)[None, :]
    n = tl.load(N_LEN + b, mask=b < B, other=0).to(tl.int32)
    m = tl.load(M_LEN + b, mask=b < B, other=0).to(tl.int32)
    return b, first, lane, n, m


@triton.jit
def _place(FLAGS, N, ROWS: tl.constexpr, STRIPED: tl.constexpr, UPWARDS: tl.constexpr):
    """(program, stripe, its progress counter): which problems this program walks and, STRIPED,
    which of their stripes of ROWS rows (otherwise 0: it walks them all). A striped program takes
    a ticket, FLAGS[0] counted up, not its program id: every program with a lower ticket started
    before it and is running, so the stripe it waits for (the one above; UPWARDS, the backward's,
    the one below) always makes progress (program ids give no such order: the GPU may start a later
    one first and leave an earlier one waiting for a multiprocessor). Progress counters follow at
    FLAGS[1 + program * stripes + stripe]."""
    if STRIPED:
        stripes = tl.cdiv(N, ROWS)
        ticket = tl.atomic_add(FLAGS, 1)
        program = ticket // stripes
        stripe = ticket % stripes
        if UPWARDS:
            stripe = stripes - 1 - stripe
        return program, stripe, FLAGS + 1 + program * stripes + stripe
    else:
        return tl.program_id(0), 0, FLAGS


@triton.jit
def _wait(counter, seen, need):
    """Until another program's progress counter reaches need (steps done): the counter's last value
    read. Thread 0 reads it (acquire: what that program stored before it counted is then visible),
    and every thread gets the value (Triton broadcasts a scalar atomic's result behind a barrier)."""
    while seen < need:
        seen = tl.atomic_add(counter, 0, sem="acquire", scope="gpu")
    return seen


@triton.jit
def _publish(counter, done, last, PUBLISH: tl.constexpr):
    """Tell the stripe that waits for this one that ``done`` steps are done: every PUBLISH steps
    and after the last, after a barrier (every thread's stores of those steps are made, and the
    release makes them visible before the count)."""
    if ((done & (PUBLISH - 1)) == 0) | (done == last):
        tl.debug_barrier()
        tl.atomic_xchg(counter, done, sem="release", scope="gpu")


@triton.jit
def _forward_inputs(C, COL_MASK, b, i0, lane, t, wrapped, n, m, N, M, CE_DIAG: tl.constexpr, S: tl.constexpr,
                    HAS_MASK: tl.constexpr, FILLED: tl.constexpr, fill):
    """What step t of a stripe reads that the stripe itself does not write: each state's cost on
    diagonal t (wrapped = ``_wrap(i0 + t)``; C stored as CE_DIAG says), and the column mask."""
    i = i0 + lane
    j = t - lane
    valid = (i < n) & (j >= 0) & (j < m)
    if HAS_MASK:
        vertical = tl.load(COL_MASK + b * M + j, mask=valid, other=0) != 0
    else:
        vertical = valid
    costs = ()
    for s in tl.static_range(S):
        costs = costs + (_cost(C, b.to(tl.int64) * S + s, i, j, wrapped, valid, N, M, CE_DIAG, FILLED, fill),)
    return costs, vertical


@triton.jit
def _forward_kernel(
    C, R, CHOICE, N_LEN, M_LEN, COL_MASK, GAMMA, FLAGS, B, N, M,
    MOVES: tl.constexpr, STARTS: tl.constexpr, HARD: tl.constexpr, HAS_MASK: tl.constexpr,
    FILLED: tl.constexpr, MATH: tl.constexpr, P: tl.constexpr, W: tl.constexpr, LANES: tl.constexpr,
    PREFETCH: tl.constexpr, DIAG: tl.constexpr, CE_DIAG: tl.constexpr, STRIPED: tl.constexpr,
    PUBLISH: tl.constexpr, FAST_LOG: tl.constexpr,
):
    """R_s[i,j] = C_s[i,j] + smin_gamma{R_s'[i-di, j-dj]} for P problems; R (B, S, N, M), C the same
    or, FILLED, (B, S, N // 2, M // 2) read as interleave(C, fill); GAMMA: ``_scalars``. R is stored
    as DIAG says (``_at``), C as CE_DIAG does (``_grid_at``).
    PREFETCH: a step's inputs are loaded one step ahead. FAST_LOG: ``_log``'s. STRIPED (P = 1): one
    stripe of one problem per program (``_place``; FLAGS zeroed int32, 1 + B * stripes), which
    waits for the stripe above to have stored each row it reads."""
    S: tl.constexpr = len(MOVES)
    ROWS: tl.constexpr = W * LANES  # rows per stripe
    program, stripe, progress = _place(FLAGS, N, ROWS, STRIPED, False)
    b, first, lane, n, m = _tile(N_LEN, M_LEN, B, program, P, W, LANES)
    n_max = tl.max(n)
    m_max = tl.max(m)
    gamma = tl.load(GAMMA)
    fill = tl.load(GAMMA + 1)
    scale = tl.load(GAMMA + 2).to(MATH)
    grid = b.to(tl.int64) * S * N * M  # (G, 1) offset of each problem's R_0
    seen = 0  # STRIPED: the stripe above's steps done, as last read
    lo = stripe * ROWS
    if STRIPED:
        hi = tl.minimum(n_max, lo + ROWS)  # this stripe, if the problem has its rows
    else:
        hi = n_max
    for i0 in range(lo, hi, ROWS):
        tl.debug_barrier()  # row i0 - 1 was stored by other threads
        i = i0 + lane
        # per state: R on the stripe's previous diagonal t - 1 (t = -1: only (i0, -1) is inside), and
        # R one row up on diagonal t - 2, which is this step's diagonal predecessor (i - 1, j - 1)
        prev = ()
        diag = ()
        wrapped = _wrap(i0, M, DIAG)  # of diagonal i0 + t, carried step to step
        before = _step(_step(wrapped, -1, M, DIAG), -1, M, DIAG)  # diagonal i0 - 2, the corner's (col < 0: unread)
        for s in tl.static_range(S):
            corner = _above(R, grid + s * N * M, i0 + first - 1, -1 - first, before, n, m, STARTS[s][0], STARTS[s][1],
                            N, M, DIAG, STRIPED)
            prev = prev + (_boundary(STARTS[s][0], STARTS[s][1], i, -1 - lane),)
            diag = diag + (tl.where(lane == first, corner, INF),)
        if PREFETCH:
            ahead = _forward_inputs(C, COL_MASK, b, i0, lane, 0, wrapped, n, m, N, M, CE_DIAG, S, HAS_MASK, FILLED,
                                    fill)
        steps = tl.minimum(n_max - i0, ROWS) + m_max - 1
        for t in range(0, steps):
            if STRIPED:  # (i0 - 1, t), read below, is the stripe above's step ROWS - 1 + t (of ROWS + m - 1)
                seen = _wait(progress - 1, seen, tl.where(i0 > 0, tl.minimum(t + ROWS, ROWS + m_max - 1), 0))
            if PREFETCH:
                costs, vertical = ahead
                ahead = _forward_inputs(C, COL_MASK, b, i0, lane, t + 1, _step(wrapped, 1, M, DIAG), n, m, N, M,
                                        CE_DIAG, S, HAS_MASK, FILLED, fill)
            else:
                costs, vertical = _forward_inputs(C, COL_MASK, b, i0, lane, t, wrapped, n, m, N, M, CE_DIAG, S,
                                                  HAS_MASK, FILLED, fill)
            if W > 1:
                tl.debug_barrier()  # a group's first row reads the row the group above stored last step
            j = t - lane
            valid = (i < n) & (j >= 0) & (j < m)  # (G, LANES)
            cell = grid + _at(i, wrapped, N, M, DIAG)
            preds = ()  # per source state: R at (i-1, j-1), (i-1, j), (i, j-1)
            up = ()
            for s in tl.static_range(S):
                above = _above(R, grid + s * N * M, i0 + first - 1, t - first, _step(wrapped, -1, M, DIAG), n, m,
                               STARTS[s][0], STARTS[s][1], N, M, DIAG, STRIPED)
                up = up + (_row_up(prev[s], above),)
                preds = preds + ((diag[s], up[s], prev[s]),)
            new = ()
            for s in tl.static_range(S):
                at = cell + s * N * M
                r, choice = _relax(MOVES, s, costs[s], preds, vertical, gamma, scale, HARD, MATH, FAST_LOG)
                r = tl.where(valid, r, _boundary(STARTS[s][0], STARTS[s][1], i, j))
                tl.store(R + at, r, mask=valid)
                if HARD:
                    tl.store(CHOICE + at, choice.to(tl.int8), mask=valid)
                new = new + (r,)
            prev = new
            diag = up  # (i - 1, j) now is (i - 1, j - 1) at the next step
            wrapped = _step(wrapped, 1, M, DIAG)
            if STRIPED:
                _publish(progress, t + 1, steps, PUBLISH)


@triton.jit
def _backward_inputs(C, R, CHOICE, COL_MASK, problem, b, i0, lane, t, wrapped, n, m, N, M, DIAG: tl.constexpr,
                     CE_DIAG: tl.constexpr, S: tl.constexpr, HARD: tl.constexpr, HAS_MASK: tl.constexpr,
                     FILLED: tl.constexpr, fill):
    """What step t of a stripe reads that the stripe itself does not write: per state R on
    diagonal t (wrapped = ``_wrap(i0 + t)``; soft: with its decision R - C; hard: the argmin move),
    and the column mask at j and j + 1. R stored as DIAG says, C as CE_DIAG does."""
    i = i0 + lane
    j = t - lane
    valid = (i < n) & (j >= 0) & (j < m)
    if HAS_MASK:  # a masked move is allowed by its successor's column: j + 1 or j
        ok_j = tl.load(COL_MASK + b * M + j, mask=valid, other=0) != 0
        ok_j1 = tl.load(COL_MASK + b * M + j + 1, mask=valid & (j + 1 < m), other=0) != 0
    else:
        ok_j = valid
        ok_j1 = valid
    owns = ()
    for s in tl.static_range(S):
        at = (problem + s) * N * M + _at(i, wrapped, N, M, DIAG)
        if HARD:
            own = tl.zeros(lane.shape, tl.float64)
            key = tl.load(CHOICE + at, mask=valid, other=0).to(tl.float64)
        else:
            own = tl.load(R + at, mask=valid, other=INF)
            key = tl.where(valid, own - _cost(C, problem + s, i, j, wrapped, valid, N, M, CE_DIAG, FILLED, fill), 0.0)
        owns = owns + ((own, key),)
    return owns, (ok_j1, ok_j, ok_j1)


@triton.jit
def _backward_kernel(
    C, R, CHOICE, E, HANDOFF, SEED, N_LEN, M_LEN, COL_MASK, GAMMA, FLAGS, B, N, M,
    MOVES: tl.constexpr, HARD: tl.constexpr, HAS_MASK: tl.constexpr, FILLED: tl.constexpr,
    SPLIT: tl.constexpr, MATH: tl.constexpr, P: tl.constexpr, W: tl.constexpr, LANES: tl.constexpr,
    PREFETCH: tl.constexpr, DIAG: tl.constexpr, CE_DIAG: tl.constexpr, STRIPED: tl.constexpr,
    PUBLISH: tl.constexpr,
):
    """E_s'[i,j] = seed at the end cell + sum over successor moves of E[succ] * weight, walked
    backwards: stripes bottom-up, diagonals in reverse. E zeroed, shaped as C; SEED (B, S).
    FILLED (C read as interleave(C, fill)): E gets the cost cells only, and where a problem's rows
    span several groups (SPLIT) the first row of every group goes to HANDOFF (B, S, N, M) for the
    group (or stripe) above; otherwise HANDOFF is E. PREFETCH as in the forward; R stored as DIAG says,
    C, E and HANDOFF as CE_DIAG does. STRIPED as in the forward, waiting for the stripe below."""
    S: tl.constexpr = len(MOVES)
    ROWS: tl.constexpr = W * LANES
    program, stripe, progress = _place(FLAGS, N, ROWS, STRIPED, True)
    b, first, lane, n, m = _tile(N_LEN, M_LEN, B, program, P, W, LANES)
    n_max = tl.max(n)
    m_max = tl.max(m)
    fill = tl.load(GAMMA + 1)
    scale = tl.load(GAMMA + 2).to(MATH)
    problem = b.to(tl.int64) * S  # (G, 1) problem-and-state index of each problem's state 0
    grid = problem * N * M
    seed = ()
    for s in tl.static_range(S):
        seed = seed + (tl.load(SEED + b * S + s, mask=b < B, other=0.0),)
    below = first + LANES  # (G, 1) the first row of the next group, relative to the stripe
    n_stripes = tl.cdiv(n_max, ROWS)
    if STRIPED:  # this stripe, if the problem has its rows
        walks = tl.where(stripe < n_stripes, 1, 0)
        bottom = stripe
    else:  # every stripe, the last first
        walks = n_stripes
        bottom = n_stripes - 1
    seen = 0  # STRIPED: the stripe below's steps done, as last read
    for k in range(0, walks):
        i0 = (bottom - k) * ROWS
        tl.debug_barrier()  # row i0 + ROWS was stored by other threads
        i = i0 + lane
        zero = tl.zeros(lane.shape, tl.float64)
        steps = tl.minimum(n_max - i0, ROWS) + m_max - 1
        # per state, (E, decision) on the stripe's next diagonal t + 1, and one row down on diagonal
        # t + 2, which is this step's diagonal successor (i + 1, j + 1); the decision is the cell's
        # smin of its predecessors, R - C, or at gamma = 0 the index of its argmin move
        nxt = ()
        diag = ()
        wrapped = _wrap(i0 + steps - 1, M, DIAG)  # of diagonal i0 + t, carried step to step
        after = _wrap(i0 + steps + 1, M, DIAG)  # the first step's diagonal successor's (col >= m: unread)
        for s in tl.static_range(S):
            e_below, key_below = _below(HANDOFF, R, C, CHOICE, problem + s, i0 + below, steps - below + 1, after, n, m,
                                        N, M, DIAG, CE_DIAG, HARD, FILLED, fill, STRIPED)
            nxt = nxt + ((zero, zero),)
            diag = diag + ((tl.where(lane == below - 1, e_below, 0.0), tl.where(lane == below - 1, key_below, 0.0)),)
        if PREFETCH:
            ahead = _backward_inputs(C, R, CHOICE, COL_MASK, problem, b, i0, lane, steps - 1, wrapped, n, m, N, M, DIAG,
                                     CE_DIAG, S, HARD, HAS_MASK, FILLED, fill)
        for back in range(0, steps):
            t = steps - 1 - back
            if STRIPED:  # (i0 + ROWS, t - ROWS + 1), read below, is the stripe below's step t - ROWS + 1
                col = t - ROWS + 1  # of its tl.minimum(n - i0 - ROWS, ROWS) + m - 1, walked from the last
                waits = (i0 + ROWS < n_max) & (col >= 0) & (col < m_max)
                seen = _wait(progress + 1, seen,
                             tl.where(waits, tl.minimum(n_max - i0 - ROWS, ROWS) + m_max - 1 - col, 0))
            if PREFETCH:
                owns, col_ok = ahead
                ahead = _backward_inputs(C, R, CHOICE, COL_MASK, problem, b, i0, lane, t - 1,
                                         _step(wrapped, -1, M, DIAG), n, m, N, M, DIAG, CE_DIAG, S, HARD, HAS_MASK,
                                         FILLED, fill)
            else:
                owns, col_ok = _backward_inputs(C, R, CHOICE, COL_MASK, problem, b, i0, lane, t, wrapped, n, m, N, M,
                                                DIAG, CE_DIAG, S, HARD, HAS_MASK, FILLED, fill)
            if W > 1:
                tl.debug_barrier()  # a group's last row reads the row the group below stored last step
            j = t - lane
            valid = (i < n) & (j >= 0) & (j < m)
            cell = grid + _grid_at(i, j, wrapped, N, M, CE_DIAG)  # where E (and HANDOFF) store it
            succ = ()  # per state: (E, decision) at (i+1, j+1), (i+1, j), (i, j+1)
            down = ()
            for s in tl.static_range(S):
                e_below, key_below = _below(HANDOFF, R, C, CHOICE, problem + s, i0 + below, t - below + 1,
                                            _step(wrapped, 1, M, DIAG), n, m, N, M, DIAG, CE_DIAG, HARD, FILLED, fill,
                                            STRIPED)
                down = down + ((_row_down(nxt[s][0], e_below), _row_down(nxt[s][1], key_below)),)
                succ = succ + ((diag[s], down[s], nxt[s]),)
            new = ()
            for s in tl.static_range(S):
                at = cell + s * N * M
                own, key = owns[s]
                e = tl.where((i == n - 1) & (j == m - 1), seed[s], 0.0)
                e += _pull(MOVES, s, own, succ, col_ok, scale, HARD, MATH)
                e = tl.where(valid, e, 0.0)
                if FILLED:
                    inner, at_cost = _cost_cell(problem + s, i, j, valid, N, M)
                    tl.store(E + at_cost, e.to(E.dtype.element_ty), mask=inner)
                    if SPLIT:  # the group or stripe above reads this row
                        tl.store(HANDOFF + at, e.to(E.dtype.element_ty), mask=valid & (lane == first))
                else:
                    tl.store(E + at, e.to(E.dtype.element_ty), mask=valid)
                new = new + ((e, key),)
            nxt = new
            diag = down  # (i + 1, j) now is (i + 1, j + 1) at the next step
            wrapped = _step(wrapped, -1, M, DIAG)
            if STRIPED:
                _publish(progress, back + 1, steps, PUBLISH)


@triton.jit
def _smooth_forward_kernel(D, S, WEIGHTS, SMOOTH_GAMMA, CELLS, N, M, HARD: tl.constexpr, BLOCK: tl.constexpr):
    """S2DTW's smoothing, one cell per element: S = d + smin_gs(d[i,j-1], d[i-1,j], d[i-1,j-1]) (missing
    neighbours +inf, all three 0 at (0, 0)), and the soft-min weights (3, B, N, M) for the backward;
    D, S (B, N, M) flattened to CELLS. Computed in D's dtype, as the torch form does."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = idx < CELLS
    j = idx % M
    i = (idx // M) % N
    d = tl.load(D + idx, mask=ok, other=0.0)
    corner = (i == 0) & (j == 0)
    left = tl.where(corner, 0.0, tl.load(D + idx - 1, mask=ok & (j > 0), other=INF))
    up = tl.where(corner, 0.0, tl.load(D + idx - M, mask=ok & (i > 0), other=INF))
    diag = tl.where(corner, 0.0, tl.load(D + idx - M - 1, mask=ok & (i > 0) & (j > 0), other=INF))
    low = tl.minimum(tl.minimum(left, up), diag)  # finite: every cell has a neighbour
    if HARD:  # the first of (left, up, diagonal) that attains the minimum, as torch's argmin
        w0 = (left == low).to(d.dtype)
        w1 = ((up == low) & (left != low)).to(d.dtype)
        w2 = 1.0 - w0 - w1
        smin = low
    else:
        gs = tl.load(SMOOTH_GAMMA).to(d.dtype)
        w0 = tl.exp((low - left) / gs)
        w1 = tl.exp((low - up) / gs)
        w2 = tl.exp((low - diag) / gs)
        total = w0 + w1 + w2
        smin = low - gs * tl.log(total)
        w0, w1, w2 = w0 / total, w1 / total, w2 / total
    tl.store(S + idx, d + smin, mask=ok)
    tl.store(WEIGHTS + idx, w0, mask=ok)
    tl.store(WEIGHTS + CELLS + idx, w1, mask=ok)
    tl.store(WEIGHTS + CELLS + CELLS + idx, w2, mask=ok)  # (2 * CELLS would wrap an int32 CELLS >= 2^30)


@triton.jit
def _smooth_backward_kernel(G, WEIGHTS, GRAD, CELLS, N, M, BLOCK: tl.constexpr):
    """d loss / d d[i,j] = g[i,j] + what the cells right, below and diagonally below send back
    (their weight of this neighbour times their g), summed in the torch form's order."""
    idx = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = idx < CELLS
    j = idx % M
    i = (idx // M) % N
    grad = tl.load(G + idx, mask=ok, other=0.0)
    right = ok & (j + 1 < M)
    below = ok & (i + 1 < N)
    grad += tl.load(WEIGHTS + idx + 1, mask=right, other=0.0) * tl.load(G + idx + 1, mask=right, other=0.0)
    grad += tl.load(WEIGHTS + CELLS + idx + M, mask=below, other=0.0) * tl.load(G + idx + M, mask=below, other=0.0)
    both = right & below
    grad += (tl.load(WEIGHTS + CELLS + CELLS + idx + M + 1, mask=both, other=0.0)
             * tl.load(G + idx + M + 1, mask=both, other=0.0))
    tl.store(GRAD + idx, grad, mask=ok)


@triton.jit
def _reorder_kernel(SRC, DST, N, M, TO_DIAGONALS: tl.constexpr, BLOCK: tl.constexpr):
    """One tile of BLOCK rows i x BLOCK stored diagonals d of a grid: cell (i, j = (d - i) mod M),
    row-major at i * M + j, diagonal-major at d * N + i (``_at``). Along d the row-major side is
    contiguous, along i the diagonal-major one: each access coalesces in its own layout (the
    compiler converts between them through shared memory). j is the tile's (d0 - i0) mod M, one
    remainder per program, plus (d - d0) - (i - i0), wrapped at most once when M >= BLOCK; and the
    64-bit offsets are the tile's, once. Compiled for sm_90 (N and M multiples of 16, as Triton
    specialises 2048), a thread runs 624 instructions and holds 56 registers (to diagonals; 96
    back), against 1248 and 95 (128) with a remainder and 64-bit offsets per cell (commit c9495aa,
    the form the H200 timed)."""
    base = tl.program_id(0).to(tl.int64) * N * M
    i0 = tl.program_id(1) * BLOCK
    d0 = tl.program_id(2) * BLOCK  # < M
    rows = tl.arange(0, BLOCK)[:, None]
    diagonals = tl.arange(0, BLOCK)[None, :]
    i = i0 + rows
    d = d0 + diagonals
    ok = (i < N) & (d < M)
    j = (d0 + M - i0 % M) % M + diagonals - rows  # (d - i) mod M, give or take M: in (-BLOCK, M + BLOCK)
    if M >= BLOCK:
        j = tl.where(j < 0, j + M, tl.where(j >= M, j - M, j))
    else:
        j = (j % M + M) % M  # the operands of % kept non-negative: truncated and floored division agree
    row_major = rows * M + j  # past the tile's first row, as diagonal_major past its first diagonal
    diagonal_major = diagonals * N + rows
    # 64-bit offsets once per program; the cells' are 32-bit, under (BLOCK + 1) * max(N, M)
    row_tile = base + i0.to(tl.int64) * M
    diagonal_tile = base + d0.to(tl.int64) * N + i0
    if TO_DIAGONALS:
        cells = tl.load(SRC + row_tile + row_major, mask=ok)
        tl.store(DST + diagonal_tile + diagonal_major, cells, mask=ok)
    else:
        cells = tl.load(SRC + diagonal_tile + diagonal_major, mask=ok)
        tl.store(DST + row_tile + row_major, cells, mask=ok)


# ------------------------------------------------------------------------------------ launch

_INTERPRETED = not isinstance(_forward_kernel, triton.runtime.JITFunction)  # decided at import


def _move(move) -> int:
    """A move as one int, src * 6 + kind * 2 + masked: the kernels decode it at compile time. (One
    int rather than a tuple: triton before 3.9 cannot pass tuples nested three deep to a jit function.)"""
    return move.src * 6 + _KIND[(move.di, move.dj)] * 2 + int(move.masked)


def unsupported(rec: Recursion) -> str | None:
    """Why this backend cannot run ``rec``, or None: the kernels hold at most two states' diagonals."""
    return f"it runs recursions of at most 2 states, and this one has {rec.n_states}" if rec.n_states > 2 else None


def _compile_time(rec: Recursion) -> dict:
    """The Recursion as constexprs: moves[s] = (_move(move), ...), starts[s] = row range."""
    reason = unsupported(rec)
    if reason:
        raise ValueError(f"the triton backend cannot run recursion {rec.name!r}: {reason} (use backend='torch')")
    moves = tuple(tuple(_move(mv) for mv in ms) for ms in rec.moves)
    return {"MOVES": moves, "STARTS": tuple(_ROWS_FROM[start] for start in rec.starts)}


def _shape(cost: torch.Tensor, fill) -> tuple[int, int, int, int]:
    """(B, S, N, M) of the grid the recursion runs on: the cost's, or with ``fill`` the interleaved one."""
    B, S, N, M = cost.shape
    return (B, S, N, M) if fill is None else (B, S, 2 * N + 1, 2 * M + 1)


def _launch(cost: torch.Tensor, gamma: float, col_mask, fill=None) -> tuple[tuple[int], dict]:
    """Grid and constexprs: LANES rows per group (a warp), W groups per stripe, P problems per
    program, MATH the dtype of exp and log, PREFETCH the knob of that name, DIAG whether R is
    stored diagonal-major (``_at``: at least _DIAGONAL_MAJOR rows), CE_DIAG whether C and E are too
    (``_grid_at``: DIAG, unless _REORDER is off; an interleaved grid's C and E are C's cells, read
    and written in place, and CE_DIAG is then only how its HANDOFF is stored, as R), STRIPED whether
    a grid of more than _STRIPE_ROWS rows runs one program per stripe of that many (``_place``)."""
    B, S, N, M = _shape(cost, fill)
    if S * N * M >= 2**31 or B * M >= 2**31:
        raise ValueError(f"the triton backend addresses the cells of one problem (and a column mask's rows) with "
                         f"32-bit offsets: {B} problems of {S} x {N} x {M} cells exceed them (S N M and B M must be "
                         f"below 2^31); use the cpu or torch backend, or split the grid")
    diagonal_major = N >= _DIAGONAL_MAJOR
    striped = N > _STRIPE_ROWS
    if striped:
        rows = min(int(_STRIPE_ROWS), _MAX_ROWS)
        if rows < 1 or rows & (rows - 1):
            raise ValueError(f"_STRIPE_ROWS must be a power of two, got {_STRIPE_ROWS}")
    else:
        rows = min(triton.next_power_of_2(N), _MAX_ROWS)
    lanes = min(rows, _WIDE_WARP if rows == _MAX_ROWS else _WARP)
    per_program = 1 if striped else max(1, min(_TILE // rows, triton.next_power_of_2(triton.cdiv(B, _PROGRAMS))))
    meta = {
        "HARD": gamma == 0,
        "HAS_MASK": col_mask is not None,
        "FILLED": fill is not None,
        "MATH": tl.float64 if cost.dtype == torch.float64 else tl.float32,
        "P": per_program,
        "W": rows // lanes,
        "LANES": lanes,
        "PREFETCH": _PREFETCH,
        "DIAG": diagonal_major,
        "CE_DIAG": diagonal_major and (_REORDER or fill is not None),
        "STRIPED": striped,
        "PUBLISH": _PUBLISH,
        "num_warps": max(1, min(16, per_program * rows // _CELLS_PER_WARP)),
    }
    return (triton.cdiv(B, per_program) * (triton.cdiv(N, rows) if striped else 1),), meta


def _flags(meta: dict, grid: tuple[int], like: torch.Tensor) -> torch.Tensor:
    """The kernels' FLAGS: STRIPED, a ticket counter and a progress counter per program, zeroed;
    otherwise unused (any pointer)."""
    return torch.zeros(1 + grid[0], dtype=torch.int32, device=like.device) if meta["STRIPED"] else like


def _fast_log(math_dtype) -> bool:
    """The forward's FAST_LOG: ``_FAST_LOG`` where the exponentials and logs run in float32 (_launch's
    MATH; float64 keeps libdevice's log), compiled (the interpreter runs no PTX: there the knob
    changes nothing)."""
    return _FAST_LOG and math_dtype == tl.float32 and not _INTERPRETED


@functools.lru_cache(maxsize=64)
def _scalars(gamma: float, fill: float, math_dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(gamma, fill, scale) as a float64 tensor on the device: the kernels read them from memory (a
    float argument would reach them as float32). scale = log2(e) / gamma, held inside the normal
    range of the dtype the exponentials run in, so that a difference of 0 still gives exp2(0) = 1
    and +inf gives exp2(-inf) = 0 at any gamma > 0 (a gamma of 1e-39 would make it +inf in float32,
    and 0 * inf is NaN); 0 at gamma = 0 (unused). Cached: a hyperparameter takes few values, and
    each copy from the host would wait for the GPU's queue."""
    info = torch.finfo(math_dtype)
    scale = min(max(math.log2(math.e) / gamma, info.tiny), info.max) if gamma > 0 else 0.0
    return torch.tensor([gamma, fill, scale], dtype=torch.float64, device=device)


def _common(cost, gamma, n_len, m_len, col_mask, fill):
    mask = n_len if col_mask is None else col_mask.to(torch.int8).contiguous()  # any pointer when unused
    fill = 0.0 if fill is None else torch.tensor(fill, dtype=cost.dtype).item()  # as interleave would store it
    math_dtype = torch.float64 if cost.dtype == torch.float64 else torch.float32  # as _launch's MATH
    return cost.contiguous(), _scalars(gamma, fill, math_dtype, cost.device), n_len.contiguous(), m_len.contiguous(), mask


def _end_values(R, rec, n_len, m_len, diagonal_major):
    """R_s at each problem's end cell (n - 1, m - 1), R stored as ``_at`` says: (F, B)."""
    B, S, N, M = R.shape
    b = torch.arange(B, device=R.device)
    at = ((n_len + m_len - 2) % M) * N + n_len - 1 if diagonal_major else (n_len - 1) * M + m_len - 1
    flat = R.view(B, S, N * M)
    return torch.stack([flat[b, s, at] for s in rec.final])


_REORDER_BLOCK = 64  # rows and diagonals per program of the reorder kernel


def _reorder(x: torch.Tensor, to_diagonals: bool) -> torch.Tensor:
    """x (B, S, N, M), each grid row-major, as diagonal-major storage (``_at``) in a tensor of the same
    shape; or (to_diagonals False) back. In tiles of rows x diagonals, each side read or written
    coalesced. On an H200 the kernel of commit c9495aa took ~2 ms per GiB, as an index_select did,
    four times a copy's time; this one, with half its instructions, ~3.2 ms per GiB on an H100
    (whose memory is slower: five times a copy's time there)."""
    B, S, N, M = x.shape
    x = x.contiguous()
    out = torch.empty_like(x)
    grid = (B * S, triton.cdiv(N, _REORDER_BLOCK), triton.cdiv(M, _REORDER_BLOCK))
    with _on(x.device):
        _reorder_kernel[grid](x, out, N, M, TO_DIAGONALS=to_diagonals, BLOCK=_REORDER_BLOCK)
    return out


def _on(device: torch.device):
    """Launch on the tensors' GPU (Triton launches on the current one)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


#: The kernels read an interleaved grid (``fill``, see engine.solve) from its cost cells, never building it.
INTERLEAVED = True


def forward(cost, rec: Recursion, gamma, n_len, m_len, col_mask, fill=None):
    """cost (B, S, N, M) -> value (B,) in cost's dtype, and saved = (R or argmin moves, seeds, kept):
    kept holds C diagonal-major (``_at``) when the kernel read it so and the backward reads C (soft),
    for the backward to take instead of reordering C again. With ``fill`` the recursion runs on
    interleave(cost, fill), and R is that grid's."""
    B, S, N, M = _shape(cost, fill)
    grid, meta = _launch(cost, gamma, col_mask, fill)
    cost, gamma_t, n_len, m_len, mask = _common(cost, gamma, n_len, m_len, col_mask, fill)
    kept = []
    if meta["CE_DIAG"] and fill is None:  # the kernel reads C diagonal-major (an interleaved grid: C's cells, few)
        cost = _reorder(cost, True)
        if not meta["HARD"]:
            kept.append(cost)
    R = torch.empty((B, S, N, M), dtype=torch.float64, device=cost.device)  # stored as _at says
    choice = torch.empty((B, S, N, M), dtype=torch.int8, device=cost.device) if meta["HARD"] else R
    with _on(cost.device):
        _forward_kernel[grid](cost, R, choice, n_len, m_len, mask, gamma_t, _flags(meta, grid, n_len), B, N, M,
                              **_compile_time(rec), **meta, FAST_LOG=_fast_log(meta["MATH"]))
    finals = _end_values(R, rec, n_len, m_len, meta["DIAG"])
    value = _smin(finals, gamma)
    seed = torch.zeros((B, S), dtype=torch.float64, device=cost.device)
    weights = _weights(finals, gamma)
    for k, s in enumerate(rec.final):  # basic indexing: an index list would be copied from the host, a sync
        seed[:, s] = weights[k]
    return value.to(cost.dtype), (choice if meta["HARD"] else R, seed, kept)


def backward(cost, saved, rec: Recursion, gamma, n_len, m_len, col_mask, fill=None):
    """The expected alignment E = d value / d cost, shaped and typed as the cost (with ``fill``: the
    gradient of the cost cells of the interleaved grid). Takes the forward's diagonal-major C out of
    ``saved`` (it is freed before E is reordered back); a second backward (a retained graph) finds
    none there and reorders C again."""
    table, seed, kept = saved
    B, S, N, M = _shape(cost, fill)
    grid, meta = _launch(cost, gamma, col_mask, fill)
    split = fill is not None and N > meta["LANES"]  # rows of a problem in several groups: E handed over
    cost, gamma_t, n_len, m_len, mask = _common(cost, gamma, n_len, m_len, col_mask, fill)
    reorder = meta["CE_DIAG"] and fill is None  # E diagonal-major in the kernel, as R; and C, read when soft
    if reorder and not meta["HARD"]:  # (hard: the moves are stored, C is never read: any pointer)
        cost = kept.pop() if kept else _reorder(cost, True)
    E = torch.zeros_like(cost)
    handoff = torch.empty((B, S, N, M), dtype=E.dtype, device=E.device) if split else E
    R, choice = (table, table) if not meta["HARD"] else (E, table)  # the unused one: any pointer
    with _on(cost.device):
        _backward_kernel[grid](cost, R, choice, E, handoff, seed, n_len, m_len, mask, gamma_t,
                               _flags(meta, grid, n_len), B, N, M, MOVES=_compile_time(rec)["MOVES"], SPLIT=split,
                               **meta)
    if reorder:
        del cost, handoff  # the diagonal-major copy of C, before E's row-major copy is allocated
        E = _reorder(E, False)
    return E


_SMOOTH_BLOCK = 1024  # cells per program of the smoothing kernels


def smooth_forward(cost, smooth_gamma):
    """S2DTW's smoothing (variants.smooth_cost) of cost (B, N, M): S and the soft-min weights (3, B, N, M)."""
    cost = cost.contiguous()
    B, N, M = cost.shape
    smoothed = torch.empty_like(cost)
    weights = torch.empty((3, B, N, M), dtype=cost.dtype, device=cost.device)
    gs = torch.full((1,), smooth_gamma, dtype=torch.float64, device=cost.device)
    grid = (triton.cdiv(cost.numel(), _SMOOTH_BLOCK),)
    with _on(cost.device):
        _smooth_forward_kernel[grid](cost, smoothed, weights, gs, cost.numel(), N, M,
                                     HARD=smooth_gamma == 0, BLOCK=_SMOOTH_BLOCK)
    return smoothed, weights


def smooth_backward(grad, weights):
    """d loss / d cost from d loss / d S and smooth_forward's weights."""
    grad = grad.contiguous()
    _, N, M = grad.shape
    out = torch.empty_like(grad)
    with _on(grad.device):
        _smooth_backward_kernel[(triton.cdiv(grad.numel(), _SMOOTH_BLOCK),)](grad, weights, out, grad.numel(), N, M,
                                                                             BLOCK=_SMOOTH_BLOCK)
    return out

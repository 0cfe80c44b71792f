"""The dynamic programs of vtbench, as data.

Every alignment kernel in vtbench is one recursion over a grid of cells (i, j), 0 <= i < N,
0 <= j < M, with S states per cell:

    R_s[i, j] = C_s[i, j] + smin_gamma { R_s'[i - di, j - dj] : (s', di, dj) in moves[s] }

where smin_gamma(a) = -gamma * log(sum_k exp(-a_k / gamma)) and smin_0 = min. Cells outside the
grid hold +inf, except the boundary cells a recursion declares as start cells, which hold 0:

* ``corner``: R_s[-1, -1] = 0 (a path starts at (0, 0) by a diagonal move, as in DTW);
* ``left``: R_s[i, -1] = 0 for every row i (a path may start in any row, as in OTAM);
* ``left_first``: R_s[0, -1] = 0 (a path starts in row 0 by a horizontal move, as in Drop-DTW).

A move flagged ``masked`` is allowed only in the columns where the per-pair column mask is True
(OTAM forbids vertical moves inside the real columns). The value of a pair with lengths (n, m) is
smin_gamma over the final states of R_s[n - 1, m - 1].

Every backend runs every recursion except where it says otherwise (``unsupported`` in its module):
the cpu backend runs at most 4 states of at most 4 moves, with horizontal moves that read the same
or an earlier state, the triton backend at most two states. ``backend="auto"`` then runs the torch backend instead; naming the backend
that cannot is an error.

Because every move goes back by at least one cell along i + j, all cells on one anti-diagonal
i + j = d depend only on earlier anti-diagonals: that is the wavefront every backend exploits.

The gradient of the value with respect to C_s[i, j] is the expected alignment E_s[i, j]: the
probability (under the Gibbs distribution over paths with temperature gamma) that the path visits
state s of cell (i, j); at gamma = 0 it is the indicator of the optimal path.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Start = Literal["corner", "left", "left_first"]


@dataclass(frozen=True)
class Move:
    """A predecessor of a cell: state ``src`` of cell (i - di, j - dj)."""

    src: int
    di: int
    dj: int
    masked: bool = False

    def __post_init__(self) -> None:
        if (self.di, self.dj) not in {(1, 1), (1, 0), (0, 1)}:
            raise ValueError(f"a move must be diagonal, vertical or horizontal, got {(self.di, self.dj)}")


@dataclass(frozen=True)
class Recursion:
    """One dynamic program: states, their moves, start cells and final states."""

    name: str
    moves: tuple[tuple[Move, ...], ...]  # moves[s]: the predecessors of state s
    starts: tuple[Start | None, ...]  # starts[s]: which boundary cells of state s hold 0
    final: tuple[int, ...]  # states read (and soft-minimised) at the end cell

    def __post_init__(self) -> None:
        S = len(self.moves)
        if S == 0 or len(self.starts) != S:
            raise ValueError(f"Recursion {self.name!r}: moves and starts need one entry per state (at least one), "
                             f"got {S} and {len(self.starts)}")
        if any(start not in (None, *get_args(Start)) for start in self.starts):
            raise ValueError(f"Recursion {self.name!r}: starts must be None, 'corner', 'left' or 'left_first', "
                             f"got {self.starts}")
        if not self.final or any(not 0 <= f < S for f in self.final):
            raise ValueError(f"Recursion {self.name!r}: final must name states in 0..{S - 1}, got {self.final}")
        if any(not moves or any(not 0 <= move.src < S for move in moves) for moves in self.moves):
            raise ValueError(f"Recursion {self.name!r}: every state needs moves, each from a state in 0..{S - 1}")
        readers = {"corner": {(1, 1)}, "left": {(1, 1), (0, 1)}, "left_first": {(1, 1), (0, 1)}}
        if not any((move.di, move.dj) in readers.get(self.starts[move.src], ()) for ms in self.moves for move in ms):
            raise ValueError(f"Recursion {self.name!r}: no move reads a start cell, so every value would be +inf (a "
                             "'corner' start is read only by a diagonal move from its state, 'left' and 'left_first' "
                             "by a diagonal or horizontal one)")

    @property
    def n_states(self) -> int:
        return len(self.moves)

    @property
    def has_masked_moves(self) -> bool:
        return any(move.masked for moves in self.moves for move in moves)


DIAG, UP, LEFT = (1, 1), (1, 0), (0, 1)

#: DTW and soft-DTW (Cuturi & Blondel 2017):
#: R[i,j] = C[i,j] + smin(R[i-1,j-1], R[i-1,j], R[i,j-1]), R[-1,-1] = 0.
SOFT_DTW = Recursion(
    name="soft_dtw",
    moves=((Move(0, *DIAG), Move(0, *UP), Move(0, *LEFT)),),
    starts=("corner",),
    final=(0,),
)

#: OTAM (Cao et al. 2020) on C with a zero column appended after the last real column:
#: R[i,-1] = 0 for every row (start anywhere in the first column), row 0 accumulates, vertical
#: moves only in the first real column and in the appended column (masked elsewhere).
OTAM = Recursion(
    name="otam",
    moves=((Move(0, *DIAG), Move(0, *LEFT), Move(0, *UP, masked=True)),),
    starts=("left",),
    final=(0,),
)

#: Drop-DTW (Dvornik et al. 2021) on a grid whose row 0 is "before the first step":
#: state 0 = Dp (clip j matched to step i), state 1 = Dm (clip j dropped after step i).
#: Dp[i,j] = C[i,j] + smin(Dp[i-1,j-1], Dm[i-1,j-1], Dp[i,j-1]);
#: Dm[i,j] = drop[j] + smin(Dp[i,j-1], Dm[i,j-1]); Dm[0,-1] = 0.
DROP_DTW = Recursion(
    name="drop_dtw",
    moves=(
        (Move(0, *DIAG), Move(1, *DIAG), Move(0, *LEFT)),
        (Move(0, *LEFT), Move(1, *LEFT)),
    ),
    starts=(None, "left_first"),
    final=(0, 1),
)

RECURSIONS = {r.name: r for r in (SOFT_DTW, OTAM, DROP_DTW)}

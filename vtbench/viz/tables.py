"""Plain-text tables for notebooks and logs (fixed formatting, so that nbval can compare them)."""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .alignments import KERNEL_TITLES, Pair, align, path_accuracy, sentence_recall, truth_mass


def kernel_table(pairs: Mapping[str, Pair], kernels: Sequence[str], **settings) -> dict[str, dict[str, dict]]:
    """For every pair and kernel: the value, the hard path's precision (share of matched cells
    the ground truth confirms), the expected alignment's share on the ground truth ("mass") and
    the path's sentence recall. ``settings`` go to :func:`align`."""
    table = {}
    for name, pair in pairs.items():
        table[name] = {}
        for kernel in kernels:
            alignment = align(pair, kernel, **settings)
            table[name][kernel] = {"value": alignment.value,
                                   "precision": path_accuracy(alignment.path, pair.truth),
                                   "mass": truth_mass(alignment.expected, pair.truth),
                                   "recall": sentence_recall(alignment.path, pair.truth)}
    return table


def format_table(rows: Mapping[str, Mapping[str, float]], *, digits: int = 2, row_title: str = "",
                 titles: Mapping[str, str] | None = None) -> str:
    """rows {row: {column: number}} as an aligned text table; NaN prints as '-'."""
    titles = {**KERNEL_TITLES, **(titles or {})}
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    header = [row_title] + [titles.get(c, c) for c in columns]
    body = [[str(name)] + ["-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"
                           for v in (row.get(c) for c in columns)] for name, row in rows.items()]
    widths = [max(len(r[k]) for r in [header, *body]) for k in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if k == 0 else cell.rjust(w) for k, (cell, w) in enumerate(zip(r, widths)))
             for r in [header, *body]]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)

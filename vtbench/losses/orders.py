"""Shuffled orders for TempCLR's sequence negatives, sampled (the published code enumerates all
n! permutations; sampling keeps the cost fixed as n grows)."""
from __future__ import annotations

import itertools
import math

import torch


def _segments(groups: list[int]) -> list[list[int]]:
    """Consecutive runs of equal ids in ``groups``: the positions of each segment, in order."""
    out: list[list[int]] = []
    for pos, g in enumerate(groups):
        if out and groups[out[-1][-1]] == g:
            out[-1].append(pos)
        else:
            out.append([pos])
    return out


def count_orders(n: int, groups: list[int] | None = None) -> int:
    """How many orders exist besides the true one."""
    if groups is None:
        return math.factorial(n) - 1
    segments = _segments(groups)
    return math.factorial(len(segments)) * math.prod(math.factorial(len(s)) for s in segments) - 1


def _draw(n: int, segments: list[list[int]] | None, generator: torch.Generator | None) -> tuple[int, ...]:
    if segments is None:
        return tuple(torch.randperm(n, generator=generator).tolist())
    order = torch.randperm(len(segments), generator=generator).tolist()
    out: list[int] = []
    for s in order:  # segments shuffled, then the clips inside each segment
        inner = torch.randperm(len(segments[s]), generator=generator).tolist()
        out.extend(segments[s][i] for i in inner)
    return tuple(out)


def sample_orders(n: int, k: int, groups: list[int] | None = None,
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Up to k distinct orders of range(n), none the identity: LongTensor (k', n), k' = min(k, count).

    ``groups=None``: any permutation (TempCLR's sentence shuffles). ``groups`` (n segment ids,
    equal ids consecutive): segment-then-clip shuffles, the segments reordered and the clips
    inside each segment shuffled. When k covers every order they are all returned.
    """
    identity = tuple(range(n))
    segments = None if groups is None else _segments(list(groups))
    total = count_orders(n, None if groups is None else list(groups))
    if total <= k:
        if segments is None:
            every = itertools.permutations(range(n))
        else:
            every = (sum((list(p) for p in perms), []) for order in itertools.permutations(segments)
                     for perms in itertools.product(*(itertools.permutations(s) for s in order)))
        rows = [tuple(p) for p in every if tuple(p) != identity]
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), n)
    seen: dict[tuple[int, ...], None] = {}
    while len(seen) < k:
        order = _draw(n, segments, generator)
        if order != identity:
            seen.setdefault(order)
    return torch.tensor(list(seen), dtype=torch.long)

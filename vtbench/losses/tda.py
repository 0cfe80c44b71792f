"""Temporal data augmentation (TDA) of VT-TWINS (class TDA in mlvlab/VT-TWINS loss.py, switched
off in the published loss; an option here).

Candidates: the permutations p of n items with |p(i) - i| <= radius (400 for n = 8, radius 2).
For a sequence E (n, d), S = -E E^T (detached); candidate p is drawn with probability

    softmin_p( sharpness * || S - P S P^T ||_F ),   sharpness = 50 as published,

so that permutations which keep the self-similarity structure are preferred. Only the first
``length`` items of a padded sequence are permuted.
"""
from __future__ import annotations

from collections import defaultdict
from functools import lru_cache

import torch

#: TDA scores every candidate, a (C, n, n) tensor each time: beyond this many it refuses (radius 2
#: passes it at n = 16, 351,521 candidates; n = 8 has 400).
MAX_CANDIDATES = 100_000


@lru_cache(maxsize=64)
def count_local_permutations(n: int, radius: int = 2) -> int:
    """How many permutations p of range(n) have |p(i) - i| <= radius, without listing them: a DP
    over positions i whose state is which values of the window i - radius .. i + radius are taken
    (bit k: value i - radius + k); a value that leaves the window untaken ends the branch."""
    width = 2 * radius + 1
    states = {0: 1}
    for i in range(n):
        following: dict[int, int] = defaultdict(int)
        for taken, count in states.items():
            for k in range(width):
                value = i - radius + k
                if 0 <= value < n and not taken >> k & 1:
                    now = taken | 1 << k
                    if i - radius >= 0 and not now & 1:  # value i - radius leaves the window untaken
                        continue
                    following[now >> 1] += count
        states = following
    return sum(states.values())


@lru_cache(maxsize=64)
def local_permutations(n: int, radius: int = 2) -> torch.Tensor:
    """All permutations p of range(n) with |p(i) - i| <= radius: LongTensor (count, n)."""
    count = count_local_permutations(n, radius)
    if count > MAX_CANDIDATES:
        raise ValueError(f"tda: a sequence of {n} items has {count:,} candidate permutations at tda_radius={radius}, "
                         f"more than the {MAX_CANDIDATES:,} TDA can score (each step builds a (candidates, n, n) "
                         "tensor): use shorter sequences or a smaller tda_radius")
    out: list[tuple[int, ...]] = []

    def extend(prefix: list[int], used: set[int]) -> None:
        i = len(prefix)
        if i == n:
            out.append(tuple(prefix))
            return
        if i - radius - 1 >= 0 and (i - radius - 1) not in used:  # that item can no longer be placed
            return
        for v in range(max(0, i - radius), min(n, i + radius + 1)):
            if v not in used:
                used.add(v)
                prefix.append(v)
                extend(prefix, used)
                prefix.pop()
                used.remove(v)

    extend([], set())
    return torch.tensor(out, dtype=torch.long).reshape(len(out), n)


def sample_permutation(emb: torch.Tensor, radius: int = 2, sharpness: float = 50.0,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """One permutation for the sequence emb (n, d), drawn as in the module docstring: (n,)."""
    n = emb.shape[0]
    candidates = local_permutations(n, radius).to(emb.device)  # (C, n)
    e = emb.detach()
    s = -e @ e.T  # (n, n)
    permuted = s[candidates[:, :, None], candidates[:, None, :]]  # P S P^T: (C, n, n)
    distance = (s[None] - permuted).flatten(1).norm(dim=-1)  # (C,)
    probs = torch.softmax(-sharpness * distance.double(), dim=0)
    pick = torch.multinomial(probs.cpu(), 1, generator=generator).item()
    return candidates[pick]


def augment(emb: torch.Tensor, length: torch.Tensor, radius: int = 2, sharpness: float = 50.0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Permute each sequence of emb (B, n, d) within its first length[b] items (differentiably)."""
    index = torch.arange(emb.shape[1], device=emb.device).repeat(emb.shape[0], 1)  # (B, n)
    for b in range(emb.shape[0]):
        k = int(length[b])
        if k > 1:
            index[b, :k] = sample_permutation(emb[b, :k], radius, sharpness, generator)
    return torch.gather(emb, 1, index[..., None].expand_as(emb))

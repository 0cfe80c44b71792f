"""TempCLR's sampled shuffles and VT-TWINS' temporal data augmentation."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vtbench.losses import count_orders, local_permutations, sample_orders
from vtbench.losses.tda import augment, count_local_permutations, sample_permutation


@given(n=st.integers(2, 7), k=st.integers(1, 40), seed=st.integers(0, 100))
@settings(max_examples=40, deadline=None)
def test_sampled_orders_are_distinct_shuffles(n, k, seed):
    orders = sample_orders(n, k, generator=torch.Generator().manual_seed(seed))
    assert orders.shape == (min(k, math.factorial(n) - 1), n)
    as_tuples = {tuple(o) for o in orders.tolist()}
    assert len(as_tuples) == len(orders) and tuple(range(n)) not in as_tuples
    assert all(sorted(o) == list(range(n)) for o in as_tuples)


@given(sizes=st.lists(st.integers(1, 3), min_size=1, max_size=4), k=st.integers(1, 30))
@settings(max_examples=40, deadline=None)
def test_segment_then_clip_shuffles_keep_segments_together(sizes, k):
    groups = [g for g, size in enumerate(sizes) for _ in range(size)]
    n = len(groups)
    total = count_orders(n, groups)
    assert total == math.factorial(len(sizes)) * math.prod(math.factorial(s) for s in sizes) - 1
    orders = sample_orders(n, k, groups)
    assert len(orders) == min(k, total)
    for order in orders.tolist():
        seen = [groups[i] for i in order]
        runs = [g for i, g in enumerate(seen) if i == 0 or seen[i - 1] != g]
        assert len(runs) == len(set(runs)), f"segment split apart in {order}"
    assert len({tuple(o) for o in orders.tolist()}) == len(orders)


def test_local_permutations_match_brute_force():
    assert len(local_permutations(8, 2)) == 400  # as METHODS.md says for n = 8
    for n in range(1, 7):
        brute = {p for p in itertools.permutations(range(n)) if all(abs(p[i] - i) <= 2 for i in range(n))}
        assert {tuple(p) for p in local_permutations(n, 2).tolist()} == brute


def test_the_candidates_are_counted_without_listing_them_and_too_many_refused():
    for radius in range(4):
        for n in range(0, 10):
            assert count_local_permutations(n, radius) == len(local_permutations(n, radius)), (n, radius)
    assert count_local_permutations(16, 2) == 351_521 and count_local_permutations(20, 2) == 10_423_761
    with pytest.raises(ValueError, match=r"tda: a sequence of 20 items has 10,423,761 candidate permutations "
                                         r"at tda_radius=2.*use shorter sequences or a smaller tda_radius"):
        augment(torch.randn(1, 20, 4), torch.tensor([20]))
    assert augment(torch.randn(1, 20, 4), torch.tensor([20]), radius=1).shape == (1, 20, 4)  # (radius 1: 10,946)


def test_tda_prefers_permutations_that_keep_the_self_similarity():
    a, b, c = torch.tensor([[1.0, 0, 0], [0.6, 0.8, 0], [0, 0, 1]])
    seq = torch.stack([a, a, b, c])  # swapping the first two items changes nothing, any other move does
    g = torch.Generator().manual_seed(0)
    draws = {tuple(sample_permutation(seq, generator=g).tolist()) for _ in range(60)}
    assert draws == {(0, 1, 2, 3), (1, 0, 2, 3)}


def test_tda_permutes_only_the_valid_prefix():
    # one-hot rows: S = -I is kept by every permutation, so every local permutation is equally
    # likely and each output row says which input row it is
    length = torch.tensor([6, 4, 2, 1, 0])
    emb = torch.eye(6).repeat(5, 1, 1)  # (B, n, n)
    g = torch.Generator().manual_seed(0)
    moved = torch.zeros(5, 6, dtype=torch.bool)
    for _ in range(200):
        source = augment(emb, length, generator=g).argmax(-1)  # (B, n): the input row at each position
        valid = torch.arange(6) < length[:, None]
        assert torch.equal(source[~valid], torch.arange(6).expand(5, 6)[~valid])  # padding never moves
        assert all(sorted(source[b, : length[b]].tolist()) == list(range(length[b])) for b in range(5))
        assert ((source - torch.arange(6)).abs() <= 2).all()
        moved |= source != torch.arange(6)
    assert torch.equal(moved, (torch.arange(6) < length[:, None]) & (length[:, None] > 1))  # the rest moves sometimes

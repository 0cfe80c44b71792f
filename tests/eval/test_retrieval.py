"""Text-to-clip retrieval metrics on hand-made similarity matrices with known answers."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vtbench.eval import ranks_of_diagonal, text_to_clip_metrics


def test_perfect_retrieval():
    m = text_to_clip_metrics(torch.eye(20))
    assert m["R@1"] == m["R@5"] == m["R@10"] == 1.0
    assert m["MedR"] == 1.0 and m["n_queries"] == 20


def test_reversed_ranking_has_known_ranks():
    # sim[q, c] = c for every query: the truth (column q) is preceded by the Q-1-q larger columns,
    # so the ranks run, ..., 0
    q = 12
    sim = torch.arange(q, dtype=torch.float32).expand(q, q)
    assert ranks_of_diagonal(sim).tolist() == list(range(q - 1, -1, -1))
    m = text_to_clip_metrics(sim)
    assert m["R@1"] == pytest.approx(1 / 12)
    assert m["R@5"] == pytest.approx(5 / 12)
    assert m["R@10"] == pytest.approx(10 / 12)
    assert m["MedR"] == pytest.approx(np.median(np.arange(12)) + 1)  # 6.5


def test_ties_count_against_the_query():
    m = text_to_clip_metrics(torch.zeros(7, 7))
    assert m["R@1"] == 0.0 and m["MedR"] == 7.0


def test_more_candidates_than_queries():
    sim = torch.zeros(2, 5)
    sim[0, 0], sim[1, 1], sim[1, 4] = 1.0, 1.0, 2.0
    assert ranks_of_diagonal(sim).tolist() == [0, 1]


@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(4, 3), torch.zeros(0, 3),
                                 torch.tensor([[1.0, float("nan")], [0.0, 1.0]])])
def test_bad_input(bad):
    with pytest.raises(ValueError):
        text_to_clip_metrics(bad)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 30), st.integers(0, 10_000))
def test_matches_a_direct_count(q, seed):
    sim = torch.from_numpy(np.random.default_rng(seed).integers(0, 4, size=(q, q)).astype(np.float64))
    ranks = [sum(1 for c in range(q) if c != i and sim[i, c] >= sim[i, i]) for i in range(q)]
    m = text_to_clip_metrics(sim)
    assert m["R@5"] == pytest.approx(np.mean(np.array(ranks) < 5))
    assert m["MedR"] == pytest.approx(np.median(ranks) + 1)


def test_groups_count_every_clip_of_the_same_text_as_correct():
    # queries 0 and 1 share a text: for query 0, clip 1 ranking first is a hit
    sim = torch.tensor([[0.5, 0.9, 0.1], [0.5, 0.9, 0.1], [0.9, 0.0, 0.2]])
    assert ranks_of_diagonal(sim).tolist() == [1, 0, 1]
    m = text_to_clip_metrics(sim, groups=[0, 0, 1])
    assert m["R@1"] == pytest.approx(2 / 3)
    assert text_to_clip_metrics(sim, groups=[0, 1, 2]) == text_to_clip_metrics(sim)

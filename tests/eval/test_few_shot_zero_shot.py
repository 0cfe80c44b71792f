"""Few-shot sequence classification and zero-shot classification on hand-made embeddings."""
import numpy as np
import pytest
import torch

from vtbench.eval.few_shot import few_shot_accuracy, sample_episodes
from vtbench.eval.zero_shot import DIGIT_WORDS, zero_shot_accuracy


def _ordered(order, reps=2, noise=0.0, seed=0):
    """A video that shows one-hot 'steps' in the given order, each for ``reps`` clips."""
    g = torch.Generator().manual_seed(seed)
    x = torch.eye(6)[[s for s in order for _ in range(reps)]]
    return x + noise * torch.randn(x.shape, generator=g)


def test_few_shot_separates_orders_that_a_bag_of_clips_cannot():
    # class 0 shows steps 0,1,2; class 1 shows the same steps reversed; class 2 steps 3,4,5.
    orders = {0: [0, 1, 2], 1: [2, 1, 0], 2: [3, 4, 5]}
    seqs, labels = [], []
    for c, order in orders.items():
        for v in range(4):
            seqs.append(_ordered(order, reps=2 + v % 2, noise=0.05, seed=10 * c + v))
            labels.append(c)
    for score in ("dtw", "otam"):
        out = few_shot_accuracy(seqs, labels, n_way=3, k_shot=1, n_query=2, n_episodes=20, score=score, seed=1)
        assert out["accuracy"] == 1.0, score
    # the order-blind score confuses classes 0 and 1: clearly below perfect
    bag = few_shot_accuracy(seqs, labels, n_way=3, k_shot=1, n_query=2, n_episodes=20, score="caption_average", seed=1)
    assert bag["accuracy"] < 0.9


def test_episodes_are_seeded_and_well_formed():
    labels = [0] * 5 + [1] * 5 + [2] * 5 + [3] * 2
    a = sample_episodes(labels, n_way=3, k_shot=2, n_query=2, n_episodes=4, seed=7)
    b = sample_episodes(labels, n_way=3, k_shot=2, n_query=2, n_episodes=4, seed=7)
    for ea, eb in zip(a, b):
        assert np.array_equal(ea.support, eb.support) and np.array_equal(ea.query, eb.query)
        assert len(set(ea.support) | set(ea.query)) == 12  # disjoint
        assert 3 not in {labels[i] for i in ea.support}  # class 3 has too few videos
        assert sorted(np.bincount(ea.support_labels)) == [2, 2, 2]


def test_few_shot_needs_enough_classes():
    with pytest.raises(ValueError, match="needs 5 classes"):
        sample_episodes([0, 0, 1, 1], n_way=5, k_shot=1, n_query=1, n_episodes=1)


def test_zero_shot_known_accuracy():
    classes = torch.eye(4)
    clips = torch.tensor([[1.0, 0.1, 0, 0], [0, 1.0, 0, 0], [0, 0, 0.2, 1.0], [0, 0, 0.9, 0.1]])
    out = zero_shot_accuracy(clips, torch.tensor([0, 1, 2, 2]), classes)
    assert out["accuracy"] == 0.75
    assert out["per_class"] == {"0": 1.0, "1": 1.0, "2": 0.5}
    assert out["balanced_accuracy"] == pytest.approx(2.5 / 3)
    assert len(DIGIT_WORDS) == 10

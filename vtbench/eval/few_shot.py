"""Few-shot sequence classification, TempCLR's "matching between video instances" (METHODS.md 3).

An N-way K-shot episode draws N classes, K support videos and ``n_query`` query videos of each;
a query takes the label of the support video at the smallest alignment distance between the two
sequences of clip embeddings (``dtw``: DTW on 1 - cos with the L_max^2/(n_i n_j) normalisation;
``otam``: OTAM both directions; ``caption_average`` also works, for a bag-of-clips reference).
Accuracy is averaged over episodes, drawn from a seeded generator so that every method sees the
same episodes.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .video_paragraph import sequence_distances


@dataclass(frozen=True)
class Episode:
    """Indices into the list of videos and their episode labels 0..N-1."""
    support: np.ndarray        # (N * K,)
    support_labels: np.ndarray  # (N * K,)
    query: np.ndarray          # (N * n_query,)
    query_labels: np.ndarray    # (N * n_query,)


def sample_episodes(labels: Sequence, n_way: int, k_shot: int, n_query: int, n_episodes: int,
                    seed: int = 0) -> list[Episode]:
    """Seeded N-way K-shot episodes over the classes with at least K + n_query videos."""
    for name, value in (("n_way", n_way), ("k_shot", k_shot), ("n_query", n_query), ("n_episodes", n_episodes)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    labels = np.asarray([str(x) for x in labels])
    classes = sorted(c for c in set(labels.tolist()) if (labels == c).sum() >= k_shot + n_query)
    if len(classes) < max(n_way, 2):
        raise ValueError(f"{n_way}-way {k_shot}-shot with {n_query} queries needs {max(n_way, 2)} classes "
                         f"with >= {k_shot + n_query} videos each; only {len(classes)} have that many")
    rng = np.random.default_rng(seed)
    episodes = []
    for _ in range(n_episodes):
        chosen = rng.choice(len(classes), size=n_way, replace=False)
        support, query = [], []
        for label, c in enumerate(chosen):
            members = rng.permutation(np.flatnonzero(labels == classes[c]))
            support += [(i, label) for i in members[:k_shot]]
            query += [(i, label) for i in members[k_shot:k_shot + n_query]]
        s, q = np.array(support), np.array(query)
        episodes.append(Episode(s[:, 0], s[:, 1], q[:, 0], q[:, 1]))
    return episodes


def classify_episode(distances: torch.Tensor, episode: Episode) -> np.ndarray:
    """Predicted labels of the episode's queries: the label of the nearest support video.
    ``distances`` (V, V) between all videos, indexed by the episode."""
    d = distances[np.ix_(episode.query, episode.support)]  # (queries, supports)
    return episode.support_labels[d.argmin(dim=1).cpu().numpy()]


def few_shot_accuracy(sequences: Sequence[torch.Tensor], labels: Sequence, n_way: int = 5, k_shot: int = 1,
                      n_query: int = 1, n_episodes: int = 200, score: str = "dtw", seed: int = 0) -> dict:
    """Mean accuracy over seeded episodes, with its 95% normal interval half-width.

    sequences: one (n_i, d) clip-embedding sequence per video; labels: its class (e.g. the task).
    Distances are computed once between all videos, then indexed by each episode.

    >>> a, b = torch.eye(2), torch.eye(2).flip(0)
    >>> few_shot_accuracy([a, a, b, b], [0, 0, 1, 1], n_way=2, n_episodes=5)["accuracy"]
    1.0
    """
    if len(sequences) != len(labels):
        raise ValueError(f"{len(sequences)} sequences but {len(labels)} labels")
    episodes = sample_episodes(labels, n_way, k_shot, n_query, n_episodes, seed)
    distances = sequence_distances(sequences, sequences, score, names=("sequences", "sequences"))
    acc = np.array([(classify_episode(distances, e) == e.query_labels).mean() for e in episodes])
    half = 1.96 * acc.std(ddof=1) / math.sqrt(len(acc)) if len(acc) > 1 else float("nan")
    return {"accuracy": float(acc.mean()), "ci95": float(half), "n_way": n_way, "k_shot": k_shot,
            "n_query": n_query, "n_episodes": n_episodes, "score": score, "chance": 1.0 / n_way}

"""Retrieval metrics from a similarity matrix with the ground truth on the diagonal.

For query q (a row) the rank of its true candidate (column q) is, 0-based,

    r_q = #{c : sim[q, c] > sim[q, q]} + #{c != q : sim[q, c] == sim[q, q]},

so ties count against the query (a constant similarity never scores well). Then

    R@K = mean_q (r_q < K),    MedR = median_q(r_q) + 1,    MeanR = mean_q(r_q) + 1

as in METHODS.md section 3 (YouCook2 / MSR-VTT text-to-video). R@K are fractions in [0, 1].

Where several queries share one text (narrated digits says "write a three" over every three), the
diagonal truth asks a model to tell identical captions apart; ``groups`` gives the variant in which
every candidate of the query's group is correct: r_q counts the other-group candidates scoring at
least the best same-group one.
"""
from __future__ import annotations

import torch

KS = (1, 5, 10)


def ranks_of_diagonal(sim: torch.Tensor) -> torch.Tensor:
    """0-based rank of the diagonal entry in each row: sim (Q, C) with Q <= C -> LongTensor (Q,).

    A NaN similarity is a ValueError (it would silently rank anywhere).
    """
    sim = torch.as_tensor(sim)
    if sim.dim() != 2 or sim.shape[0] == 0 or sim.shape[0] > sim.shape[1]:
        raise ValueError(f"sim must be (Q, C) with 1 <= Q <= C and the truth on the diagonal, got {tuple(sim.shape)}")
    if torch.isnan(sim).any():
        raise ValueError("sim contains NaN")
    sim = sim.detach().to(torch.float64)
    q = sim.shape[0]
    true = sim.diagonal()[:, None]  # (Q, 1)
    ahead = (sim > true) | (sim == true)
    ahead[torch.arange(q), torch.arange(q)] = False  # the true candidate is not ahead of itself
    return ahead.sum(dim=1)


def ranks_of_group(sim: torch.Tensor, groups) -> torch.Tensor:
    """0-based rank of the best candidate of the query's own group: sim (Q, Q), groups (Q,) ->
    LongTensor (Q,). With every group a singleton this is :func:`ranks_of_diagonal`."""
    ranks_of_diagonal(sim)  # the same checks
    sim = torch.as_tensor(sim).detach().to(torch.float64)
    groups = torch.as_tensor(groups, device=sim.device)
    if sim.shape[0] != sim.shape[1] or groups.shape != sim.shape[:1]:
        raise ValueError(f"groups need a square sim and one group per query, "
                         f"got {tuple(sim.shape)} and {tuple(groups.shape)}")
    same = groups[:, None] == groups[None, :]  # (Q, Q)
    best = sim.masked_fill(~same, -torch.inf).amax(dim=1, keepdim=True)  # (Q, 1)
    return ((sim >= best) & ~same).sum(dim=1)


def rank_metrics(ranks: torch.Tensor, ks=KS) -> dict[str, float]:
    """R@K for each K, MedR and MeanR from 0-based ranks (Q,)."""
    ranks = torch.as_tensor(ranks, dtype=torch.float64)
    if ranks.numel() == 0:
        raise ValueError("no queries to rank")
    out = {f"R@{k}": float((ranks < k).to(torch.float64).mean()) for k in ks}
    # the lower median for an even count would bias MedR down: use the mean of the two middles
    out["MedR"] = float(ranks.quantile(0.5)) + 1.0
    out["MeanR"] = float(ranks.mean()) + 1.0
    return out


def text_to_clip_metrics(sim: torch.Tensor, ks=KS, groups=None) -> dict[str, float]:
    """Text-to-clip retrieval: sim (texts, clips), text q's clip is column q (or, with ``groups``,
    any clip of the query's group, see :func:`ranks_of_group`).

    Returns {"R@1", "R@5", "R@10", "MedR", "MeanR", "n_queries"}.

    >>> text_to_clip_metrics(torch.eye(4))["R@1"], text_to_clip_metrics(torch.eye(4))["MedR"]
    (1.0, 1.0)
    """
    ranks = ranks_of_diagonal(sim) if groups is None else ranks_of_group(sim, groups)
    return {**rank_metrics(ranks, ks), "n_queries": int(ranks.numel())}


def similarity_matrix(text_emb: torch.Tensor, clip_emb: torch.Tensor, normalise: bool = True) -> torch.Tensor:
    """Cosine (or dot, ``normalise=False``) similarity of text (Q, d) and clip (C, d) embeddings: (Q, C)."""
    if normalise:
        text_emb = torch.nn.functional.normalize(text_emb, dim=-1)
        clip_emb = torch.nn.functional.normalize(clip_emb, dim=-1)
    return text_emb @ clip_emb.T

"""Video-paragraph retrieval (TempCLR, Yang et al. ICLR 2023), METHODS.md section 3.

Query i is the paragraph of video i (all its caption embeddings T_i, (m_i, d)); the candidates
are the videos (clip embeddings V_j, (n_j, d)); the truth is video i. With
C_ij[a, b] = 1 - cos(t_a, v_b) and the length normalisation w_ij = L_max^2 / (m_i n_j)
(L_max the longest sequence of the set) the scores are

* ``caption_average``: s_ij = mean_a max_b cos(t_a, v_b);
* ``dtw``:  s_ij = -DTW(w_ij C_ij), hard DTW;
* ``otam``: s_ij = -(OTAM(w_ij C_ij) + OTAM(w_ij C_ij^T)), hard (gamma = 0), both directions.

METHODS.md names w_ij for DTW; the published evaluation (TempCLR's FullVideoRetrievalMetric)
scales the cost matrix by it before OTAM too, and so does vtbench: without it OTAM, which sums
one cost per column, prefers whichever candidate is shortest. Both kernels are exact (no
padding quirks): each pair is solved at its own (m_i, n_j).

"Background removed" feeds the ground-truth segments as clips, "background kept" fixed windows
over the whole video; both are only a choice of V_j, made by the caller (see ``evaluate``).
Report R@1/5/10 (and MedR) of each score from :func:`~vtbench.eval.retrieval.text_to_clip_metrics`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from vtbench.align import dtw, otam, pairwise_cost

from .retrieval import text_to_clip_metrics

SCORES = ("caption_average", "dtw", "otam")


def pad_sequences(seqs: Sequence[torch.Tensor], name: str = "sequences") -> tuple[torch.Tensor, torch.Tensor]:
    """list of (L_i, d) -> zero-padded (B, L_max, d) and lengths (B,); errors name the list ``name``."""
    if len(seqs) == 0:
        raise ValueError(f"{name} is empty")
    for k, s in enumerate(seqs):
        if not isinstance(s, torch.Tensor) or s.dim() != 2 or s.shape[0] == 0:
            shape = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
            raise ValueError(f"{name}[{k}] must be a non-empty (L, d) tensor, got {shape}")
        if s.shape[1] != seqs[0].shape[1]:
            raise ValueError(f"{name}[{k}] has d = {s.shape[1]} but {name}[0] has {seqs[0].shape[1]}")
    lengths = torch.tensor([s.shape[0] for s in seqs], device=seqs[0].device)
    return torch.nn.utils.rnn.pad_sequence(list(seqs), batch_first=True), lengths


def _all_pairs_cost(x, y):
    """x (Q, M, d), y (C, N, d) -> cosine cost (Q, C, M, N), in float64 for exact ties."""
    return pairwise_cost(x.to(torch.float64), y.to(torch.float64), "cosine", all_pairs=True)


def caption_average_distance(x, x_len, y, y_len):
    """-(mean over the m_i rows of the max over the n_j columns of cos) for every pair: (Q, C)."""
    sim = 1 - _all_pairs_cost(x, y)
    cols = torch.arange(y.shape[1], device=y.device) < y_len[:, None]  # (C, N)
    sim = sim.masked_fill(~cols[None, :, None, :], -torch.inf)
    best = sim.amax(dim=-1)  # (Q, C, M)
    rows = (torch.arange(x.shape[1], device=x.device) < x_len[:, None]).to(best.dtype)  # (Q, M)
    best = torch.where(rows[:, None, :] > 0, best, torch.zeros_like(best))
    return -(best.sum(-1) / x_len[:, None].to(best.dtype))


def _length_weight(xl, yl, l_max, dtype):
    """w_ij = L_max^2 / (m_i n_j). Hard DTW and OTAM are positively homogeneous in the cost, so
    scaling the value equals scaling the cost matrix."""
    return l_max**2 / (xl * yl).to(dtype)


def dtw_distance(x, x_len, y, y_len, l_max: int | None = None):
    """DTW(w_ij C_ij) for every pair: (Q, C)."""
    cost = _all_pairs_cost(x, y)
    q, c = cost.shape[:2]
    xl, yl = x_len[:, None].expand(q, c), y_len[None, :].expand(q, c)
    l_max = int(max(x_len.max(), y_len.max())) if l_max is None else l_max
    return dtw(cost, x_lengths=xl, y_lengths=yl) * _length_weight(xl, yl, l_max, cost.dtype)


def otam_distance(x, x_len, y, y_len, l_max: int | None = None):
    """OTAM(w_ij C_ij) + OTAM(w_ij C_ij^T), hard, for every pair: (Q, C)."""
    cost = _all_pairs_cost(x, y)
    q, c = cost.shape[:2]
    xl, yl = x_len[:, None].expand(q, c), y_len[None, :].expand(q, c)
    l_max = int(max(x_len.max(), y_len.max())) if l_max is None else l_max
    forward = otam(cost, 0.0, x_lengths=xl, y_lengths=yl)
    backward = otam(cost.transpose(-1, -2), 0.0, x_lengths=yl, y_lengths=xl)
    return (forward + backward) * _length_weight(xl, yl, l_max, cost.dtype)


DISTANCES: dict[str, Callable] = {
    "caption_average": caption_average_distance,
    "dtw": dtw_distance,
    "otam": otam_distance,
}


def sequence_distances(queries: Sequence[torch.Tensor], candidates: Sequence[torch.Tensor],
                       score: str = "dtw", chunk: int = 64,
                       names: tuple[str, str] = ("queries", "candidates")) -> torch.Tensor:
    """Distance of every query sequence (m_i, d) to every candidate sequence (n_j, d): (Q, C).

    ``score`` is one of :data:`SCORES`; queries are processed ``chunk`` at a time to bound memory
    (the cost tensor is chunk x C x M x N). Errors name the two lists as ``names`` says.
    """
    if score not in DISTANCES:
        raise ValueError(f"unknown score {score!r}; valid: {', '.join(SCORES)}")
    x, x_len = pad_sequences(queries, names[0])
    y, y_len = pad_sequences(candidates, names[1])
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"{names[0]} have d = {x.shape[-1]} but {names[1]} have d = {y.shape[-1]}: "
                         "they must share the embedding space")
    extra = {"l_max": int(max(x_len.max(), y_len.max()))} if score != "caption_average" else {}
    with torch.no_grad():
        rows = [DISTANCES[score](x[i:i + chunk], x_len[i:i + chunk], y, y_len, **extra)
                for i in range(0, len(queries), chunk)]
    return torch.cat(rows)


def paragraph_scores(paragraphs: Sequence[torch.Tensor], videos: Sequence[torch.Tensor],
                     score: str = "dtw") -> torch.Tensor:
    """Similarity (paragraph i, video j), higher is better: (Q, C) = -distance."""
    return -sequence_distances(paragraphs, videos, score, names=("paragraphs", "videos"))


def video_paragraph_metrics(paragraphs: Sequence[torch.Tensor], videos: Sequence[torch.Tensor],
                            scores: Sequence[str] = SCORES) -> dict[str, dict[str, float]]:
    """R@1/5/10 and MedR of paragraph-to-video retrieval for each score; paragraph i <-> video i.

    >>> v = [torch.eye(4)[[0, 1]], torch.eye(4)[[2, 3]], torch.eye(4)[[1, 0]]]
    >>> video_paragraph_metrics(v, v, ["dtw"])["dtw"]["R@1"]
    1.0
    """
    if len(paragraphs) != len(videos):
        raise ValueError(f"{len(paragraphs)} paragraphs but {len(videos)} videos: paragraph i belongs to video i")
    return {s: text_to_clip_metrics(paragraph_scores(paragraphs, videos, s)) for s in scores}

"""VT-TWINS (Ko et al., CVPR 2022): contrastive learning with S2DTW as the video-text score."""
from __future__ import annotations

import torch
from torch import nn

from ..align import pairwise_cost, s2dtw
from .base import (LOCAL, Gather, LossOutput, check_count, check_embeddings, check_number, gather_mask, lengths, num,
                   own_rows, share)
from .tda import augment


class VTTwins(nn.Module):
    """The S2DTW contrast of VT-TWINS over the videos of the global batch:

        s(V, T) = -S2DTW(V, T) / temperature,   on L2-normalised V (n, d), T (m, d), d = -<v_i, t_j>,
        L_t2v = (1/B) sum_i [ log sum_j exp s(V_j, T_i) - s(V_i, T_i) ],

    text to video as published (the positive in the denominator, no temperature: 1.0); every other
    video of the global batch is a negative. ``symmetric=True`` averages L_t2v with the
    video-to-text L_v2t. The all-pairs cost (B_v, B_t, n, m) comes from one matmul. ``tda=True``
    applies VT-TWINS' temporal data augmentation (:mod:`vtbench.losses.tda`) to the clips and the
    captions independently. Defaults as published: gamma = smooth_gamma = 0.1, skip_cost = 0.5.
    Sequences are the valid prefixes of the clips and captions (masks).
    """

    sampler = "vt-twins"

    def __init__(self, *, gamma: float = 0.1, smooth_gamma: float = 0.1, skip_cost: float = 0.5,
                 temperature: float = 1.0, symmetric: bool = False, tda: bool = False,
                 tda_radius: int = 2, tda_sharpness: float = 50.0):
        super().__init__()
        check_count("tda_radius", tda_radius, 0)
        self.gamma = check_number("gamma", gamma, at_least=0)
        self.smooth_gamma = check_number("smooth_gamma", smooth_gamma, at_least=0)
        self.skip_cost = check_number("skip_cost", skip_cost)
        self.temperature = check_number("temperature", temperature, above=0)
        self.symmetric, self.tda, self.tda_radius = symmetric, tda, tda_radius
        self.tda_sharpness = check_number("tda_sharpness", tda_sharpness, at_least=0)

    def scores(self, videos: torch.Tensor, texts: torch.Tensor, n_len: torch.Tensor, m_len: torch.Tensor) -> torch.Tensor:
        """s(V_j, T_i) for every video j and text i: videos (B_v, n, d), texts (B_t, m, d) -> (B_v, B_t)."""
        cost = pairwise_cost(videos, texts, "dot", all_pairs=True)  # (B_v, B_t, n, m)
        x_len = n_len[:, None].expand(cost.shape[:2])
        y_len = m_len[None, :].expand(cost.shape[:2])
        value = s2dtw(cost, self.gamma, self.smooth_gamma, self.skip_cost, x_lengths=x_len, y_lengths=y_len)
        return -value / self.temperature

    def forward(self, video_emb: torch.Tensor, text_emb: torch.Tensor, batch: dict, gather: Gather = LOCAL) -> LossOutput:
        check_embeddings(video_emb, text_emb, batch)
        b, n, _ = video_emb.shape
        n_len = lengths(batch["video_mask"], "video_mask") if "video_mask" in batch else torch.full((b,), n)
        m_len = lengths(batch["text_mask"], "text_mask") if "text_mask" in batch else torch.full((b,), text_emb.shape[1])
        n_len, m_len = n_len.to(video_emb.device), m_len.to(video_emb.device)
        videos, texts = nn.functional.normalize(video_emb, dim=-1), nn.functional.normalize(text_emb, dim=-1)
        if self.tda and self.training:
            videos = augment(videos, n_len, self.tda_radius, self.tda_sharpness)
            texts = augment(texts, m_len, self.tda_radius, self.tda_sharpness)
        valid = (n_len > 0) & (m_len > 0)  # (B,)
        n_len, m_len = n_len.clamp_min(1), m_len.clamp_min(1)
        all_videos, all_texts = gather(videos), gather(texts)  # (W B, n, d), (W B, m, d)
        all_n = gather(n_len.float()).round().long()  # float32, exact to 2^24 (bf16 would round 257 to 256)
        all_m = gather(m_len.float()).round().long()
        all_valid = gather_mask(gather, valid)
        count = all_valid.sum()
        own = torch.arange(b, device=videos.device) + own_rows(gather, b).start
        t2v = self._terms(self.scores(all_videos, texts, all_n, m_len).T, own, all_valid, valid)
        loss = share(t2v, count)
        stats = {"t2v": num(loss), "videos": num(valid.sum())}
        if self.symmetric:
            v2t = share(self._terms(self.scores(videos, all_texts, n_len, all_m), own, all_valid, valid), count)
            stats["v2t"] = num(v2t)
            loss = (loss + v2t) / 2
        return LossOutput(loss, stats)

    @staticmethod
    def _terms(scores: torch.Tensor, own: torch.Tensor, all_valid: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """sum over own rows r of logsumexp_j scores[r, j] - scores[r, own[r]]: scores (B, W B)."""
        rows = torch.arange(scores.shape[0], device=scores.device)
        terms = torch.logsumexp(scores.masked_fill(~all_valid[None], float("-inf")), -1) - scores[rows, own]
        return torch.where(valid, terms, torch.zeros((), dtype=scores.dtype, device=scores.device)).sum()

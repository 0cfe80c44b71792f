"""TempCLR (Yang et al., ICLR 2023): a clip-level contrast plus a sequence-level contrast of the
true order of a video's captions against shuffled orders."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from ..align import otam, pairwise_cost, soft_dtw
from .base import (LOCAL, Gather, LossOutput, check_count, check_embeddings, check_number, gather_mask, num, paired_clips,
                   share)
from .infonce import Temperature, pair_nce_terms
from .orders import sample_orders

ALIGNERS = ("soft_dtw", "otam")
SHUFFLES = ("sentences", "segments")


def first_pairs(valid: torch.Tensor, n_pairs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first n_pairs valid captions of each video, in caption (temporal) order: (B, n_pairs)
    indices, and which videos have that many: (B,)."""
    m = valid.shape[1]
    position = torch.arange(m, device=valid.device).expand_as(valid)
    key = torch.where(valid, position, position + m)  # valid captions first, in order
    return key.argsort(dim=1)[:, :n_pairs], valid.sum(1) >= n_pairs


def check_segment_ids(batch: dict, size: torch.Size) -> None:
    """``shuffle="segments"`` needs ``batch["segment_ids"]`` (B, n): the ground-truth segment of each clip."""
    if "segment_ids" not in batch:
        raise ValueError("tempclr shuffle='segments' needs batch['segment_ids'] (B, n), the ground-truth segment "
                         "of each clip, and this batch has none (vtbench's samplers do not produce it); "
                         "use shuffle='sentences'")
    if tuple(batch["segment_ids"].shape) != tuple(size):
        raise ValueError(f"batch['segment_ids'] has shape {tuple(batch['segment_ids'].shape)}, expected {tuple(size)}")


class TempCLR(nn.Module):
    """TempCLR's objective, L = (1 - alpha) L_clip + alpha L_align:

    * L_clip: VideoCLIP's symmetric InfoNCE over the clip/caption pairs (tau = ``clip_temperature``);
    * L_align: for each video with at least ``n_pairs`` clip/caption pairs (its first n_pairs, in
      temporal order), C[i, j] = 1 - cos(t_i, v_j) (cos = t.v / (|t||v| + 0.01)); candidates
      k = 0 (the true order) and k = 1..K (``n_orders`` distinct shuffles, sampled; all of them
      when fewer exist), logits_k = -D(C_k) / ``align_temperature`` with D soft-DTW (gamma) or
      OTAM(C_k) + OTAM(C_k^T), and L_align = mean over qualifying videos of CE(logits, 0).

    ``shuffle="sentences"`` permutes the caption rows; ``"segments"`` shuffles the clip columns
    segment by segment (the order of the segments, then the clips inside each), the ground-truth
    segment of each clip given by ``batch["segment_ids"]`` (B, n), which it requires (vtbench's
    samplers do not produce it).
    When no video of the global batch qualifies, L_align is left out, a warning is issued and
    ``stats["align_skipped"]`` says so: never a silent zero. Published: alpha = 0.7
    (pretraining; 0.12 for step localisation fine-tuning), n_pairs = 5, 31 shuffles, gamma = 0.1.
    """

    sampler = "tempclr"

    def __init__(self, *, alpha: float = 0.7, n_pairs: int = 5, n_orders: int = 31, gamma: float = 0.1,
                 aligner: str = "soft_dtw", shuffle: str = "sentences", clip_temperature: float = 1.0,
                 align_temperature: float = 1.0):
        super().__init__()
        if aligner not in ALIGNERS or shuffle not in SHUFFLES:
            raise ValueError(f"aligner must be one of {ALIGNERS} and shuffle one of {SHUFFLES}, got {aligner!r}, {shuffle!r}")
        self.alpha = check_number("alpha", alpha, at_least=0)
        if self.alpha > 1:
            raise ValueError(f"alpha must be <= 1 (the weight of L_align, 1 - alpha that of L_clip), got {alpha!r}")
        self.n_pairs, self.n_orders = check_count("n_pairs", n_pairs, 2), check_count("n_orders", n_orders, 1)
        self.gamma = check_number("gamma", gamma, at_least=0)
        self.aligner, self.shuffle = aligner, shuffle
        self.align_temperature = check_number("align_temperature", align_temperature, above=0)
        self.clip_temperature = Temperature(clip_temperature, name="clip_temperature")

    def distance(self, cost: torch.Tensor) -> torch.Tensor:
        """D(C) for cost (..., n, n) -> (...)."""
        if self.aligner == "otam":
            return otam(cost, self.gamma) + otam(cost.transpose(-1, -2), self.gamma)
        return soft_dtw(cost, self.gamma)

    def orders(self, videos: int, groups: torch.Tensor | None, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Candidate orders (Q, 1 + K, n) (row 0 the identity) and which are real (Q, 1 + K)."""
        n, k = self.n_pairs, self.n_orders
        orders = torch.arange(n).repeat(videos, 1 + k, 1)
        real = torch.zeros(videos, 1 + k, dtype=torch.bool)
        real[:, 0] = True
        for v in range(videos):
            shuffled = sample_orders(n, k, None if groups is None else groups[v].tolist())
            orders[v, 1 : 1 + len(shuffled)] = shuffled
            real[v, 1 : 1 + len(shuffled)] = True
        return orders.to(device), real.to(device)

    def align_terms(self, clips: torch.Tensor, texts: torch.Tensor, valid: torch.Tensor,
                    batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """Sum of the sequence CE terms of this process's qualifying videos, and which qualify (B,)."""
        index, qualifies = first_pairs(valid, self.n_pairs)  # (B, n), (B,)
        pick = index[..., None].expand(-1, -1, texts.shape[-1])
        t, v = torch.gather(texts, 1, pick)[qualifies], torch.gather(clips, 1, pick)[qualifies]  # (Q, n, d)
        groups = None
        if self.shuffle == "segments":
            clip_index = torch.gather(batch["pair"].to(index.device), 1, index).clamp_min(0)  # the clips picked
            groups = torch.gather(batch["segment_ids"].to(index.device), 1, clip_index)[qualifies]
        if t.shape[0] == 0:
            return texts.sum() * 0.0, qualifies
        cost = pairwise_cost(t, v, "cosine", eps=0.01)  # (Q, n, n): rows sentences, columns clips
        orders, real = self.orders(t.shape[0], groups, t.device)
        if self.shuffle == "sentences":
            candidates = torch.gather(cost[:, None].expand(-1, orders.shape[1], -1, -1), 2,
                                      orders[..., None].expand(-1, -1, -1, cost.shape[-1]))
        else:
            candidates = torch.gather(cost[:, None].expand(-1, orders.shape[1], -1, -1), 3,
                                      orders[:, :, None, :].expand(-1, -1, cost.shape[-2], -1))
        logits = -self.distance(candidates) / self.align_temperature  # (Q, 1 + K)
        logits = logits.masked_fill(~real, float("-inf"))
        return (torch.logsumexp(logits, -1) - logits[:, 0]).sum(), qualifies

    def forward(self, video_emb: torch.Tensor, text_emb: torch.Tensor, batch: dict, gather: Gather = LOCAL) -> LossOutput:
        check_embeddings(video_emb, text_emb, batch, required=("pair",))
        if self.shuffle == "segments":
            check_segment_ids(batch, video_emb.shape[:2])
        clips, valid = paired_clips(video_emb, batch)  # (B, m, d), (B, m)
        v2t, t2v, pairs = pair_nce_terms(clips, text_emb, valid, gather, self.clip_temperature())
        clip_loss = share(v2t.sum() + t2v.sum(), pairs)
        align_sum, qualifies = self.align_terms(clips, text_emb, valid, batch)
        count = gather_mask(gather, qualifies).sum()
        stats = {"clip": num(clip_loss), "align_videos": num(qualifies.sum()), "align_skipped": 0.0}
        if int(count) == 0:
            warnings.warn(f"tempclr: no video in this batch has {self.n_pairs} clip/caption pairs; "
                          "the sequence loss is left out of this step (stats['align_skipped'] = 1)", stacklevel=2)
            stats["align_skipped"] = 1.0 / gather.world_size
            return LossOutput((1 - self.alpha) * clip_loss, stats)
        align_loss = share(align_sum, count)
        stats["align"] = num(align_loss)
        return LossOutput((1 - self.alpha) * clip_loss + self.alpha * align_loss, stats)

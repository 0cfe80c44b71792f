"""Cali-NCE (Zhao et al., CVPR 2023 Workshops; an ICLR 2023 submission, withdrawn), AS RECONSTRUCTED
BY VTBENCH FROM THE ABSTRACT ALONE. No code and no full text were available: the abstract names
three strategies (correspondence modelling, contrastive learning, predictive coding), says their
plain co-training already helps, and that Cali-NCE estimates a correspondence score that then
calibrates the sample weights of the contrastive loss. Every concrete choice below (the heads,
the negatives, the weighting, lambda) is vtbench's, not the authors'. See METHODS.md section 2.5.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import (LOCAL, Gather, LossOutput, check_count, check_embeddings, check_number, gather_mask, lengths,
                   masked_logsumexp, num, own_rows, paired_clips, share)
from .infonce import Temperature, pair_nce_terms


class CorrespondenceHead(nn.Module):
    """h(v, t) = w^T relu(W [v; t; v * t] + b) + c -> a logit; s = sigmoid(h) in (0, 1) says
    "v and t correspond". W is applied block by block, so all P x Q pairs cost one (P, Q, d)
    product and one matmul rather than a (P, Q, 3d) concatenation."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.video, self.text = nn.Linear(dim, hidden), nn.Linear(dim, hidden, bias=False)
        self.both = nn.Linear(dim, hidden, bias=False)
        self.out = nn.Linear(hidden, 1)

    def forward(self, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.video(v) + self.text(t) + self.both(v * t)  # broadcasts over the pairs
        return self.out(torch.relu(h)).squeeze(-1)


class CaliNCE(nn.Module):
    """L = L_corr + L_NCE(w) + pc_weight * L_pc (a reconstruction, see above); L_corr, L_pc and the
    calibration w each switchable, L_NCE (what aligns the two embedding spaces) always on:

    * L_corr (``correspondence``): binary cross-entropy of s = sigmoid(h(v, t)) on the true
      clip/caption pairs (label 1) and on every mismatched pair of the global batch (label 0),
      mean over positives + mean over negatives;
    * L_NCE(w): the symmetric InfoNCE of the pairs on L2-normalised embeddings, pair p's two
      terms weighted by w_p = stopgrad(s_p) / mean_q stopgrad(s_q) (``calibrate``; mean 1 over the
      global batch, so pairs judged non-corresponding count less), or w = 1 (plain co-training);
    * L_pc (``predictive``): a GRU over the clips 0..c predicts clip c + 1 (CPC/DPC-style); InfoNCE
      of the prediction against every clip of the global batch, the true next clip the positive.
      (A video encoder with non-causal clip context lets neighbouring clips share information,
      which makes this term easier.)

    ``correspondence=False, calibrate=False, predictive=False`` is plain InfoNCE on normalised
    embeddings at this temperature: ``InfoNCE(temperature=0.1, normalize=True)``, not the ``infonce``
    baseline's VideoCLIP defaults (temperature 1, unnormalised).
    """

    sampler = "vt-twins"

    def __init__(self, *, embed_dim: int = 64, correspondence: bool = True, calibrate: bool = True,
                 predictive: bool = True, pc_weight: float = 1.0, temperature: float = 0.1,
                 pc_temperature: float = 0.1, head_hidden: int = 128):
        super().__init__()
        if calibrate and not correspondence:
            raise ValueError("calibrate=True needs correspondence=True (the score that calibrates is learned by it)")
        check_count("head_hidden", head_hidden, 1)
        self.embed_dim, self.calibrate = check_count("embed_dim", embed_dim, 1), calibrate
        self.pc_weight = check_number("pc_weight", pc_weight, at_least=0)
        self.temperature = Temperature(temperature)
        self.pc_temperature = Temperature(pc_temperature, name="pc_temperature")
        self.head = CorrespondenceHead(embed_dim, head_hidden) if correspondence else None
        self.predictor = nn.GRU(embed_dim, embed_dim, batch_first=True) if predictive else None
        self.predict = nn.Linear(embed_dim, embed_dim) if predictive else None

    def forward(self, video_emb: torch.Tensor, text_emb: torch.Tensor, batch: dict, gather: Gather = LOCAL) -> LossOutput:
        check_embeddings(video_emb, text_emb, batch, required=("pair",))
        if (self.head is not None or self.predictor is not None) and video_emb.shape[-1] != self.embed_dim:
            raise ValueError(f"CaliNCE(embed_dim={self.embed_dim}) got embeddings of dim {video_emb.shape[-1]}: "
                             f"embed_dim must be the encoders' output dim")
        videos, texts = nn.functional.normalize(video_emb, dim=-1), nn.functional.normalize(text_emb, dim=-1)
        clips, valid = paired_clips(videos, batch)  # (B, m, d), (B, m)
        d = clips.shape[-1]
        all_clips, all_texts = gather(clips).reshape(-1, d), gather(texts).reshape(-1, d)
        all_valid = gather_mask(gather, valid).reshape(-1)
        pairs = all_valid.sum()
        loss, stats = clips.sum() * 0.0, {"pairs": num(valid.sum())}
        weights = torch.ones_like(valid, dtype=clips.dtype)
        if self.head is not None:
            corr, score = self.correspondence(clips, texts, valid, all_texts, all_valid, gather)
            loss, stats["corr"], stats["score"] = loss + corr, num(corr), num((score * valid).sum())
            if self.calibrate:
                mean = gather(score.detach() * valid).sum() / pairs.clamp_min(1)
                weights = score.detach() / mean.clamp_min(1e-6)
        v2t, t2v, _ = pair_nce_terms(clips, texts, valid, gather, self.temperature())
        nce = share(((v2t + t2v) * weights.reshape(-1)).sum(), pairs)
        loss, stats["nce"] = loss + nce, num(nce)
        if self.predictor is not None:
            pc = self.predictive(videos, batch, gather)
            loss, stats["pc"] = loss + self.pc_weight * pc, num(pc)
        return LossOutput(loss, stats)

    def correspondence(self, clips, texts, valid, all_texts, all_valid, gather):
        """L_corr's share and the scores s of this process's true pairs (B, m)."""
        b, m, d = clips.shape
        own_v, own_valid = clips.reshape(-1, d), valid.reshape(-1)
        logits = self.head(own_v[:, None, :], all_texts[None, :, :])  # (P, W P): own clips x all captions
        rows = torch.arange(own_v.shape[0], device=clips.device)
        target = rows + own_rows(gather, own_v.shape[0]).start
        positive = torch.zeros_like(logits, dtype=torch.bool)
        positive[rows, target] = True
        counted = own_valid[:, None] & all_valid[None, :]
        bce = nn.functional.binary_cross_entropy_with_logits(logits, positive.to(logits.dtype), reduction="none")
        n = all_valid.sum()
        pos = share((bce * (counted & positive)).sum(), n)
        neg = share((bce * (counted & ~positive)).sum(), n * (n - 1))
        return pos + neg, torch.sigmoid(logits[rows, target]).reshape(b, m)

    def predictive(self, videos: torch.Tensor, batch: dict, gather: Gather) -> torch.Tensor:
        """L_pc's share: predictions from clips 0..c of clip c + 1 against every clip."""
        b, n, d = videos.shape
        n_len = lengths(batch["video_mask"], "video_mask") if "video_mask" in batch else torch.full((b,), n)
        n_len = n_len.to(videos.device)
        hidden, _ = self.predictor(videos)  # (B, n, d): state after clips 0..c
        prediction = nn.functional.normalize(self.predict(hidden[:, :-1]), dim=-1)  # (B, n - 1, d) for clips 1..n-1
        all_videos = gather(videos).reshape(-1, d)  # (W B n, d)
        clip_valid = torch.arange(n, device=videos.device) < n_len[:, None]  # (B, n)
        all_valid = gather_mask(gather, clip_valid).reshape(-1)
        has_next = clip_valid[:, 1:]  # (B, n - 1): a next clip exists
        scores = self.pc_temperature() * prediction.reshape(-1, d) @ all_videos.T  # (B (n - 1), W B n)
        base = own_rows(gather, b * n).start
        clip_index = torch.arange(b, device=videos.device)[:, None] * n + torch.arange(1, n, device=videos.device)
        target = (base + clip_index).reshape(-1)  # the next clip's row among the gathered clips
        rows = torch.arange(target.shape[0], device=videos.device)
        terms = masked_logsumexp(scores, all_valid[None]) - scores[rows, target]
        terms = torch.where(has_next.reshape(-1), terms, torch.zeros((), dtype=terms.dtype, device=terms.device))
        return share(terms.sum(), gather_mask(gather, has_next).sum())

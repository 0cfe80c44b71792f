"""InfoNCE as VideoCLIP uses it: a symmetric cross-entropy over temporally overlapping
clip/caption pairs."""
from __future__ import annotations

import math

import torch
from torch import nn

from .base import (LOCAL, Gather, LossOutput, check_embeddings, check_number, gather_mask, masked_logsumexp, num,
                   own_rows, paired_clips, share)


class Temperature(nn.Module):
    """The logit scale 1 / tau: a fixed number, or learnable as log(1 / tau) (CLIP-style, capped at
    100, so a learnable tau starts at 0.01 or above). The cap clamps the parameter itself before
    each use, as CLIP does after each step: a clamp inside the graph would give it zero gradient
    above the cap, where it could stick. ``name``: the loss's argument, for its errors."""

    MAX_LOG_SCALE = math.log(100.0)

    def __init__(self, temperature: float, learn: bool = False, name: str = "temperature"):
        super().__init__()
        temperature = check_number(name, temperature, above=0)
        if learn and 1.0 / temperature > math.exp(self.MAX_LOG_SCALE) * (1 + 1e-12):
            raise ValueError(f"{name} must be >= 0.01 when learned (its scale 1 / {name} is capped at 100), "
                             f"got {temperature!r}")
        self.fixed = None if learn else 1.0 / temperature
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature))) if learn else None

    def forward(self) -> torch.Tensor | float:
        if self.log_scale is None:
            return self.fixed
        with torch.no_grad():
            self.log_scale.clamp_(max=self.MAX_LOG_SCALE)
        return self.log_scale.exp()


def pair_nce_terms(clips: torch.Tensor, texts: torch.Tensor, valid: torch.Tensor, gather: Gather,
                   scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row terms of the symmetric InfoNCE for this process's pairs.

    clips, texts (B, m, d) with valid (B, m): pair p = (clips[p], texts[p]). For own pair p with
    global index g, against every valid pair q of the global batch:

        v2t[p] = logsumexp_q (s * <v_g, t_q>) - s * <v_g, t_g>,
        t2v[p] = logsumexp_q (s * <t_g, v_q>) - s * <t_g, v_g>.

    Returns v2t (P,), t2v (P,) (0 where not valid) and the number of valid pairs globally.
    """
    d = clips.shape[-1]
    own_v, own_t, own_valid = clips.reshape(-1, d), texts.reshape(-1, d), valid.reshape(-1)  # (P, d), (P,)
    all_v, all_t = gather(clips).reshape(-1, d), gather(texts).reshape(-1, d)  # (W P, d)
    all_valid = gather_mask(gather, valid).reshape(-1)  # (W P,)
    rows = torch.arange(own_v.shape[0], device=own_v.device)
    target = rows + own_rows(gather, own_v.shape[0]).start
    v2t = scale * own_v @ all_t.T  # (P, W P)
    t2v = scale * own_t @ all_v.T
    v2t_terms = masked_logsumexp(v2t, all_valid[None]) - v2t[rows, target]
    t2v_terms = masked_logsumexp(t2v, all_valid[None]) - t2v[rows, target]
    zero = torch.zeros((), dtype=v2t.dtype, device=v2t.device)
    return torch.where(own_valid, v2t_terms, zero), torch.where(own_valid, t2v_terms, zero), all_valid.sum()


class InfoNCE(nn.Module):
    """VideoCLIP's symmetric InfoNCE (Xu et al. 2021) over the clip/caption pairs of a batch:

        L = CE(V T^T / tau) + CE(T V^T / tau),

    each CE the mean over the pairs of the global batch of -log softmax at the true pair; V, T
    (P, d) the paired clip and caption embeddings (``batch["pair"]``). Published (VideoCLIP):
    tau = 1 on unnormalised features; ``normalize=True`` with a (learnable) tau is the CLIP-style
    alternative.
    """

    sampler = "pairs"

    def __init__(self, *, temperature: float = 1.0, learn_temperature: bool = False, normalize: bool = False):
        super().__init__()
        self.temperature = Temperature(temperature, learn_temperature)
        self.normalize = normalize

    def forward(self, video_emb: torch.Tensor, text_emb: torch.Tensor, batch: dict, gather: Gather = LOCAL) -> LossOutput:
        check_embeddings(video_emb, text_emb, batch, required=("pair",))
        clips, valid = paired_clips(video_emb, batch)  # (B, m, d), (B, m)
        texts = text_emb
        if self.normalize:
            clips, texts = nn.functional.normalize(clips, dim=-1), nn.functional.normalize(texts, dim=-1)
        scale = self.temperature()
        v2t, t2v, count = pair_nce_terms(clips, texts, valid, gather, scale)
        v2t, t2v = share(v2t.sum(), count), share(t2v.sum(), count)
        stats = {"v2t": num(v2t), "t2v": num(t2v), "pairs": num(valid.sum()),
                 "temperature": num(1 / scale) / gather.world_size}
        return LossOutput(v2t + t2v, stats)

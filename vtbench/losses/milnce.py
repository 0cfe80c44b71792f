"""MIL-NCE (Miech et al., CVPR 2020): a clip against a bag of its K temporally nearest captions."""
from __future__ import annotations

import torch
from torch import nn

from .base import (LOCAL, Gather, LossOutput, check_embeddings, gather_mask, masked_logsumexp, num, own_rows,
                   share)
from .infonce import Temperature


def candidate_captions(text_emb: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The K candidate captions of each clip: (B, n, K, d) and their validity (B, n, K)."""
    cand = batch["candidates"].to(text_emb.device)  # (B, n, K), -1 padded
    b, n, k = cand.shape
    valid = cand >= 0
    index = cand.clamp_min(0).reshape(b, n * k)
    if "text_mask" in batch:
        valid &= torch.gather(batch["text_mask"].to(valid.device).bool(), 1, index).reshape(b, n, k)
    emb = torch.gather(text_emb, 1, index[..., None].expand(b, n * k, text_emb.shape[-1]))
    return emb.reshape(b, n, k, -1), valid


class MILNCE(nn.Module):
    """MIL-NCE over clips i of the global batch, each with its bag P_i of K candidate captions
    (``batch["candidates"]``, the clip's temporally nearest captions):

        x[i, j, k] = <v_i, t_{j,k}> / tau,
        L = mean_i [ logsumexp( x[i, :, :] concatenated with x[:, i, :] ) - logsumexp_k x[i, i, k] ].

    As in the published loss (antoine77340/MIL-NCE_HowTo100M, loss.py) the denominator
    concatenates both halves, so the positive bag x[i, i, :] is counted twice. Invalid clips and
    candidates (masks, -1) drop out. Published: tau = 1, unnormalised embeddings.
    """

    sampler = "milnce"

    def __init__(self, *, temperature: float = 1.0, learn_temperature: bool = False, normalize: bool = False):
        super().__init__()
        self.temperature = Temperature(temperature, learn_temperature)
        self.normalize = normalize

    def forward(self, video_emb: torch.Tensor, text_emb: torch.Tensor, batch: dict, gather: Gather = LOCAL) -> LossOutput:
        check_embeddings(video_emb, text_emb, batch, required=("candidates",))
        if self.normalize:
            video_emb, text_emb = nn.functional.normalize(video_emb, dim=-1), nn.functional.normalize(text_emb, dim=-1)
        bags, bag_valid = candidate_captions(text_emb, batch)  # (B, n, K, d), (B, n, K)
        clip_valid = bag_valid.any(-1)
        if "video_mask" in batch:
            clip_valid &= batch["video_mask"].to(clip_valid.device).bool()
        b, n, k, d = bags.shape
        own_v, own_bags = video_emb.reshape(b * n, d), bags.reshape(b * n, k, d)
        own_bag_valid, own_valid = bag_valid.reshape(b * n, k), clip_valid.reshape(-1)
        all_v, all_bags = gather(video_emb).reshape(-1, d), gather(bags).reshape(-1, k, d)
        all_valid = gather_mask(gather, clip_valid).reshape(-1)
        all_bag_valid = gather_mask(gather, bag_valid).reshape(-1, k) & all_valid[:, None]
        scale = self.temperature()
        rows = own_rows(gather, b * n)
        x_rows = scale * torch.einsum("id,jkd->ijk", own_v, all_bags)  # x[i, :, :]: (P, W P, K)
        x_cols = scale * torch.einsum("jd,ikd->ijk", all_v, own_bags)  # x[:, i, :]: (P, W P, K)
        row_mask = all_bag_valid[None].expand_as(x_rows)
        col_mask = all_valid[None, :, None] & own_bag_valid[:, None, :]
        denominator = masked_logsumexp(torch.cat([x_rows, x_cols], 1).flatten(1), torch.cat([row_mask, col_mask], 1).flatten(1))
        own = torch.arange(b * n, device=own_v.device)
        numerator = masked_logsumexp(x_rows[own, own + rows.start], own_bag_valid)  # (P,)
        terms = torch.where(own_valid, denominator - numerator, torch.zeros((), dtype=x_rows.dtype, device=x_rows.device))
        loss = share(terms.sum(), all_valid.sum())
        return LossOutput(loss, {"milnce": num(loss), "clips": num(own_valid.sum()),
                                 "temperature": num(1 / scale) / gather.world_size})

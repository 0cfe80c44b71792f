"""The two-tower model every method trains: a video encoder and a text encoder into one space."""
from __future__ import annotations

import torch
from torch import nn


class DualEncoder(nn.Module):
    """``encode_video(video (B, n, clip_len, D), video_mask (B, n)) -> (B, n, d)`` and
    ``encode_text(text (B, m, L)) -> (B, m, d)``; ``forward(batch)`` returns both.

    Embeddings are returned unnormalised: each loss normalises if its method does.
    """

    def __init__(self, video_encoder: nn.Module, text_encoder: nn.Module):
        super().__init__()
        self.video_encoder = video_encoder
        self.text_encoder = text_encoder

    def encode_video(self, video: torch.Tensor, video_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.video_encoder(video, video_mask)

    def encode_text(self, text: torch.Tensor) -> torch.Tensor:
        return self.text_encoder(text)

    def forward(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode_video(batch["video"], batch.get("video_mask")), self.encode_text(batch["text"])

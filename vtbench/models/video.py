"""Video encoders: clips of frames (or of precomputed feature rows) -> clip embeddings.

Both take ``video (B, n, clip_len, D)`` (n clips of clip_len rows of D numbers each, as the
samplers produce) and an optional ``video_mask (B, n)``, and return ``(B, n, d)``.
"""
from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded clips of x (B, n, h) so that they do not leak into their neighbours."""
    return x if mask is None else x * mask[..., None].to(x.dtype)


class ClipContext(nn.Module):
    """Temporal context across the n clips of a video: residual 1-D convolutions over clips,

        x <- x + W2 relu(conv_k(LayerNorm(x))),   conv over the clip axis, padded clips zeroed.

    With ``layers=0`` every clip is encoded on its own.
    """

    def __init__(self, width: int, layers: int = 1, kernel: int = 3):
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"context kernel must be odd, got {kernel}")
        self.blocks = nn.ModuleList(
            nn.ModuleDict({
                "norm": nn.LayerNorm(width),
                "conv": nn.Conv1d(width, width, kernel, padding=kernel // 2),
                "out": nn.Linear(width, width),
            })
            for _ in range(layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for block in self.blocks:  # x: (B, n, h)
            h = _masked(block["norm"](x), mask)
            h = rearrange(block["conv"](rearrange(h, "b n h -> b h n")), "b h n -> b n h")
            x = x + block["out"](torch.relu(h))
        return _masked(x, mask)


class FrameVideoEncoder(nn.Module):
    """A small encoder for raw frames, sized to train on a CPU (narrated digits: 8x8 frames, D = 64).

    1. each frame: MLP D -> h;
    2. within a clip: a temporal convolution over its clip_len frames, then mean and max pooling;
    3. across clips: :class:`ClipContext` (temporal context between neighbouring clips);
    4. a linear map h -> d.
    """

    def __init__(self, input_dim: int, embed_dim: int = 64, hidden_dim: int = 128,
                 context_layers: int = 1, frame_kernel: int = 3):
        super().__init__()
        self.frame = nn.Sequential(nn.Linear(input_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim))
        self.temporal = nn.Conv1d(hidden_dim, hidden_dim, frame_kernel, padding=frame_kernel // 2)
        self.pool = nn.Linear(2 * hidden_dim, hidden_dim)
        self.context = ClipContext(hidden_dim, context_layers)
        self.head = nn.Linear(hidden_dim, embed_dim)
        self.input_dim = input_dim

    def forward(self, video: torch.Tensor, video_mask: torch.Tensor | None = None) -> torch.Tensor:
        check_video(video, self.input_dim, video_mask)
        b = video.shape[0]
        frames = self.frame(video)  # (B, n, t, h)
        x = rearrange(frames, "b n t h -> (b n) h t")
        x = torch.relu(self.temporal(x)) + x  # (B*n, h, t)
        pooled = torch.cat([x.mean(-1), x.amax(-1)], dim=-1)  # (B*n, 2h)
        clips = rearrange(self.pool(pooled), "(b n) h -> b n h", b=b)  # (B, n, h)
        return self.head(self.context(torch.relu(clips), video_mask))  # (B, n, d)


class FeatureProjection(nn.Module):
    """A projection head over precomputed features (S3D, CLIP, ...: one row per second).

    clip = mean of its clip_len rows; then LayerNorm -> Linear(D, h) -> ReLU -> context -> Linear(h, d).
    """

    def __init__(self, input_dim: int, embed_dim: int = 256, hidden_dim: int = 512, context_layers: int = 0):
        super().__init__()
        self.norm = nn.LayerNorm(input_dim)
        self.hidden = nn.Linear(input_dim, hidden_dim)
        self.context = ClipContext(hidden_dim, context_layers)
        self.head = nn.Linear(hidden_dim, embed_dim)
        self.input_dim = input_dim

    def forward(self, video: torch.Tensor, video_mask: torch.Tensor | None = None) -> torch.Tensor:
        check_video(video, self.input_dim, video_mask)
        clips = torch.relu(self.hidden(self.norm(video.mean(dim=2))))  # (B, n, h)
        return self.head(self.context(clips, video_mask))  # (B, n, d)


def check_video(video: torch.Tensor, input_dim: int, video_mask: torch.Tensor | None = None) -> None:
    if not isinstance(video, torch.Tensor) or video.dim() != 4 or video.shape[2] == 0:
        shape = tuple(video.shape) if isinstance(video, torch.Tensor) else type(video).__name__
        raise ValueError(f"video must be a tensor (B, n, clip_len, D) with clip_len >= 1, got {shape}")
    if video.shape[-1] != input_dim:
        raise ValueError(f"video has D = {video.shape[-1]} per row, the encoder expects {input_dim}")
    if video_mask is not None and (not isinstance(video_mask, torch.Tensor) or video_mask.shape != video.shape[:2]):
        shape = tuple(video_mask.shape) if isinstance(video_mask, torch.Tensor) else type(video_mask).__name__
        raise ValueError(f"video_mask must be (B, n) = {tuple(video.shape[:2])}, the video's first two sizes, got {shape}")

"""Encoders: video (frames or precomputed features -> clip embeddings with temporal context),
text (word ids -> sentence embeddings), and the DualEncoder every method trains.

>>> import torch
>>> from vtbench.models import build_model
>>> model = build_model("frames", input_dim=64, vocab_size=50, embed_dim=32)
>>> model.encode_video(torch.randn(2, 4, 3, 64)).shape, model.encode_text(torch.ones(2, 5, 6, dtype=torch.long)).shape
(torch.Size([2, 4, 32]), torch.Size([2, 5, 32]))
"""
from .dual import DualEncoder
from .registry import MODELS, build_model, model_parameters
from .text import FrozenSentenceEncoder, WordPoolTextEncoder
from .video import ClipContext, FeatureProjection, FrameVideoEncoder

__all__ = [
    "MODELS", "ClipContext", "DualEncoder", "FeatureProjection", "FrameVideoEncoder",
    "FrozenSentenceEncoder", "WordPoolTextEncoder", "build_model", "model_parameters",
]

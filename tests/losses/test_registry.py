"""Selecting objectives by name; bad input."""
from __future__ import annotations

import pytest
import torch

from vtbench.losses import LOSSES, build_loss, loss_parameters, sampler_for

from .conftest import make_batch


def test_every_method_is_registered_with_published_defaults():
    assert list(LOSSES) == ["infonce", "milnce", "vt-twins", "tempclr", "cali-nce"]
    assert loss_parameters("vt-twins")["gamma"] == 0.1 and loss_parameters("vt-twins")["skip_cost"] == 0.5
    assert loss_parameters("vt-twins")["tda"] is False and loss_parameters("vt-twins")["symmetric"] is False
    assert loss_parameters("tempclr")["alpha"] == 0.7 and loss_parameters("tempclr")["n_orders"] == 31
    assert loss_parameters("tempclr")["n_pairs"] == 5 and loss_parameters("infonce")["temperature"] == 1.0
    assert {sampler_for(name) for name in LOSSES} <= {"pairs", "milnce", "vt-twins", "tempclr"}


def test_unknown_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid: infonce, milnce, vt-twins, tempclr, cali-nce"):
        build_loss("clip")


def test_unknown_hyperparameter_lists_the_valid_ones():
    with pytest.raises(TypeError, match="valid: .*'gamma'"):
        build_loss("vt-twins", gama=0.1)


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_backpropagates_and_rejects_mismatched_shapes(name):
    video, text, batch = make_batch(B=3, n=5, m=5, d=8, holes=False)
    video, text = video.float().requires_grad_(), text.float().requires_grad_()
    loss = build_loss(name, **({"embed_dim": 8} if name == "cali-nce" else {}))
    out = loss(video, text, batch)
    out.loss.backward()
    assert torch.isfinite(out.loss) and video.grad.abs().sum() > 0 and text.grad.abs().sum() > 0
    assert all(isinstance(v, float) or (isinstance(v, torch.Tensor) and v.dim() == 0 and not v.requires_grad)
               for v in out.stats.values())  # numbers, read back by the trainer all at once
    with pytest.raises(ValueError, match="must share B and d"):
        loss(video[:, :, :4], text, batch)


def with_entry(batch, key, value):
    return {**{k: v for k, v in batch.items() if k != key}, **({} if value is None else {key: value})}


@pytest.mark.parametrize("name,key,value,match", [
    ("infonce", "pair", None, r"batch has no \['pair'\]"),
    ("tempclr", "pair", None, r"batch has no \['pair'\]"),
    ("cali-nce", "pair", None, r"batch has no \['pair'\]"),
    ("milnce", "candidates", None, r"batch has no \['candidates'\]"),
    ("infonce", "pair", torch.tensor([[0, 1, 2, 5]] * 3), r"batch\['pair'\] must hold clip indices in 0..3"),
    ("infonce", "pair", torch.tensor([[0, 1, 2, -2]] * 3), r"batch\['pair'\] must hold clip indices in 0..3"),
    ("infonce", "pair", torch.zeros(3, 4), r"batch\['pair'\] must hold clip indices as int64 or int32, got torch.float32"),
    ("tempclr", "pair", torch.zeros(3, 4, dtype=torch.int16), r"batch\['pair'\] must hold clip indices as int64 or int32"),
    ("milnce", "candidates", torch.zeros(3, 4, 2, dtype=torch.uint8),
     r"batch\['candidates'\] must hold caption indices as int64 or int32, got torch.uint8"),
    ("milnce", "candidates", torch.zeros(2, 4, 2, dtype=torch.long), r"batch\['candidates'\] has shape \(2, 4, 2\), expected \(3, 4, K\)"),
    ("milnce", "candidates", torch.zeros(3, 4, dtype=torch.long), r"batch\['candidates'\] has shape \(3, 4\), expected \(3, 4, K\)"),
    ("milnce", "candidates", torch.full((3, 4, 2), 4), r"batch\['candidates'\] must hold caption indices in 0..3"),
])
def test_bad_batches_are_errors_naming_the_key(name, key, value, match):
    video, text, batch = make_batch(B=3, n=4, m=4, d=5)
    loss = build_loss(name, **({"embed_dim": 5} if name == "cali-nce" else {})).double()
    with pytest.raises(ValueError, match=match):
        loss(video, text, with_entry(batch, key, value))


@pytest.mark.parametrize("name,hyperparameters,match", [
    ("vt-twins", {"skip_cost": float("nan")}, "skip_cost must be a finite number, got nan"),
    ("vt-twins", {"gamma": -1.0}, "gamma must be a finite number >= 0"),
    ("vt-twins", {"smooth_gamma": float("inf")}, "smooth_gamma must be a finite number >= 0"),
    ("vt-twins", {"temperature": 0.0}, "temperature must be a finite number > 0"),
    ("vt-twins", {"tda_radius": -1}, "tda_radius must be an int >= 0"),
    ("vt-twins", {"tda_sharpness": float("nan")}, "tda_sharpness must be a finite number >= 0"),
    ("tempclr", {"gamma": -1.0}, "gamma must be a finite number >= 0"),
    ("tempclr", {"clip_temperature": float("inf")}, "^clip_temperature must be a finite number > 0"),
    ("tempclr", {"align_temperature": float("inf")}, "^align_temperature must be a finite number > 0"),
    ("tempclr", {"alpha": 1.5}, "^alpha must be <= 1"),
    ("tempclr", {"alpha": -0.1}, "^alpha must be a finite number >= 0"),
    ("tempclr", {"n_pairs": 1}, "^n_pairs must be an int >= 2"),
    ("tempclr", {"n_orders": 2.0}, "^n_orders must be an int >= 1"),
    ("infonce", {"temperature": float("nan")}, "temperature must be a finite number > 0"),
    ("milnce", {"temperature": -1.0}, "temperature must be a finite number > 0"),
    ("cali-nce", {"embed_dim": 0}, "embed_dim must be an int >= 1"),
    ("cali-nce", {"head_hidden": True}, "head_hidden must be an int >= 1"),
    ("cali-nce", {"pc_temperature": 0.0}, "^pc_temperature must be a finite number > 0"),
    ("milnce", {"temperature": 0.005, "learn_temperature": True}, "^temperature must be >= 0.01 when learned"),
    ("cali-nce", {"pc_weight": float("nan")}, "pc_weight must be a finite number >= 0"),
])
def test_bad_hyperparameters_are_errors_at_construction(name, hyperparameters, match):
    with pytest.raises(ValueError, match=match):
        build_loss(name, **hyperparameters)


def test_cali_nce_embed_dim_must_match_the_embeddings():
    video, text, batch = make_batch(B=3, n=4, m=4, d=5)
    with pytest.raises(ValueError, match=r"CaliNCE\(embed_dim=7\) got embeddings of dim 5"):
        build_loss("cali-nce", embed_dim=7).double()(video, text, batch)
    plain = build_loss("cali-nce", embed_dim=7, correspondence=False, calibrate=False, predictive=False)
    assert torch.isfinite(plain(video, text, batch).loss)  # no head and no predictor: any dim

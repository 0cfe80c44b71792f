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
    assert all(isinstance(v, float) for v in out.stats.values())
    with pytest.raises(ValueError, match="must share B and d"):
        loss(video[:, :, :4], text, batch)

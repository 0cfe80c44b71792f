"""A loss of one's own: registered from Python or published as an entry point, checked for what a
config can carry, trained and resumed like the built-in ones."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from torch import nn

from vtbench.losses import LOSSES, LossOutput, hyperparameters, loss_types, register_loss
from vtbench.train import TrainConfig, load_run, make_config, train

PLUGIN = '''
import torch
from torch import nn
from vtbench.losses import LossOutput, VTTwins, register_loss  # noqa: F401 (a plugin may import vtbench whole)
from vtbench.train import make_config  # noqa: F401


class MarginNCE(nn.Module):
    """InfoNCE over each video's mean clip and mean caption, with a margin on the positives."""

    sampler = "pairs"

    def __init__(self, *, margin: float = 0, temperature: float = 1.0, symmetric: bool = True):
        super().__init__()
        self.margin, self.temperature, self.symmetric = margin, temperature, symmetric

    def forward(self, video_emb, text_emb, batch, gather=None):
        v = (video_emb * batch["video_mask"][..., None]).sum(1) / batch["video_mask"].sum(1, keepdim=True)
        t = (text_emb * batch["text_mask"][..., None]).sum(1) / batch["text_mask"].sum(1, keepdim=True)
        logits = (v @ t.T - self.margin * torch.eye(len(v))) / self.temperature
        target = torch.arange(len(v))
        loss = nn.functional.cross_entropy(logits, target)
        if self.symmetric:
            loss = (loss + nn.functional.cross_entropy(logits.T, target)) / 2
        return LossOutput(loss, {})
'''


@pytest.fixture
def margin_nce(tmp_path, monkeypatch):
    (tmp_path / "plugin").mkdir()
    (tmp_path / "plugin" / "margin_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    import margin_plugin

    yield margin_plugin.MarginNCE
    LOSSES.pop("margin-nce", None)


def test_a_registered_loss_trains_takes_its_annotated_types_and_resumes(margin_nce, tmp_path):
    register_loss("margin-nce", margin_nce)
    assert loss_types("margin-nce") == {"margin": float, "temperature": float, "symmetric": bool}
    config = make_config("margin-nce", "quick", ["margin=0.5", "steps=4", "batch_size=4", "save_every=2"],
                         progress=False, out=str(tmp_path / "run"))
    assert config.loss_args == {"margin": 0.5, "temperature": 1.0, "symmetric": True}  # 0.5: the annotation, not int
    assert TrainConfig.from_dict(config.to_dict()) == config  # as --resume and eval read config.json back
    run = load_run(train(config))
    assert run.step == 4 and run.config.loss_args["margin"] == 0.5
    assert load_run(train(config.replace(steps=6), resume=True)).step == 6


class _Base(nn.Module):
    sampler = "pairs"

    def forward(self, video_emb, text_emb, batch, gather=None):
        return LossOutput(video_emb.sum() * 0, {})


def _loss(init):
    return type("Custom", (_Base,), {"__init__": init})


@pytest.mark.parametrize("cls, match", [
    (type("NoSampler", (nn.Module,), {}), "needs a class attribute sampler naming a batch sampler, one of"),
    (type("BadSampler", (_Base,), {"sampler": "sequences"}), "got 'sequences'"),
    (_loss(lambda self, margin=0.1: None), "parameter 'margin' must be keyword-only"),
    (_loss(lambda self, *, margin: None), "parameter 'margin' needs a default"),
    (_loss(lambda self, *, margin=None: None), "parameter 'margin' has the default None: a config carries bool, int"),
    (_loss(lambda self, *, weights=(0.5, 0.5): None), r"parameter 'weights' has the default \(0.5, 0.5\)"),
    (int, "a loss must be an nn.Module class, got <class 'int'>"),
])
def test_a_loss_a_config_could_not_carry_is_refused_when_registered(cls, match):
    with pytest.raises(ValueError, match=match):
        register_loss("custom", cls)
    assert "custom" not in LOSSES


def test_a_hyperparameter_named_like_a_config_field_must_have_its_type():
    class Steps(_Base):
        def __init__(self, *, steps: float = 1.0, embed_dim: int = 64):  # embed_dim: shared on purpose
            super().__init__()

    register_loss("steps-loss", Steps)
    try:
        with pytest.raises(ValueError, match="hyperparameter 'steps' \\(float\\) shares its name with a config field "
                                             "of type int, whose value it would take"):
            make_config("steps-loss", "quick")
    finally:
        LOSSES.pop("steps-loss")


def test_an_annotation_that_does_not_resolve_leaves_the_others_in_force():
    namespace = {}
    exec(textwrap.dedent('''
        from __future__ import annotations
        import typing
        if typing.TYPE_CHECKING:
            from somewhere import Mode
        def init(self, *, margin: float = 0, mode: Mode = "a", flag: bool = 0):
            pass
    '''), namespace)
    with pytest.raises(ValueError, match="parameter 'flag' is annotated bool but its default 0 is of type int"):
        hyperparameters(_loss(namespace["init"]))
    namespace["init"].__annotations__["flag"] = "bool"
    namespace["init"].__kwdefaults__["flag"] = False
    assert {k: kind for k, (_, kind) in hyperparameters(_loss(namespace["init"])).items()} == {
        "margin": float, "mode": str, "flag": bool}


def test_a_name_taken_by_another_loss_is_refused():
    with pytest.raises(ValueError, match="a loss named 'infonce' is registered already"):
        register_loss("infonce", _Base)


def _distribution(folder, name: str, entry: str):
    """A minimal installed distribution on ``folder`` that publishes ``entry`` as a vtbench loss."""
    info = folder / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[vtbench.losses]\n{entry}\n")


def test_an_entry_point_publishes_a_loss_to_the_command_line(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "margin_plugin.py").write_text(PLUGIN)
    _distribution(site, "margin_plugin", "margin-nce = margin_plugin:MarginNCE")
    _distribution(site, "broken_plugin", "broken = no_such_module:Loss")
    (site / "exiting_plugin.py").write_text("raise SystemExit(3)\n")
    _distribution(site, "exiting_plugin", "exiting = exiting_plugin:Loss")
    _distribution(site, "shadowing_plugin", "infonce = margin_plugin:MarginNCE")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "vtbench", "train", "--method", "margin-nce", "--set", "steps=2",
                           "--set", "batch_size=4", "--set", "margin=0.25", "--set", "progress=false",
                           "--out", str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "the loss 'broken' of entry point 'no_such_module:Loss' was not registered" in done.stderr
    assert "the loss 'exiting' of entry point 'exiting_plugin:Loss' was not registered: SystemExit(3)" in done.stderr
    assert "the loss 'infonce' of entry point 'margin_plugin:MarginNCE' was not registered: a loss named 'infonce' " \
           "is registered already (InfoNCE)" in done.stderr
    # the plugin imported before vtbench (it imports vtbench itself, whole): still registered on first use
    first = "import margin_plugin\nfrom vtbench.losses import LOSSES\nprint(LOSSES['margin-nce'].__name__)"
    shown = subprocess.run([sys.executable, "-W", "ignore", "-c", first], env=env, capture_output=True, text=True,
                           timeout=300)
    assert shown.stdout.split() == ["MarginNCE"], shown.stderr
    check = textwrap.dedent(f"""
        from vtbench.train import load_run
        run = load_run({str(tmp_path / 'run')!r})
        print(run.config.method, run.config.loss_args["margin"], run.step)
    """)
    shown = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True, timeout=300)
    assert shown.stdout.split() == ["margin-nce", "0.25", "2"], shown.stderr


def test_the_built_in_losses_declare_types_a_config_carries():
    for name in LOSSES:
        assert set(loss_types(name).values()) <= {bool, int, float, str}

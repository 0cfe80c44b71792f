"""The flat config: presets, key=value overrides, errors that list what is valid."""
from __future__ import annotations

import pytest

from vtbench.losses import LOSSES
from vtbench.train import TrainConfig, make_config, parse_overrides, valid_keys
from vtbench.train.cli import main


@pytest.mark.parametrize("method", list(LOSSES))
@pytest.mark.parametrize("preset", ["quick", "full"])
def test_every_method_has_both_presets(method, preset):
    cfg = make_config(method, preset)
    assert cfg.method == method and cfg.steps > 0
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg  # config.json round-trips


def test_overrides_reach_fields_and_loss_hyperparameters_with_types():
    cfg = make_config("tempclr", "quick", ["alpha=0.12", "aligner=otam", "steps=7", "jitter=true", "lr=1e-4"])
    assert (cfg.loss_args["alpha"], cfg.loss_args["aligner"], cfg.steps, cfg.jitter, cfg.lr) == (0.12, "otam", 7, True, 1e-4)
    assert cfg.to_dict()["alpha"] == 0.12  # flat


def test_unknown_key_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown config key\(s\) \['gama'\].*valid: .*steps.*gamma"):
        make_config("vt-twins", "quick", ["gama=0.1"])
    with pytest.raises(ValueError, match="alpha"):  # TempCLR's, not VT-TWINS'
        make_config("vt-twins", "quick", ["alpha=0.5"])
    assert "gamma" in valid_keys("vt-twins") and "alpha" not in valid_keys("vt-twins")


def test_wrong_types_and_ranges_are_rejected():
    with pytest.raises(ValueError, match="'steps' expects int, got 'many'"):
        make_config("infonce", "quick", ["steps=many"])
    with pytest.raises(ValueError, match="'symmetric' expects bool"):
        make_config("vt-twins", "quick", ["symmetric=maybe"])
    with pytest.raises(ValueError, match="out of range"):
        make_config("infonce", "quick", ["batch_size=0"])
    with pytest.raises(ValueError, match=r"\['steps'\] out of range \(steps and sizes >= 1"):
        make_config("infonce", "quick", ["steps=0"])  # a run of 0 steps writes no checkpoint to load
    with pytest.raises(ValueError, match=r"\['seed', 'data_seed'\] out of range"):
        make_config("infonce", "quick", ["seed=-1", "data_seed=-2"])
    with pytest.raises(ValueError, match=r"\['lr', 'weight_decay'\] out of range .*rates finite and >= 0"):
        make_config("infonce", "quick", ["lr=inf", "weight_decay=inf"])
    with pytest.raises(ValueError, match="warmup_steps=10 must be below steps=10"):
        make_config("infonce", "quick", ["steps=10", "warmup_steps=10"])
    with pytest.raises(ValueError, match="device must be auto, cpu, cuda or cuda:N, got 'tpu'"):
        make_config("infonce", "quick", ["device=tpu"])
    with pytest.raises(ValueError, match="shuffle='segments' needs each clip's ground-truth segment"):
        make_config("tempclr", "quick", ["shuffle=segments"])  # the training batches carry none
    with pytest.raises(ValueError, match="expects int"):
        TrainConfig(method="infonce", steps=1.5)
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["steps"])


def test_unknown_method_and_preset_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid: infonce, milnce, vt-twins, tempclr, cali-nce"):
        make_config("clip")
    with pytest.raises(ValueError, match="valid: quick, full"):
        make_config("infonce", "medium")


def test_cli_reports_bad_input_with_the_valid_choices(capsys, tmp_path):
    assert main(["--method", "clip", "--out", str(tmp_path / "x")]) == 2
    assert "valid: infonce, milnce, vt-twins, tempclr, cali-nce" in capsys.readouterr().err
    assert main(["--method", "infonce", "--set", "colour=red", "--out", str(tmp_path / "x")]) == 2
    assert "valid: " in capsys.readouterr().err


def test_a_resume_reports_a_damaged_config_naming_it(capsys, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    for text, what in (("{'steps': 3}", "is not a readable run config (JSONDecodeError"), ("[1, 2]", "holds a JSON list")):
        (run / "config.json").write_text(text)
        assert main(["--method", "infonce", "--out", str(run), "--resume"]) == 2
        err = capsys.readouterr().err
        assert str(run / "config.json") in err and what in err, err


def test_the_cli_takes_each_key_once_and_resumes_only_with_what_the_run_had(capsys, tmp_path):
    run = str(tmp_path / "run")
    for option, flag in ((["--set", "data=youcook2"], "--data"), (["--set", "out=elsewhere"], "--out"),
                         (["--set", "method=tempclr"], "--method"), (["--set", "seed=2"], "--seed")):
        assert main(["--method", "infonce", "--out", run, *option]) == 2
        assert f"give it as {flag}" in capsys.readouterr().err
    tiny = ["--method", "infonce", "--out", run, "--set", "steps=1", "--set", "batch_size=4", "--set", "progress=false"]
    assert main(tiny) == 0
    capsys.readouterr()
    for option, message in ((["--config", "full", "--set", "warmup_steps=0"], "cannot resume"), (["--data", "youcook2"], "data='narrated-digits' -> 'youcook2'"),
                            (["--set", "loss_args=1"], "unknown config key(s) ['loss_args']")):
        assert main([*tiny, "--resume", *option]) == 2
        assert message in capsys.readouterr().err
    assert main([*tiny, "--set", "steps=2", "--resume", "--config", "quick", "--data", "narrated-digits"]) == 0
    (tmp_path / "file").write_text("")
    assert main(["--method", "infonce", "--out", str(tmp_path / "file" / "run"), "--set", "steps=1"]) == 2
    assert "error: " in capsys.readouterr().err

"""The training loop from Python: runs, checkpoints, metrics and every bad input of issue 3."""
from __future__ import annotations

import json

import pytest
import torch

from vtbench.losses import LOSSES, InfoNCE, LossOutput
from vtbench.train import CheckpointError, TrainingDiverged, load_run, train
from vtbench.train import batches, checkpoint
from vtbench.train.loop import Interval, Metrics, lr_factor

from ..readbacks import ReadBacks


@pytest.mark.parametrize("method", list(LOSSES))
def test_every_method_trains_and_loads_back(tiny, method):
    run_dir = train(tiny(method))
    assert {"checkpoint.pt", "config.json", "metrics.jsonl"} <= {p.name for p in run_dir.iterdir()}
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4, 6] and all(r["loss"] == r["loss"] for r in lines)
    assert json.loads((run_dir / "config.json").read_text())["method"] == method
    run = load_run(run_dir)
    assert run.step == 6 and run.config.method == method and not run.model.training
    ids = run.tokenizer.encode(["now we write a three"], 16)[None]
    assert run.model.encode_text(ids).shape == (1, 1, run.config.embed_dim)


def test_each_line_logs_the_rate_its_last_step_used(tiny):
    config = tiny(warmup_steps=2)
    lines = [json.loads(line) for line in (train(config) / "metrics.jsonl").read_text().splitlines()]
    factor = lr_factor(config)
    assert [r["lr"] for r in lines] == pytest.approx([config.lr * factor(s - 1) for s in (2, 4, 6)])
    assert lines[-1]["lr"] > 0  # the last step's cosine rate, not the 0 the schedule reaches after it


def test_resume_keeps_only_whole_metrics_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"st')  # the checkpoint counts 2 lines; the second was cut short
    with pytest.warns(UserWarning, match="1 whole lines where the checkpoint counts 2"):
        metrics = Metrics(path, active=True, keep=2)
    metrics.append({"step": 3})
    assert path.read_text() == '{"step": 1}\n{"step": 3}\n' and metrics.lines == 2


def test_a_finished_run_is_not_overwritten(tiny):
    train(tiny())
    with pytest.raises(FileExistsError, match="--resume"):
        train(tiny())


def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tiny, monkeypatch):
    calls = {"n": 0}
    forward = InfoNCE.forward

    def poisoned(self, *args, **kwargs):
        calls["n"] += 1
        out = forward(self, *args, **kwargs)
        return LossOutput(out.loss * float("nan"), out.stats) if calls["n"] == 5 else out

    monkeypatch.setattr(InfoNCE, "forward", poisoned)
    config = tiny()
    with pytest.raises(TrainingDiverged, match=r"at step 5.*last good checkpoint.*\(step 3\)"):
        train(config)
    assert checkpoint.load(config.out)["step"] == 3


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # a damaged protocol byte
def test_corrupt_and_foreign_checkpoints_are_clear_errors(tiny, tmp_path):
    run_dir = train(tiny())
    with pytest.raises(CheckpointError, match="of method 'infonce', not 'vt-twins'"):
        load_run(run_dir, method="vt-twins")
    with pytest.raises(CheckpointError, match="of method 'infonce', not 'milnce'"):
        train(tiny("milnce", out=str(run_dir)), resume=True)
    (run_dir / "checkpoint.pt").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_run(run_dir)
    torch.save({"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "method": "infonce"}, tmp_path / "ok.pt")
    good = (tmp_path / "ok.pt").read_bytes()
    for at in range(0, 160):  # damaged zip headers: each a CheckpointError (KeyError, TypeError, ... inside)
        damaged = bytearray(good)
        damaged[at] ^= 0xFF
        (tmp_path / "damaged.pt").write_bytes(bytes(damaged))
        try:
            checkpoint.load(tmp_path / "damaged.pt")
        except CheckpointError:
            pass
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a vtbench run"):
        load_run(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_run(tmp_path / "missing")


def test_resume_refuses_a_different_config(tiny):
    run_dir = train(tiny(steps=3))
    with pytest.raises(ValueError, match="lr=0.002 -> 0.1"):
        train(tiny(steps=6, lr=0.1), resume=True)
    train(tiny(steps=6), resume=True)  # more steps is allowed
    assert load_run(run_dir).step == 6


def test_resuming_with_more_steps_takes_the_new_schedules_rate_at_once(tiny):
    run_dir = train(tiny(steps=2, log_every=1))
    config = tiny(steps=4, log_every=1)
    train(config, resume=True)
    rates = [json.loads(line)["lr"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    before, after = lr_factor(tiny(steps=2)), lr_factor(config)
    # the 2-step schedule ends at 0 after its last step: the first resumed step must not take that
    assert rates == pytest.approx([config.lr * f for f in (before(0), before(1), after(2), after(3))]) and rates[2] > 0


def test_a_run_cannot_be_shortened_and_a_finished_one_is_left_as_it_is(tiny, capsys):
    run_dir = train(tiny(steps=3))
    saved = (run_dir / "config.json").read_text()
    with pytest.raises(ValueError, match=r"to steps=1: its checkpoint is at step 3 \(a run cannot be shortened\)"):
        train(tiny(steps=1), resume=True)
    train(tiny(steps=3, save_every=1), resume=True)  # nothing to do: no step, no rewrite
    assert "already trained for steps=3" in capsys.readouterr().out
    assert (run_dir / "config.json").read_text() == saved and load_run(run_dir).step == 3


def test_empty_dataset_is_a_clear_error(tiny, monkeypatch):
    monkeypatch.setattr(batches, "build_dataset", lambda *a, **k: [])
    with pytest.raises(ValueError, match="train split is empty"):
        train(tiny())


def test_a_dataset_without_usable_videos_is_a_clear_error(tiny):
    with pytest.raises(ValueError, match="no video .* gives what 'tempclr' needs"):
        train(tiny("tempclr", n_clips=40, n_pairs=40))


def test_a_batch_larger_than_the_usable_videos_is_a_clear_error(tiny):
    """Drawn with replacement, a video would sit in its own batch twice, each copy the other's negative."""
    with pytest.raises(ValueError, match=r"batch_size=400 exceeds the \d+ videos .* that give what 'tempclr' needs"):
        train(tiny("tempclr", batch_size=400))


def test_crosstask_takes_an_optional_features_folder(tiny):
    config = tiny(data="crosstask", data_path="/data/crosstask")
    assert batches.dataset_kwargs(config) == {"root": "/data/crosstask"}
    assert batches.dataset_kwargs(config.replace(features_path="/f")) == {"root": "/data/crosstask", "features": "/f"}


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    target = tmp_path / "checkpoint.pt"
    target.write_bytes(b"previous")

    def fail(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        checkpoint.atomic_write(target, fail)
    assert target.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_trains_on_precomputed_features_in_the_howto100m_format(tiny, tmp_path):
    import numpy as np

    features = tmp_path / "features"
    features.mkdir()
    captions = {}
    rng = np.random.default_rng(0)
    for v in range(6):
        np.save(features / f"vid{v}.npy", rng.standard_normal((40, 32)).astype(np.float32))
        captions[f"vid{v}"] = {"start": [0, 8, 16, 24, 30], "end": [6, 14, 22, 29, 38],
                               "text": ["cut the onion", "fry it", "add salt", "stir well", "serve hot"]}
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    config = tiny("vt-twins", data="howto100m", data_path=str(tmp_path / "captions.json"),
                  features_path=str(features), n_clips=4)
    run = load_run(train(config))
    assert type(run.model.video_encoder).__name__ == "FeatureProjection"
    assert run.model.encode_video(torch.randn(1, 4, 4, 32)).shape == (1, 4, run.config.embed_dim)
    with pytest.raises(ValueError, match="data_path"):
        train(tiny("vt-twins", data="howto100m", out=str(tmp_path / "again")))


def test_interval_means_each_stat_over_the_steps_that_report_it():
    interval = Interval()
    interval.add({"loss": 1.0, "align": 2.0, "align_skipped": 0.0})
    interval.add({"loss": 3.0, "align_skipped": 1.0})  # TempCLR left L_align out of this step
    resumed = Interval(interval.state())  # as a checkpoint restores it
    resumed.add({"loss": 2.0, "align": 4.0, "align_skipped": 0.0})
    assert resumed.flush() == {"loss": 2.0, "align": 3.0, "align_skipped": 1.0}
    assert resumed.flush() == {}


@pytest.mark.parametrize("check_values", [True, False])
@pytest.mark.parametrize("method", list(LOSSES))
def test_a_step_reads_the_device_back_once_besides_input_checks(tiny, method, check_values, monkeypatch):
    """On a GPU every read-back (item, float, tolist, bool, equal) waits for the queue to drain: the
    trainer reads the loss, the stats and the gradient norm together, once per step; the losses
    keep their stats as tensors. Only input validation (align/checks.py, the index checks in
    losses/base.py, the word ids in models/text.py; none with check_values=False) and TempCLR's
    "did any video qualify" read back elsewhere (the optimiser's reads are of its CPU step counters,
    TempCLR's orders.py of permutations drawn on the CPU)."""
    from vtbench.train import loop

    update = loop._update

    counter = ReadBacks()
    reads = counter.where

    def counted(*args, **kwargs):
        with counter:
            return update(*args, **kwargs)

    monkeypatch.setattr(loop, "_update", counted)
    train(tiny(method, steps=2, check_values=check_values))
    reads.pop("torch.optim", None)
    assert reads.pop("vtbench/train/loop.py") == 2, reads  # once per step
    allowed = {"vtbench/align/backends/torch_ref.py"}  # the fallback backend's per-diagonal skip, on the CPU only
    if check_values:
        allowed |= {"vtbench/align/checks.py", "vtbench/align/variants.py", "vtbench/losses/base.py",
                    "vtbench/models/text.py"}
    allowed |= {"vtbench/losses/tempclr.py", "vtbench/losses/orders.py"} if method == "tempclr" else set()
    assert set(reads) <= allowed, reads
    assert ("vtbench/align/checks.py" in reads) == check_values, reads  # the checks read back only when on

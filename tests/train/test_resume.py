"""SIGKILL in the middle of training, then --resume: the same final weights and metrics as a run
that was never interrupted (CPU, deterministic)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from vtbench.train import checkpoint
from vtbench.train.cli import main

TIMING = {"elapsed_s", "steps_per_s"}
ARGS = ["--method", "tempclr", "--set", "steps=240", "--set", "save_every=20", "--set", "log_every=10",
        "--set", "batch_size=8", "--set", "progress=false", "--seed", "3"]


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def kill_after_first_checkpoint(run_dir: Path) -> int:
    """Start a run, SIGKILL it once a checkpoint exists and a metrics line was logged after it."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "vtbench", "train", *ARGS, "--out", str(run_dir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 120
    while not (run_dir / checkpoint.CHECKPOINT).exists() or lines(run_dir / checkpoint.METRICS) < 3:
        assert proc.poll() is None, "the run ended before writing a checkpoint"
        assert time.time() < deadline, "no checkpoint within 120 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return checkpoint.load(run_dir)["step"]


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path):
    killed_at = kill_after_first_checkpoint(tmp_path / "killed")
    checkpoint_s = checkpoint.load(tmp_path / "killed")["elapsed_s"]
    assert killed_at < 240, "the run finished before it could be killed"
    assert lines(tmp_path / "killed" / checkpoint.METRICS) > killed_at // 10  # lines the resume must drop
    assert main([*ARGS, "--out", str(tmp_path / "killed"), "--resume"]) == 0
    assert main([*ARGS, "--out", str(tmp_path / "straight")]) == 0
    a, b = checkpoint.load(tmp_path / "killed"), checkpoint.load(tmp_path / "straight")
    assert a["step"] == b["step"] == 240
    for key in b["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    assert metrics(tmp_path / "killed") == metrics(tmp_path / "straight")
    elapsed = [json.loads(line)["elapsed_s"] for line in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert elapsed == sorted(elapsed)  # the resumed steps add to the time of those before, not restart from 0
    assert a["elapsed_s"] >= elapsed[-1] > checkpoint_s


def test_checkpoints_leave_the_gpu_rngs_alone(monkeypatch):
    """The trainer reseeds CUDA at every step, so a checkpoint neither saves the GPUs' RNG states
    nor restores them: a run saved on 8 GPUs resumes on 1 (restoring 8 states there fails)."""
    def refuse(*args):
        raise AssertionError("the CUDA RNG was touched")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", refuse)
    monkeypatch.setattr(torch.cuda, "set_rng_state_all", refuse)
    state = checkpoint.rng_state()
    assert set(state) == {"torch", "numpy", "python"}
    expected = torch.rand(3)
    checkpoint.set_rng_state({**state, "cuda": [torch.zeros(16, dtype=torch.uint8)] * 8})  # an older checkpoint's
    assert torch.equal(torch.rand(3), expected)

"""The training loop: ``train(config) -> run folder`` and ``load_run(folder) -> Run``.

Reads top to bottom: set up processes, data, model, loss and optimiser; restore a checkpoint when
resuming; then for each step: the step's batch, the loss (negatives gathered over processes), a
finiteness check, the update, metrics every ``log_every`` steps and an atomic checkpoint every
``save_every`` steps and at the end.
"""
from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ..align import value_checks
from ..io import atomic_write
from ..data import Tokenizer
from ..losses import build_loss
from ..models import build_model, model_parameters
from . import checkpoint, distributed
from .batches import batch_for_step, load_training_data, to_device
from .config import RESUMABLE, TrainConfig


class TrainingDiverged(FloatingPointError):
    """The loss (or a gradient) stopped being finite; the last good checkpoint is kept."""


@dataclass
class Run:
    """A trained run: the model (CPU, eval mode), its config and its tokenizer."""

    model: nn.Module
    config: TrainConfig
    tokenizer: Tokenizer
    step: int = 0
    path: Path | None = None


class Objective(nn.Module):
    """Model and loss in one module, so that DistributedDataParallel sees every parameter."""

    def __init__(self, model: nn.Module, loss: nn.Module):
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, batch: dict, gather) -> tuple[torch.Tensor, dict]:
        video_emb, text_emb = self.model(batch)  # (B, n, d), (B, m, d)
        out = self.loss(video_emb, text_emb, batch, gather=gather)
        return out.loss, out.stats


def model_name(config: TrainConfig) -> str:
    if config.model != "auto":
        return config.model
    return "frames" if config.data == "narrated-digits" else "features"


def build_model_for(config: TrainConfig, tokenizer: Tokenizer, input_dim: int) -> nn.Module:
    name = model_name(config)
    values = {"input_dim": input_dim, "vocab_size": len(tokenizer), "vocab": tokenizer.vocab,
              **{k: getattr(config, k) for k in ("embed_dim", "hidden_dim", "word_dim", "context_layers")}}
    return build_model(name, **{k: values[k] for k in model_parameters(name) if k in values})


def lr_factor(config: TrainConfig):
    """Linear warmup, then constant or cosine decay to 0 over the remaining steps."""
    def factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        if config.schedule == "constant":
            return 1.0
        rest = max(1, config.steps - config.warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - config.warmup_steps) / rest)))
    return factor


def step_seed(config: TrainConfig, step: int, rank: int) -> int:
    """The torch seed of a step (the losses' random shuffles and augmentations): resumable."""
    return (config.seed * 1_000_003 + step * 1009 + rank) % (2**63)


def train(config: TrainConfig, resume: bool = False) -> Path:
    """Train ``config`` and return its run folder (``config.out``); ``resume=True`` continues
    from the run's checkpoint. Raises TrainingDiverged on a non-finite loss or gradient."""
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    ctx = distributed.setup(config.device)  # under torchrun: the process group, kept for the process's life
    with value_checks(config.check_values):  # off: no read-back but the step's own (see _update)
        return _train(config, resume, ctx)


def _train(config: TrainConfig, resume: bool, ctx: distributed.Context) -> Path:
    run_dir = Path(config.out)
    state = _resume_state(config, run_dir) if resume else _fresh(run_dir)
    if state is not None:
        config = TrainConfig.from_dict({**state["config"], **{k: getattr(config, k) for k in RESUMABLE}})
    tokenizer = Tokenizer.from_state_dict(state["tokenizer"]) if state else None
    data = load_training_data(config, tokenizer)
    torch.manual_seed(config.seed)
    model = build_model_for(config, data.tokenizer, data.input_dim)
    loss = build_loss(config.method, **config.loss_kwargs())
    objective = Objective(model, loss).to(ctx.device)
    optimizer = torch.optim.AdamW(objective.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(config))
    start, trained_s = 0, 0.0  # trained_s: the wall time of the steps before ``start`` (earlier sessions)
    if state is not None:
        model.load_state_dict(state["model"])
        loss.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        checkpoint.set_rng_state(state["rng"])
        start, trained_s = state["step"], float(state.get("elapsed_s", 0.0))
        if start > config.steps:
            raise ValueError(f"cannot resume {run_dir} to steps={config.steps}: its checkpoint is at step {start} "
                             "(a run cannot be shortened)")
        if start == config.steps:
            if ctx.is_main:
                print(f"{run_dir}: already trained for steps={start}")
            return run_dir
        factor = lr_factor(config)  # steps may have changed: this step's rate under the schedule it now ends with
        for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
            group["lr"] = base * factor(start)
    metrics = Metrics(run_dir / checkpoint.METRICS, ctx.is_main, keep=state["metrics_lines"] if state else 0)
    if ctx.is_main and len(data.eligible) < len(data.dataset):
        left_out = len(data.dataset) - len(data.eligible)
        print(f"{config.method}: {left_out} of {len(data.dataset)} train videos cannot give a {data.sampler!r} "
              f"sample ({data.options}) and are left out")
    engine = distributed.wrap(objective, ctx)
    interval = Interval(state["interval"] if state else None)

    def save(step: int) -> None:
        if ctx.is_main:
            checkpoint.save(run_dir, step=step, config=config.to_dict(), model=model, loss=loss, optimizer=optimizer,
                            scheduler=scheduler, tokenizer=data.tokenizer, metrics_lines=metrics.lines,
                            model_args={"input_dim": data.input_dim}, interval=interval.state(),
                            elapsed_s=trained_s + time.perf_counter() - began)
        distributed.barrier(ctx)

    if ctx.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(run_dir / checkpoint.CONFIG, lambda f: f.write(config.to_json().encode()))
    bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc=f"{config.method}",
               disable=not (ctx.is_main and config.progress), dynamic_ncols=True)
    began = time.perf_counter()
    for step in bar:
        torch.manual_seed(step_seed(config, step, ctx.rank))
        batch = to_device(batch_for_step(data, config, step, ctx.rank, ctx.world_size), ctx.device)
        value, stats, grad_norm = _update(engine, objective, optimizer, batch, config, ctx, step, run_dir)
        interval.add({"loss": value, **stats, "grad_norm": grad_norm})
        lr = optimizer.param_groups[0]["lr"]  # the rate this step used (logged: the interval's last step's)
        scheduler.step()
        bar.set_postfix(loss=f"{value:.4f}", refresh=False)  # drawn at tqdm's own pace
        done = step + 1
        if done % config.log_every == 0 or done == config.steps:
            elapsed = time.perf_counter() - began  # this session's; elapsed_s counts the whole run's steps
            metrics.append({"step": done, **interval.flush(), "lr": lr,
                            "elapsed_s": trained_s + elapsed, "steps_per_s": (done - start) / elapsed})
        if done % config.save_every == 0 or done == config.steps:
            save(done)
    return run_dir


def _update(engine, objective, optimizer, batch, config, ctx, step, run_dir) -> tuple[float, dict, float]:
    """One optimiser step; returns the global loss, the summed stats and the gradient norm.

    The loss, the stats and the gradient norm are read back together, once, after the backward
    (on a GPU a read-back waits for every kernel queued before it; one per step keeps the queue
    full). A non-finite loss or gradient stops training before the optimiser steps."""
    optimizer.zero_grad(set_to_none=True)
    loss, stats = engine(batch, ctx.gather)
    keys = sorted(stats)  # the same on every process: the losses' stats do not depend on the data
    local = torch.stack([loss.detach().to(torch.float64)] + [
        stats[k].detach().to(torch.float64).reshape(()) if isinstance(stats[k], torch.Tensor)
        else torch.full((), stats[k], dtype=torch.float64, device=ctx.device) for k in keys])  # a fill, not a copy
    totals = distributed.all_reduce_sum(local, ctx)  # the global loss and stats, the same on every process
    (loss * ctx.world_size).backward()  # DDP averages gradients; the shares add up to the global loss
    max_norm = config.grad_clip if config.grad_clip > 0 else float("inf")
    grad_norm = torch.nn.utils.clip_grad_norm_(objective.parameters(), max_norm)
    value, *summed, grad_norm = torch.cat([totals, grad_norm.detach().to(totals).reshape(1)]).tolist()
    if not math.isfinite(value):
        raise TrainingDiverged(f"the loss is {value} at step {step + 1}: training stopped. "
                               f"The last good checkpoint is kept: {_last_good(run_dir)}")
    if not math.isfinite(grad_norm):  # gradients are all-reduced: the same on every process
        raise TrainingDiverged(f"a gradient is not finite at step {step + 1}: training stopped. "
                               f"The last good checkpoint is kept: {_last_good(run_dir)}")
    optimizer.step()
    return value, dict(zip(keys, summed)), grad_norm


def _last_good(run_dir: Path) -> str:
    path = run_dir / checkpoint.CHECKPOINT
    try:
        return f"{path} (step {checkpoint.load(path)['step']})"
    except checkpoint.CheckpointError:
        return "none (no checkpoint was written before this step)"


def _fresh(run_dir: Path) -> None:
    if (run_dir / checkpoint.CHECKPOINT).exists():
        raise FileExistsError(f"{run_dir} already holds a run: pass --resume to continue it, or choose another --out")
    return None


def _resume_state(config: TrainConfig, run_dir: Path) -> dict | None:
    if not (run_dir / checkpoint.CHECKPOINT).exists():
        print(f"{run_dir}: no checkpoint to resume from; starting from scratch")
        return None
    state = checkpoint.load(run_dir, method=config.method)
    saved, given = state["config"], config.to_dict()
    changed = sorted(k for k in given if k not in RESUMABLE and k in saved and saved[k] != given[k])
    if changed:
        diff = ", ".join(f"{k}={saved[k]!r} -> {given[k]!r}" for k in changed)
        raise ValueError(f"cannot resume {run_dir} with a different config: {diff} (only {', '.join(RESUMABLE)} may change)")
    return state


class Interval:
    """Stats over the steps since the last log line: each key's mean over the steps that reported
    it (TempCLR reports ``align`` only on steps that have it), except ``*_skipped`` counts (sums)."""

    def __init__(self, state: dict | None = None):
        self.totals: dict[str, float] = dict(state["totals"]) if state else {}
        self.counts: dict[str, int] = {}
        if state:  # checkpoints written before per-key counts hold one "steps" count for every key
            self.counts = dict(state["counts"]) if "counts" in state else dict.fromkeys(self.totals, state["steps"])

    def state(self) -> dict:
        return {"totals": dict(self.totals), "counts": dict(self.counts)}

    def add(self, stats: dict[str, float]) -> None:
        for k, v in stats.items():
            self.totals[k] = self.totals.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1

    def flush(self) -> dict[str, float]:
        out = {k: v if k.endswith("_skipped") else v / self.counts[k] for k, v in self.totals.items()}
        self.totals, self.counts = {}, {}
        return out


class Metrics:
    """metrics.jsonl, one JSON object per logged step; on resume, lines written after the
    checkpoint (by a run killed later) are dropped so that the file matches an uninterrupted run.
    Each line is on disk (fsync) before the checkpoint that counts it is written."""

    def __init__(self, path: Path, active: bool, keep: int = 0):
        self.path, self.active, self.lines = path, active, keep
        if active and path.exists():
            kept = []
            for line in path.read_text().splitlines()[:keep]:
                try:
                    json.loads(line)
                except json.JSONDecodeError:
                    break  # a line cut short: nothing after it can be trusted
                kept.append(line)
            if len(kept) < keep:
                warnings.warn(f"{path}: {len(kept)} whole lines where the checkpoint counts {keep}; the "
                              f"learning curve lacks the rest")
            atomic_write(path, lambda f: f.write("".join(line + "\n" for line in kept).encode()))
            self.lines = len(kept)

    def append(self, record: dict) -> None:
        if self.active:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
            self.lines += 1


def load_run(path, method: str | None = None) -> Run:
    """A trained run from its folder (or checkpoint file): the model on the CPU in eval mode, its
    config and tokenizer. CheckpointError if the file is corrupt or (with ``method``) another method's."""
    state = checkpoint.load(Path(path), method)
    config = TrainConfig.from_dict(state["config"])
    tokenizer = Tokenizer.from_state_dict(state["tokenizer"])
    model = build_model_for(config, tokenizer, state["model_args"]["input_dim"])
    model.load_state_dict(state["model"])
    return Run(model.eval(), config, tokenizer, state["step"], Path(path))

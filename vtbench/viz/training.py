"""Figures of training runs: learning curves from ``metrics.jsonl`` and metric tables.

Reads run folders only (docs/ARCHITECTURE.md section 7); never imports the trainer.
"""
from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt

from ..eval.suite import is_percent

#: Logged keys that are not loss statistics: the trainer's own, and counts (videos in a batch,
#: TempCLR's qualifying and skipped videos, Cali-NCE's pairs).
BOOKKEEPING = {"step", "lr", "elapsed_s", "steps_per_s", "grad_norm", "videos", "loss", "align_videos",
               "align_skipped", "pairs"}
#: Statistics logged as sums (so that processes add up), plotted per what they count.
PER = {"score": "pairs"}


def read_metrics(run_dir: str | Path) -> list[dict]:
    """The records of ``run_dir/metrics.jsonl`` (one per logged step). A last line cut short (a
    run killed while logging) is left out with a warning; any other unreadable line, or no record
    at all, is a ValueError naming the file."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: is {run_dir} a trained run?")
    lines = [(k, line) for k, line in enumerate(path.read_text().splitlines(), 1) if line.strip()]
    records = []
    for k, line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            if (k, line) != lines[-1]:
                raise ValueError(f"{path}, line {k}: not a JSON record ({err})") from None
            warnings.warn(f"{path}, line {k}: a record cut short (the run was stopped while logging); left out")
    if not records:
        raise ValueError(f"{path} holds no record: the run logged nothing yet")
    return records


def plot_learning_curve(runs: Mapping[str, str | Path] | str | Path, *, smooth: int = 1):
    """Loss against step for one run or several ({label: run_dir}); a second panel shows whatever
    else the method logs (e.g. Cali-NCE's corr / nce / pc terms), each relative to its first value."""
    runs = {Path(runs).name: runs} if isinstance(runs, (str, Path)) else dict(runs)
    records = {label: read_metrics(path) for label, path in runs.items()}
    terms = sorted({k for recs in records.values() for r in recs for k in r} - BOOKKEEPING)
    # a statistic that is the loss itself (VT-TWINS' t2v when not symmetric) would repeat the left panel
    terms = [t for t in terms if any(t in r and r[t] != r["loss"] for recs in records.values() for r in recs)]
    fig, axes = plt.subplots(1, 2 if terms else 1, figsize=(10 if terms else 5.5, 3.2), squeeze=False,
                             constrained_layout=True)
    axes = axes[0]
    for label, recs in records.items():
        steps = [r["step"] for r in recs]
        marker = "o" if len(steps) == 1 else None  # one record: a line of one point would not show
        axes[0].plot(steps, _smooth([r["loss"] for r in recs], smooth), label=label, marker=marker)
        for term in terms:
            values = [_statistic(r, term) for r in recs]
            first = next((v for v in values if not math.isnan(v) and v != 0), None)
            if first is not None:  # each statistic relative to its first value: trends on one scale
                name = f"{term} per {PER[term][:-1]}" if term in PER else term
                axes[-1].plot(steps, _smooth([v / first for v in values], smooth), marker=marker,
                              label=f"{label}: {name}" if len(records) > 1 else name)
    # a record is already the mean over the log_every steps before it; smoothing averages records,
    # in both panels alike
    if smooth > 1:
        fig.suptitle(f"each point: the mean of the last {smooth} logged means", fontsize=9)
    axes[0].set_title("training loss", fontsize=10)
    if terms:
        axes[-1].set_title("other logged statistics (relative to their first value)", fontsize=10)
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def _statistic(record: Mapping[str, float], term: str) -> float:
    """A record's value of ``term``, a sum divided by its count where :data:`PER` names one."""
    value = record.get(term, math.nan)
    if term in PER:
        count = record.get(PER[term], math.nan)
        return value / count if count == count and count > 0 else math.nan
    return value


def _smooth(values: Sequence[float], window: int) -> list[float]:
    if window <= 1:
        return list(values)
    out = []
    for i in range(len(values)):
        chunk = [v for v in values[max(0, i - window + 1): i + 1] if not math.isnan(v)]
        out.append(sum(chunk) / len(chunk) if chunk else math.nan)
    return out


def metrics_rows(results: Mapping[str, Mapping[str, float]], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """{label: flat metrics} -> {metric: {label: value}} with R@K / recall / accuracy in %,
    ready for :func:`vtbench.viz.tables.format_table`."""
    return {m: {label: (r.get(m, math.nan) * (100 if is_percent(m) else 1)) for label, r in results.items()}
            for m in metrics}

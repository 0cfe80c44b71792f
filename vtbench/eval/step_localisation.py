"""Step localisation, the CrossTask protocol (Zhukov et al., CVPR 2019), METHODS.md section 3.

Per video, a score matrix S (T, K) of its task's K ordered steps over T time steps (one per
second; zero-shot: S[t, k] = cos(clip around t, text of step k)). The decoder picks one time
t_k per step, in order, each step at exactly one time step and background everywhere else:

    t* = argmax_{t_1 < t_2 < ... < t_K} sum_k S[t_k, k],

a DP over D[k, t] = S[t, k] + max_{t' < t} D[k-1, t'] in O(T K). The prediction Y_pred (T, K)
has one 1 per column. With Y_true[t, k] = 1 when second [t, t+1) overlaps a ground-truth
segment of step k, the recall of a task is

    recall = sum_videos sum(Y_true * Y_pred) / sum_videos #{k : Y_true[:, k] has a 1},

and the reported number is the mean over tasks.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import torch


def decode_ordered_steps(scores: torch.Tensor) -> torch.Tensor:
    """The ordered-step DP decoder: scores (T, K), T >= K -> times (K,), strictly increasing,
    maximising sum_k scores[t_k, k]. Ties are broken towards earlier times."""
    scores = torch.as_tensor(scores).detach().to("cpu", torch.float64)  # a sequential DP: on the CPU
    if scores.dim() != 2:
        raise ValueError(f"scores must be (T, K), got {tuple(scores.shape)}")
    t_len, k_len = scores.shape
    if k_len == 0:
        return torch.zeros(0, dtype=torch.long)
    if t_len < k_len:
        raise ValueError(f"cannot place {k_len} ordered steps at distinct times in {t_len} time steps")
    if not torch.isfinite(scores).all():
        raise ValueError("scores must be finite")
    neg = torch.tensor(-torch.inf, dtype=torch.float64)
    best = scores[:, 0].clone()  # D[0, t]
    argbest = []  # for step k >= 1: argbest_k[t] = the t' < t that D[k-1, .] peaks at
    for k in range(1, k_len):
        # prefix max of D[k-1, t'] over t' <= t - 1 (and its first argmax)
        shifted = torch.cat([neg[None], best[:-1]])
        run_max, run_arg = _prefix_max(shifted)
        argbest.append(run_arg - 1)  # shifted index t' + 1 -> t'
        best = scores[:, k] + run_max
    times = torch.empty(k_len, dtype=torch.long)
    times[-1] = int(torch.argmax(best))  # argmax returns the first maximum
    for k in range(k_len - 1, 0, -1):
        times[k - 1] = int(argbest[k - 1][times[k]])
    return times


def _prefix_max(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Running max of x (T,) and, for each t, the first index <= t that reaches it."""
    run_max = torch.cummax(x, dim=0).values
    idx = torch.arange(x.numel())
    new_max = torch.cat([torch.tensor([True]), run_max[1:] > run_max[:-1]])
    return run_max, torch.cummax(torch.where(new_max, idx, torch.zeros_like(idx)), dim=0).values


def prediction_matrix(times: torch.Tensor, t_len: int) -> torch.Tensor:
    """Decoded times (K,) -> Y_pred (T, K) bool with Y_pred[t_k, k] = 1."""
    y = torch.zeros(t_len, len(times), dtype=torch.bool)
    y[times, torch.arange(len(times))] = True
    return y


def truth_matrix(segments: torch.Tensor, t_len: int, k_len: int) -> torch.Tensor:
    """Ground-truth segments (S, 3) rows (step from 0, start s, end s) -> Y_true (T, K) bool,
    Y_true[t, k] when second [t, t+1) overlaps a segment of step k."""
    y = torch.zeros(t_len, k_len, dtype=torch.bool)
    t = torch.arange(t_len, dtype=torch.float64)
    for step, start, end in torch.as_tensor(segments, dtype=torch.float64).reshape(-1, 3).tolist():
        if not 0 <= int(step) < k_len:
            raise ValueError(f"segment step {int(step)} outside the task's {k_len} steps")
        y[:, int(step)] |= (t < end) & (t + 1 > start)
    return y


def crosstask_recall(videos: Iterable[tuple[object, torch.Tensor, torch.Tensor]]) -> dict:
    """Recall per task, averaged over tasks, from (task, Y_true (T, K), Y_pred (T, K)) per video.

    Tasks without any ground-truth step are left out of the average (their recall is 0/0) and
    counted in ``tasks_without_truth``.
    """
    match, total = defaultdict(int), defaultdict(int)
    n_videos = 0
    for task, y_true, y_pred in videos:
        if y_true.shape != y_pred.shape:
            raise ValueError(f"Y_true {tuple(y_true.shape)} and Y_pred {tuple(y_pred.shape)} differ")
        y_true, y_pred = y_true.bool(), y_pred.bool()
        total[task] += int(y_true.any(dim=0).sum())
        match[task] += int((y_true & y_pred).sum())
        n_videos += 1
    if n_videos == 0:
        raise ValueError("no videos to score")
    per_task = {task: match[task] / total[task] for task in total if total[task] > 0}
    if not per_task:
        raise ValueError("no video has a ground-truth step segment")
    return {
        "recall": sum(per_task.values()) / len(per_task),
        "per_task": {str(t): r for t, r in sorted(per_task.items(), key=lambda kv: str(kv[0]))},
        "n_videos": n_videos,
        "n_tasks": len(per_task),
        "tasks_without_truth": len(total) - len(per_task),
    }


def step_localisation_recall(videos: Iterable[tuple[object, torch.Tensor, torch.Tensor]]) -> dict:
    """The whole protocol from (task, scores (T, K), segments (S, 3)) per video: decode each score
    matrix with :func:`decode_ordered_steps`, then :func:`crosstask_recall`. Videos shorter than
    their step count cannot be decoded and are counted in ``skipped_short``."""
    rows, skipped = [], 0
    for k, (task, scores, segments) in enumerate(videos):
        if not isinstance(scores, torch.Tensor) or scores.dim() != 2:
            shape = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise ValueError(f"video {k} (task {task!r}): scores must be a (T, K) tensor, got {shape}")
        t_len, k_len = scores.shape
        if t_len < k_len:
            skipped += 1
            continue
        try:
            y_pred = prediction_matrix(decode_ordered_steps(scores), t_len)
            rows.append((task, truth_matrix(segments, t_len, k_len), y_pred))
        except ValueError as err:
            raise ValueError(f"video {k} (task {task!r}): {err}") from err
    return {**crosstask_recall(rows), "skipped_short": skipped}

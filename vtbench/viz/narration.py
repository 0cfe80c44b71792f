"""How weakly a dataset's narration is aligned to its video, measured against the ground truth,
and how that changes with narrated digits' noise knob (figures for notebook 02)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np


def alignment_noise(dataset, max_videos: int | None = None) -> dict[str, float]:
    """Means over the videos of ``dataset`` (items with ``segments`` and ``narration_segment``):

    * ``frames``: video length in rows (seconds); ``steps``: ground-truth step segments per video;
    * ``sentences``: narration sentences per video; ``filler_share``: sentences about nothing shown;
    * ``unnarrated_share``: step segments no sentence narrates;
    * ``shift_abs``: |narration start - segment start| in seconds, over narrated sentences;
    * ``overlap_share``: narrated sentences whose span overlaps their segment at all.
    """
    count = len(dataset) if max_videos is None else min(max_videos, len(dataset))
    frames, steps, sentences, fillers, unnarrated, shifts, overlaps = [], [], [], [], [], [], []
    for i in range(count):
        item = dataset[i]
        segments = np.asarray(item["segments"], dtype=float).reshape(-1, 3)
        of = np.asarray(item["narration_segment"])
        starts, ends = np.asarray(item["starts"], float), np.asarray(item["ends"], float)
        frames.append(len(item["features"]))
        steps.append(len(segments))
        sentences.append(len(of))
        fillers.extend(of < 0)
        unnarrated.extend(k not in set(of.tolist()) for k in range(len(segments)))
        for j in np.flatnonzero(of >= 0):
            seg = segments[of[j]]
            shifts.append(abs(starts[j] - seg[1]))
            overlaps.append(starts[j] < seg[2] and ends[j] > seg[1])

    def mean(x):
        return float(np.mean(x)) if len(x) else float("nan")

    return {"videos": count, "frames": mean(frames), "steps": mean(steps), "sentences": mean(sentences),
            "filler_share": mean(fillers), "unnarrated_share": mean(unnarrated), "shift_abs": mean(shifts),
            "overlap_share": mean(overlaps)}


def narration_table(item) -> str:
    """A video's narration, one line per sentence: its time span, its text, and what it narrates
    (the ground-truth step segment and its time span, or "filler")."""
    segments = np.asarray(item["segments"], dtype=float).reshape(-1, 3)
    steps = item.get("steps")
    lines = [f"{'said at':>13}  {'sentence':38s}  narrates"]
    for start, end, text, row in zip(item["starts"].tolist(), item["ends"].tolist(), item["texts"],
                                      np.asarray(item["narration_segment"]).tolist()):
        if row < 0:
            what = "filler (nothing shown)"
        else:
            step, s, e = segments[row]
            name = steps[int(step)] if steps is not None else f"step {int(step)}"
            what = f"{name!r}, shown {s:.0f}-{e:.0f} s"
        lines.append(f"{start:5.1f}-{end:5.1f} s  {text[:38]:38s}  {what}")
    narrated = set(np.asarray(item["narration_segment"]).tolist())
    missing = [int(k) for k in range(len(segments)) if k not in narrated]
    if missing:
        lines.append(f"unnarrated step segments: {missing}")
    return "\n".join(lines)


NOISE_PANELS = (("filler_share", "filler sentences", "share of sentences"),
                ("unnarrated_share", "unnarrated steps", "share of steps"),
                ("shift_abs", "|narration shift|", "seconds"),
                ("overlap_share", "sentences overlapping their step", "share of sentences"))


def plot_noise_levels(make_dataset: Callable[[float], object], levels: Sequence[float], max_videos: int | None = None):
    """The statistics of :func:`alignment_noise` for ``make_dataset(level)`` at each level.
    Returns (figure, {level: stats})."""
    stats = {float(level): alignment_noise(make_dataset(level), max_videos) for level in levels}
    fig, axes = plt.subplots(1, len(NOISE_PANELS), figsize=(3.2 * len(NOISE_PANELS), 2.8), constrained_layout=True)
    for ax, (key, label, unit) in zip(axes, NOISE_PANELS):
        ax.plot(list(stats), [s[key] for s in stats.values()], "o-")
        ax.set_title(label, fontsize=10)
        ax.set_xlabel("noise level")
        ax.set_ylabel(unit)
        ax.grid(alpha=0.3)
    fig.suptitle("Narration against the ground truth as the noise knob moves (0 = clean, 1 = default)", fontsize=10)
    return fig, stats

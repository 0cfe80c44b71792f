"""Figures of the data: one video with its frames, ground-truth steps and narration times.

``python -m vtbench.viz.data_figures`` writes ``figures/narrated_digits_video.png``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np  # noqa: E402
from matplotlib.font_manager import FontProperties
from matplotlib.patches import ConnectionPatch
from matplotlib.textpath import TextPath

from ..io import atomic_write

STEP_COLOURS = plt.get_cmap("tab10")
FILLER_COLOUR = "0.6"
LABEL_SIZE = 7.5  # points, the narration's labels


def _draw_frames(ax, features: np.ndarray, max_thumbs: int) -> None:
    """(T, 64) frames: one 8x8 thumbnail every ``stride`` frames, at its time; other D: a heatmap."""
    T, D = features.shape
    if D != 64:
        ax.imshow(features.T, aspect="auto", extent=(0, T, 0, 1), interpolation="nearest", cmap="viridis")
        return
    stride = max(1, int(np.ceil(T / max_thumbs)))
    for t in range(0, T, stride):
        ax.imshow(features[t].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1, interpolation="nearest",
                  extent=(t + 0.05 * stride, t + 0.95 * stride, 0, 1), aspect="auto")
    ax.set_ylim(0, 1)


def _lanes(starts, ends) -> list[int]:
    """A lane per interval so that intervals sharing a lane do not overlap (greedy, by start)."""
    lane_ends: list[float] = []
    lanes = [0] * len(starts)
    for i in np.argsort(starts, kind="stable"):
        free = [k for k, e in enumerate(lane_ends) if e <= starts[i]]
        k = free[0] if free else len(lane_ends)
        lane_ends[k:k + 1] = [ends[i]]
        lanes[i] = k
    return lanes


def _label_inches(text: str, italic: bool) -> float:
    """How wide a narration label is drawn, in inches (its glyphs' outline at LABEL_SIZE)."""
    path = TextPath((0, 0), text, size=LABEL_SIZE, prop=FontProperties(style="italic" if italic else "normal"))
    return path.get_extents().width / 72


def plot_video(item: dict, *, title: str | None = None, width: float = 15.0):
    """Frames along time (top), ground-truth step segments (middle), narration (bottom).

    Takes an item of any vtbench dataset (docs/ARCHITECTURE.md section 2): ``segments``,
    ``steps``, ``frame_labels`` and ``narration_segment`` are drawn when present. Narration of a
    step shares the step's colour, with a dotted line to the segment it narrates; fillers are grey.
    """
    features = np.asarray(item["features"], dtype=np.float32)
    T = len(features)
    starts, ends = np.asarray(item["starts"]), np.asarray(item["ends"])
    texts = list(item["texts"])
    segments = np.asarray(item.get("segments", np.zeros((0, 3))), dtype=float).reshape(-1, 3)
    steps = item.get("steps")
    step_digit = item.get("step_labels") or list(range(len(steps or [])))
    narrated = np.asarray(item.get("narration_segment", [-2] * len(texts)))
    # a sentence takes its lane up to the end of its box or of its label, whichever is later (a
    # short box's label runs past it), so that no label runs into the next box of its lane
    per_inch = T / max(width - 1.2, 1.0)  # frames per inch of the time axis (the row titles take ~1.1 inch)
    label_ends = [max(e, s + 0.2 + per_inch * (_label_inches(f'"{text}"', int(seg) == -1) + 0.05))
                  for s, e, text, seg in zip(starts, ends, texts, narrated)]
    lanes = _lanes(starts, label_ends)
    n_lanes = max(lanes, default=0) + 1

    max_thumbs = 32
    thumb = 0.82 * width * max(1, int(np.ceil(T / max_thumbs))) / max(T, 1)  # inches: square thumbnails
    fig, (ax_frames, ax_steps, ax_text) = plt.subplots(
        3, 1, figsize=(width, 1.6 + thumb + 0.45 * n_lanes), sharex=True,
        gridspec_kw={"height_ratios": [thumb, 0.7, 0.45 * n_lanes + 0.2]})
    _draw_frames(ax_frames, features, max_thumbs)
    ax_frames.set_yticks([])
    ax_frames.set_ylabel("frames", rotation=0, ha="right", va="center")

    def colour(step: int):
        return STEP_COLOURS(step_digit[step] % 10) if step_digit else "C0"

    for step, s, e in segments:
        label = steps[int(step)] if steps else f"step {int(step)}"
        ax_steps.add_patch(plt.Rectangle((s, 0.15), e - s, 0.7, color=colour(int(step)), alpha=0.85))
        ax_steps.text((s + e) / 2, 0.55, label, ha="center", va="center", fontsize=8, color="white", weight="bold")
    ax_steps.set_ylim(0, 1)
    ax_steps.set_yticks([])
    ax_steps.set_ylabel("ground truth", rotation=0, ha="right", va="center")

    for k, (s, e, text) in enumerate(zip(starts, ends, texts)):
        y = n_lanes - 1 - lanes[k]
        seg = int(narrated[k])
        filler = seg == -1
        c = FILLER_COLOUR if filler else (colour(int(segments[seg, 0])) if seg >= 0 else "C0")
        ax_text.add_patch(plt.Rectangle((s, y + 0.15), e - s, 0.7, color=c, alpha=0.55 if filler else 0.85,
                                        hatch="//" if filler else None, fill=True))
        ax_text.text(s + 0.2, y + 0.5, f'"{text}"', va="center", fontsize=LABEL_SIZE, clip_on=True,
                     style="italic" if filler else "normal")
        if seg >= 0:  # how far the narration sits from what it describes
            fig.add_artist(ConnectionPatch(
                xyA=((s + e) / 2, y + 0.85), coordsA=ax_text.transData,
                xyB=((segments[seg, 1] + segments[seg, 2]) / 2, 0.15), coordsB=ax_steps.transData,
                ls=":", color=c, lw=1.3))
    ax_text.set_ylim(0, n_lanes + 0.2)
    ax_text.set_yticks([])
    ax_text.set_ylabel("narration", rotation=0, ha="right", va="center")
    ax_text.set_xlim(0, T)
    ax_text.set_xlabel("time (seconds = frames)")
    unnarrated = [i for i in range(len(segments)) if i not in set(narrated.tolist())]
    note = (f"{len(texts)} sentences, {int((narrated == -1).sum())} fillers, "
            f"{len(unnarrated)} of {len(segments)} steps unnarrated") if len(segments) else f"{len(texts)} sentences"
    fig.suptitle(title or f"{item['video_id']}: {note}", fontsize=11)
    fig.tight_layout()
    return fig


def pick_example(ds, min_segments: int = 4):
    """The first video that shows every kind of weak alignment: a filler, an unnarrated step, a shift."""
    for i in range(len(ds)):
        item = ds[i]
        narrated = set(item["narration_segment"].tolist())
        if (len(item["segments"]) >= min_segments and -1 in narrated
                and len(narrated - {-1}) < len(item["segments"]) and len(narrated - {-1}) >= 2):
            return item
    return ds[0]


def main(argv: list[str] | None = None) -> int:
    from vtbench.data import NarratedDigits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", default="train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--index", type=int, default=None, help="video index (default: a telling example)")
    parser.add_argument("--out", default="figures/narrated_digits_video.png")
    args = parser.parse_args(argv)
    ds = NarratedDigits(args.split, seed=args.seed)
    item = ds[args.index] if args.index is not None else pick_example(ds)
    task = ds.tasks[item["task"]]
    fig = plot_video(item, title=f"{item['video_id']} (task {item['task']}: "
                                 f"{' > '.join(str(d) for d in task)}): frames, true steps and narration")
    out = Path(args.out)
    atomic_write(out, lambda f: fig.savefig(f, format=out.suffix[1:] or "png", dpi=130))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

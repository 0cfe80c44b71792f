"""Constructed video/narration pairs that show where plain DTW fails on weakly aligned data.

A task has K steps with unit prototype vectors. A video shows its steps in order, each for a few
clips (a clip = its step's prototype plus noise, normalised); background clips are noise alone.
A narration is one sentence per step it mentions (the prototype plus noise). The ground truth says
which clips each sentence describes. The cases (Ko et al. 2022, Sec. 1; Dvornik et al. 2021):

* ``aligned``: every step shown and narrated, in order (what DTW assumes);
* ``irrelevant clips``: background before, between and after the steps;
* ``unnarrated step``: a step is shown but never narrated;
* ``irrelevant sentence``: the narrator says something that is never shown;
* ``swapped steps``: two steps are narrated in the opposite order to how they are shown.

Everything is seeded: the same call gives the same pair, bit for bit.
"""
from __future__ import annotations

import math

import torch

from .alignments import Pair

TOY_CASES = ("aligned", "irrelevant clips", "unnarrated step", "irrelevant sentence", "swapped steps")

# (video: step per clip block, "bg" for background; narration: step per sentence, "chat" for
# a sentence about nothing shown)
_LAYOUTS = {
    "aligned": ([0, 1, 2, 3, 4], [0, 1, 2, 3, 4]),
    "irrelevant clips": (["bg", 0, 1, "bg", 2, 3, 4, "bg"], [0, 1, 2, 3, 4]),
    "unnarrated step": ([0, 1, 2, 3, 4], [0, 1, 3, 4]),
    "irrelevant sentence": ([0, 1, 2, 3, 4], [0, 1, "chat", 2, 3, 4]),
    "swapped steps": ([0, 1, 2, 3, 4], [0, 1, 3, 2, 4]),
}


def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=-1, keepdim=True)


def toy_pair(case: str = "aligned", *, clips_per_step: int = 3, dim: int = 32, noise: float = 0.6,
             seed: int = 0) -> Pair:
    """One constructed pair (see the module docstring); rows are clips, columns sentences.

    ``noise`` is the expected norm of the noise added to a unit prototype (0.6: a clip and its
    sentence have cosine similarity near 0.75, unrelated ones near 0).
    """
    if case not in _LAYOUTS:
        raise ValueError(f"case must be one of {TOY_CASES}, got {case!r}")
    if clips_per_step < 1 or dim < 8:
        raise ValueError("clips_per_step must be >= 1 and dim >= 8")
    if not (isinstance(noise, (int, float)) and math.isfinite(noise) and noise > 0):
        raise ValueError(f"noise must be a finite number > 0 (a background clip is pure noise), got {noise!r}")
    g = torch.Generator().manual_seed(seed)
    steps = 5
    prototypes = _unit(torch.randn(steps + 1, dim, generator=g, dtype=torch.float64))  # last: "chat"
    video_layout, text_layout = _LAYOUTS[case]

    scale = noise / dim**0.5
    clips, clip_steps = [], []
    for block in video_layout:
        for _ in range(clips_per_step):
            base = torch.zeros(dim, dtype=torch.float64) if block == "bg" else prototypes[block]
            clips.append(_unit(base + scale * torch.randn(dim, generator=g, dtype=torch.float64)))
            clip_steps.append(-1 if block == "bg" else block)
    sentences, sentence_steps = [], []
    for step in text_layout:
        base = prototypes[steps] if step == "chat" else prototypes[step]
        sentences.append(_unit(base + scale * torch.randn(dim, generator=g, dtype=torch.float64)))
        sentence_steps.append(-1 if step == "chat" else step)

    video, text = torch.stack(clips), torch.stack(sentences)  # (N, dim), (M, dim)
    clip_steps_t, sentence_steps_t = torch.tensor(clip_steps), torch.tensor(sentence_steps)
    truth = (clip_steps_t[:, None] == sentence_steps_t[None, :]) & (sentence_steps_t[None, :] >= 0)
    return Pair(
        name=case,
        similarity=video @ text.T,
        truth=truth,
        row_labels=["bg" if s < 0 else f"step {s + 1}" for s in clip_steps],
        col_labels=["chat" if s < 0 else f"say {s + 1}" for s in sentence_steps],
        note=f"video {_steps_from_1(video_layout)}, narration {_steps_from_1(text_layout)}",
    )


def _steps_from_1(layout) -> str:
    """A layout as the figures label it: steps counted from 1, as the axes' "step 1" and "say 1"."""
    return "[" + ", ".join(str(b) if isinstance(b, str) else str(b + 1) for b in layout) + "]"


def toy_pairs(**options) -> dict[str, Pair]:
    """Every case of :data:`TOY_CASES`, by name."""
    return {case: toy_pair(case, **options) for case in TOY_CASES}

"""Narrated digits: instructional "videos" of real handwriting with weakly aligned narration.

A benchmark with the structure of HowTo100M that trains on a laptop CPU. Frames are the 1,797
handwritten 8x8 digits of UCI (shipped with scikit-learn), split *by image* into disjoint
train/val/test pools, so test videos show handwriting never seen in training.

* A **task** is an ordered script of 3-6 distinct digits (its steps); steps are shared between tasks,
  as in CrossTask. Tasks depend on ``seed`` only, so every split shows the same tasks.
* A **video** of a task: background, then for each step a segment of several clips (a clip is
  ``frames_per_clip`` jittered, noisy frames of one handwritten image of the step's digit), with
  background between steps (noise frames, or a digit that is not a step of the task). A step may be
  skipped (``p_skip_step``) and two neighbouring steps swapped (``p_swap_steps``).
* Its **narration**: one sentence per narrated step, drawn from a few phrasings ("now we write a
  three"), spoken over the step's segment shifted by ``shift ~ N(shift_mean, shift_std)`` seconds
  (clipped to the video); a step goes unnarrated with probability ``p_unnarrated``; filler sentences
  ("thanks for watching") make up a fraction ``filler_rate`` of all sentences, at random times.

One feature row is one frame (one "second"), D = 64. ``preset="clean"`` gives perfect alignment
(no shift, every step narrated, no fillers). Everything is deterministic from ``seed`` and cached
atomically under ``cache_dir`` (see :mod:`vtbench.data.cache`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import math
import numbers
import operator
import warnings
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import cache
from .digit_words import DIGIT_WORDS, FILLERS, PHRASINGS, phrase, step_text

SPLITS = ("train", "val", "test")
GENERATOR_VERSION = 2  # bump when generation changes, so stale caches are not reused
DEFAULT_VIDEOS_PER_TASK = {"train": 40, "val": 10, "test": 10}
PRESETS = {"clean": {"shift_mean": 0.0, "shift_std": 0.0, "p_unnarrated": 0.0, "filler_rate": 0.0}}


@dataclasses.dataclass(frozen=True)
class DigitsConfig:
    """Every generation knob of :class:`NarratedDigits` (its defaults live in its signature)."""

    seed: int
    n_tasks: int
    steps_per_task: tuple[int, int]
    videos_per_task: int
    clips_per_step: tuple[int, int]
    frames_per_clip: int
    background_len: tuple[int, int]
    p_background_digit: float
    p_skip_step: float
    p_swap_steps: float
    max_shift_px: int
    pixel_noise: float
    background_noise: float
    shift_mean: float
    shift_std: float
    p_unnarrated: float
    filler_rate: float
    filler_len: tuple[int, int]
    pool_fractions: tuple[float, float, float]
    pool_seed: int

    def key(self, split: str) -> str:
        record = {"split": split, "version": GENERATOR_VERSION, **dataclasses.asdict(self)}
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def _uci_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return (digits.images / 16.0).astype(np.float32), digits.target.astype(np.int64)


def image_pools(fractions=(0.6, 0.2, 0.2), seed: int = 0) -> dict[str, np.ndarray]:
    """Disjoint, class-stratified image indices for each split (into sklearn's 1,797 digits)."""
    fractions = _as_fractions(fractions)
    if min(fractions) <= 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"pool_fractions must be three positive numbers summing to 1, got {fractions}")
    _, labels = _uci_digits()
    rng = np.random.default_rng(seed)
    pools = {split: [] for split in SPLITS}
    for digit in range(10):
        idx = rng.permutation(np.flatnonzero(labels == digit))
        cuts = np.round(np.cumsum(fractions)[:2] * len(idx)).astype(int)
        for split, part in zip(SPLITS, np.split(idx, cuts)):
            pools[split].append(part)
    return {split: np.sort(np.concatenate(parts)) for split, parts in pools.items()}


def make_tasks(n_tasks: int, steps_per_task: tuple[int, int], seed: int) -> list[list[int]]:
    """``n_tasks`` distinct ordered scripts of distinct digits, covering all ten digits if they can."""
    n_tasks, (lo, hi) = _as_int("n_tasks", n_tasks), _as_pair("steps_per_task", steps_per_task)
    if not 1 <= lo <= hi <= 10:
        raise ValueError(f"steps_per_task must satisfy 1 <= lo <= hi <= 10, got {steps_per_task}")
    # A script of k steps is an ordered draw of k distinct digits: 10! / (10 - k)! of them.
    n_scripts = sum(math.perm(10, k) for k in range(lo, hi + 1))
    if n_tasks > n_scripts:
        raise ValueError(f"n_tasks={n_tasks} distinct tasks cannot be drawn: steps_per_task={steps_per_task} "
                         f"allows only {n_scripts} scripts")
    rng = np.random.default_rng([seed, 0x7A5C])
    for _ in range(1000):
        tasks: list[list[int]] = []
        while len(tasks) < n_tasks:
            script = rng.choice(10, size=int(rng.integers(lo, hi + 1)), replace=False).tolist()
            if script not in tasks:
                tasks.append(script)
        if len({d for t in tasks for d in t}) == 10 or n_tasks * hi < 10:
            return tasks
    return tasks  # few, short tasks: all digits cannot be covered; keep the last draw


def _augment(images: np.ndarray, rng, max_shift: int, noise: float) -> np.ndarray:
    """(F, 8, 8) images -> (F, 64) frames: a random shift of up to ``max_shift`` px, pixel noise."""
    n = len(images)
    if max_shift > 0:
        padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift)))
        dy, dx = rng.integers(0, 2 * max_shift + 1, size=(2, n))
        rows = dy[:, None] + np.arange(8)[None, :]  # (F, 8)
        cols = dx[:, None] + np.arange(8)[None, :]
        images = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    frames = images.reshape(n, 64) + noise * rng.standard_normal((n, 64), dtype=np.float32)
    return np.clip(frames, 0.0, 1.0)


def generate_video(script: list[int], cfg: DigitsConfig, pool: np.ndarray, rng) -> dict:
    """One video of the task ``script``: frames (T, 64), frame labels, segments and narration."""
    images, labels = _uci_digits()
    by_digit = {d: pool[labels[pool] == d] for d in range(10)}
    # Which steps happen, in which order.
    order = [i for i in range(len(script)) if rng.random() >= cfg.p_skip_step]
    if not order:
        order = [int(rng.integers(len(script)))]
    if len(order) > 1 and rng.random() < cfg.p_swap_steps:
        j = int(rng.integers(len(order) - 1))
        order[j], order[j + 1] = order[j + 1], order[j]
    others = [d for d in range(10) if d not in script]

    frame_images, frame_labels, segments = [], [], []  # images: pool index, or -1 for noise

    def add_clips(digit: int, n_clips: int, label: int):
        for img in rng.choice(by_digit[digit], size=n_clips):
            frame_images.extend([int(img)] * cfg.frames_per_clip)
        frame_labels.extend([label] * (n_clips * cfg.frames_per_clip))

    def add_background():
        length = int(rng.integers(cfg.background_len[0], cfg.background_len[1] + 1))
        if others and length >= cfg.frames_per_clip and rng.random() < cfg.p_background_digit:
            add_clips(int(rng.choice(others)), length // cfg.frames_per_clip, -1)
        else:
            frame_images.extend([-1] * length)
            frame_labels.extend([-1] * length)

    add_background()
    for step in order:
        start = len(frame_labels)
        add_clips(script[step], int(rng.integers(cfg.clips_per_step[0], cfg.clips_per_step[1] + 1)), script[step])
        segments.append((step, start, len(frame_labels)))
        add_background()

    idx = np.asarray(frame_images)
    shown = np.where(idx[:, None, None] >= 0, images[np.maximum(idx, 0)], 0.0).astype(np.float32)
    frames = _augment(shown, rng, cfg.max_shift_px, cfg.pixel_noise)
    noise_rows = idx < 0
    frames[noise_rows] = np.clip(
        np.abs(cfg.background_noise * rng.standard_normal((int(noise_rows.sum()), 64))), 0, 1)
    return {"features": frames.astype(np.float32), "frame_labels": np.asarray(frame_labels, np.int8),
            "segments": segments, **narrate(script, segments, len(frame_labels), cfg, rng)}


def narrate(script, segments, n_frames: int, cfg: DigitsConfig, rng) -> dict:
    """Sentences for the segments: shifted step sentences, unnarrated steps, fillers; by start time."""
    sentences = []  # (start, end, text, segment row or -1)
    for row, (step, start, end) in enumerate(segments):
        if rng.random() < cfg.p_unnarrated:
            continue
        shift = rng.normal(cfg.shift_mean, cfg.shift_std) if cfg.shift_std > 0 else cfg.shift_mean
        s, e = _clip_span(start + shift, end + shift, n_frames)
        sentences.append((s, e, phrase(script[step], PHRASINGS[rng.integers(len(PHRASINGS))]), row))
    # Fillers: Bernoulli(filler_rate) trials until every step sentence is placed (a negative
    # binomial draw), so fillers / all sentences -> filler_rate over many videos.
    n_fillers = int(rng.negative_binomial(len(sentences), 1 - cfg.filler_rate)) if sentences else 0
    if not sentences:  # every video keeps at least one sentence
        if cfg.filler_rate > 0:
            n_fillers = 1
        else:
            row = int(rng.integers(len(segments)))
            step, start, end = segments[row]
            sentences.append((float(start), float(end), phrase(script[step], PHRASINGS[0]), row))
    for _ in range(n_fillers):
        length = float(rng.integers(cfg.filler_len[0], cfg.filler_len[1] + 1))
        start = float(rng.uniform(0, max(n_frames - length, 0)))
        s, e = _clip_span(start, start + length, n_frames)
        sentences.append((s, e, FILLERS[rng.integers(len(FILLERS))], -1))
    sentences.sort(key=lambda x: (x[0], x[1]))
    return {"starts": [x[0] for x in sentences], "ends": [x[1] for x in sentences],
            "texts": [x[2] for x in sentences], "narration_segment": [x[3] for x in sentences]}


def _clip_span(start: float, end: float, n_frames: int) -> tuple[float, float]:
    """Clip [start, end] to the video, keeping at least one second of it."""
    start = min(max(start, 0.0), n_frames - 1.0)
    end = max(min(end, float(n_frames)), start + 1.0)
    return float(start), float(end)


class NarratedDigits(Dataset):
    """Narrated handwriting videos; ``ds[i]`` follows docs/ARCHITECTURE.md section 2.

    Defaults are a HowTo100M-like noise level (chosen to resemble it, not fitted to it): 40% of
    the sentences are fillers, 30% of the steps go unnarrated, narration starts about a second
    early with a 3-second spread, against steps of 8-16 seconds separated by 2-8 of background.

    Default sizes: 12 tasks x (40 | 10 | 10) videos for train | val | test (480 | 120 | 120);
    T = 12-121 frames (mean 74), D = 64, K = 1-14 sentences (mean 5), 4.1 step segments per video.

    Items also carry ``narration_segment: LongTensor (K,)``: the row of ``segments`` each sentence
    narrates (-1 for a filler), so the alignment noise can be measured.

    Knobs (all keyword-only; times in seconds = frames):

    * structure: ``n_tasks``, ``steps_per_task`` (lo, hi) steps per script, ``videos_per_task``
      (None: 40 for train, 10 for val/test), ``clips_per_step`` (lo, hi), ``frames_per_clip``,
      ``background_len`` (lo, hi) frames before, between and after steps, ``p_background_digit``
      (a background segment shows a digit outside the task instead of noise), ``p_skip_step`` (per
      step), ``p_swap_steps`` (per video: two neighbouring steps exchanged);
    * frames: ``max_shift_px`` (random translation), ``pixel_noise`` (Gaussian std on [0, 1]
      pixels), ``background_noise`` (std of the noise frames);
    * narration: ``shift_mean``, ``shift_std`` (narration time minus true segment time),
      ``p_unnarrated`` (per step), ``filler_rate`` (expected fraction of sentences that are
      fillers), ``filler_len`` (lo, hi) seconds;
    * handwriting: ``pool_fractions`` and ``pool_seed`` split the 1,797 images into the train /
      val / test pools (keep them equal across the splits you compare: the pools stay disjoint);
    * ``seed`` fixes the tasks (shared by all splits) and every video; ``preset="clean"`` sets
      shift_mean = shift_std = p_unnarrated = filler_rate = 0 (perfect alignment);
    * ``noise`` scales those four narration knobs at once (0 = clean, 1 = the defaults, 2 = twice
      the shift and twice the unnarrated/filler rates, capped below 1): the axis of the ablation;
    * ``cache_dir``: "auto" (see :func:`vtbench.data.cache.default_cache_dir`), a folder, or None.
    """

    def __init__(self, split: str = "train", *, seed: int = 0, preset: str | None = None,
                 n_tasks: int = 12, steps_per_task=(3, 6), videos_per_task: int | None = None,
                 clips_per_step=(2, 4), frames_per_clip: int = 4, background_len=(2, 8),
                 p_background_digit: float = 0.25, p_skip_step: float = 0.1, p_swap_steps: float = 0.1,
                 max_shift_px: int = 1, pixel_noise: float = 0.05, background_noise: float = 0.15,
                 shift_mean: float = -1.0, shift_std: float = 3.0, p_unnarrated: float = 0.3,
                 filler_rate: float = 0.4, filler_len=(2, 8), pool_fractions=(0.6, 0.2, 0.2),
                 pool_seed: int = 0, noise: float = 1.0, cache_dir="auto"):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        knobs = _apply_preset(preset, {k: v for k, v in locals().items() if k in _KNOBS})
        if knobs["videos_per_task"] is None:
            knobs["videos_per_task"] = DEFAULT_VIDEOS_PER_TASK[split]
        knobs = _checked(knobs)  # the arguments as given: noise scaling would hide bad ones
        self.config = DigitsConfig(**_scale_noise(knobs, noise))
        self.split, self.preset = split, preset
        self.skipped: Counter = Counter()  # nothing is ever left out; kept for the common contract
        self.tasks = make_tasks(self.config.n_tasks, self.config.steps_per_task, self.config.seed)
        self.task_steps = [[step_text(d) for d in script] for script in self.tasks]
        self.cache_path = None
        if cache_dir is not None:
            folder = cache.default_cache_dir() if cache_dir == "auto" else Path(cache_dir)
            self.cache_path = folder / f"narrated-digits-{split}-{self.config.key(split)}.npz"
        self._arrays, self._videos = self._load_or_generate()

    # -- generation and cache -------------------------------------------------------------
    def generate(self) -> tuple[dict[str, np.ndarray], list[dict]]:
        """Generate the split from scratch (no cache involved)."""
        cfg = self.config
        pool = image_pools(cfg.pool_fractions, cfg.pool_seed)[self.split]
        missing = np.flatnonzero(np.bincount(_uci_digits()[1][pool], minlength=10) == 0)
        if len(missing):  # fail now, not when a video first draws that digit
            raise ValueError(f"pool_fractions={cfg.pool_fractions} leave the {self.split} pool no image of "
                             f"digit {int(missing[0])}: every split needs every digit")
        split_id = SPLITS.index(self.split)
        features, labels, videos = [], [], []
        for v in range(cfg.n_tasks * cfg.videos_per_task):
            task = v % cfg.n_tasks  # interleaved: any prefix of the split covers every task
            video = generate_video(self.tasks[task], cfg, pool, np.random.default_rng([cfg.seed, split_id, v]))
            features.append(video.pop("features"))
            labels.append(video.pop("frame_labels"))
            videos.append({"video_id": f"digits-{self.split}-{v:04d}", "task": task, **video})
        offsets = np.concatenate([[0], np.cumsum([len(f) for f in features])]).astype(np.int64)
        arrays = {"features": np.concatenate(features), "frame_labels": np.concatenate(labels),
                  "offsets": offsets}
        return arrays, videos

    def _load_or_generate(self):
        key = self.config.key(self.split)
        if self.cache_path is not None:
            loaded = cache.load_arrays(self.cache_path)
            if loaded is not None and _consistent(*loaded, key):
                return loaded[0], loaded[1]["videos"]
            if self.cache_path.exists():
                warnings.warn(f"{self.cache_path}: corrupt or stale cache, regenerating", stacklevel=3)
        arrays, videos = self.generate()
        if self.cache_path is not None:
            try:
                cache.sweep_temporaries(self.cache_path.parent, self.cache_path.name)
                cache.save_arrays(self.cache_path, arrays, {"key": key, "videos": videos})
            except OSError as err:  # a read-only or full disk costs the cache, not the run
                warnings.warn(f"{self.cache_path}: could not write the cache ({err})", stacklevel=3)
        return arrays, videos

    # -- Dataset ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._videos)

    def __getitem__(self, i: int) -> dict:
        i = _index(i, len(self))
        video = self._videos[i]
        lo, hi = self._arrays["offsets"][i], self._arrays["offsets"][i + 1]
        task = video["task"]
        return {
            "video_id": video["video_id"],
            "features": torch.tensor(self._arrays["features"][lo:hi]),  # (T, 64)
            "starts": torch.tensor(video["starts"], dtype=torch.float32),  # (K,)
            "ends": torch.tensor(video["ends"], dtype=torch.float32),
            "texts": list(video["texts"]),
            "task": task,
            "steps": list(self.task_steps[task]),
            "segments": torch.tensor(video["segments"], dtype=torch.float32).reshape(-1, 3),  # (S, 3)
            "frame_labels": torch.tensor(self._arrays["frame_labels"][lo:hi], dtype=torch.long),
            "step_labels": list(self.tasks[task]),
            "clean_texts": [self.task_steps[task][int(step)] for step, _, _ in video["segments"]],
            "narration_segment": torch.tensor(video["narration_segment"], dtype=torch.long),
        }

    def all_texts(self) -> list[str]:
        """Every sentence a model may see (narration, step texts, digit prompts): fit a Tokenizer."""
        steps = [step_text(d) for d in range(len(DIGIT_WORDS))]
        return [t for v in self._videos for t in v["texts"]] + steps

    def __repr__(self) -> str:
        return (f"NarratedDigits(split={self.split!r}, videos={len(self)}, frames={len(self._arrays['features'])}, "
                f"seed={self.config.seed}, preset={self.preset!r})")


def _index(i: int, n: int) -> int:
    """A valid index of a length-n sequence (negative counts from the end), else IndexError."""
    i = int(i)
    if not -n <= i < n:
        raise IndexError(f"index {i} out of range for {n} videos")
    return i % n


_KNOBS = [p for p in inspect.signature(NarratedDigits.__init__).parameters
          if p in {f.name for f in dataclasses.fields(DigitsConfig)}]


def _apply_preset(preset: str | None, knobs: dict) -> dict:
    if preset is None:
        return knobs
    if preset not in PRESETS:
        raise ValueError(f"preset must be None or one of {sorted(PRESETS)}, got {preset!r}")
    defaults = inspect.signature(NarratedDigits.__init__).parameters
    for name, value in PRESETS[preset].items():
        if knobs[name] not in (defaults[name].default, value):
            raise ValueError(f"preset={preset!r} sets {name}={value}; got {name}={knobs[name]}")
        knobs[name] = value
    return knobs


NOISE_KNOBS = ("shift_mean", "shift_std", "p_unnarrated", "filler_rate")


def _scale_noise(knobs: dict, noise: float) -> dict:
    """Scale the alignment noise: ``noise=0`` is the clean preset, 1 the defaults, 2 twice as
    weak an alignment (probabilities capped below 1); the other knobs are left alone."""
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < float("inf"):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    if noise == 1:
        return knobs
    scaled = {name: knobs[name] * noise for name in NOISE_KNOBS}
    for name, value in scaled.items():
        if not math.isfinite(value):
            raise ValueError(f"noise={noise!r} scales {name}={knobs[name]!r} to {value}, which is not finite")
    scaled["p_unnarrated"] = min(scaled["p_unnarrated"], 0.95)
    scaled["filler_rate"] = min(scaled["filler_rate"], 0.9)
    return {**knobs, **scaled}


INT_KNOBS = ("seed", "n_tasks", "videos_per_task", "frames_per_clip", "max_shift_px", "pool_seed")
PAIR_KNOBS = ("steps_per_task", "clips_per_step", "background_len", "filler_len")
REAL_KNOBS = ("p_background_digit", "p_skip_step", "p_swap_steps", "pixel_noise", "background_noise",
              "shift_mean", "shift_std", "p_unnarrated", "filler_rate")


def _checked(knobs: dict) -> dict:
    """The knobs as plain Python numbers (they form the cache key), else an error naming the bad one.

    Python ints and floats are kept as given, so valid arguments keep their cache key; numpy
    scalars become their Python equivalents.
    """
    knobs = dict(knobs)
    for name in INT_KNOBS:
        knobs[name] = _as_int(name, knobs[name])
    for name in PAIR_KNOBS:
        knobs[name] = _as_pair(name, knobs[name])
    for name in REAL_KNOBS:
        knobs[name] = _as_real(name, knobs[name])
    knobs["pool_fractions"] = _as_fractions(knobs["pool_fractions"])
    _check_ranges(knobs)
    return knobs


def _integer(value) -> int | None:
    """``value`` as a Python int (numpy integers included), or None if it is no integer (bools are not)."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _as_int(name: str, value) -> int:
    integer = _integer(value)
    if integer is None:
        raise TypeError(f"{name} must be an integer, got {value!r}")
    return integer


def _as_pair(name: str, value) -> tuple[int, int]:
    """A (low, high) pair of ints; the order of low and high is checked by the caller."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list, np.ndarray)):
        raise TypeError(f"{name} must be a (low, high) pair of integers, got {value!r}")
    if len(value) != 2:
        raise ValueError(f"{name} must be a (low, high) pair of integers, got {len(value)} values: {value!r}")
    pair = tuple(_integer(v) for v in value)
    if None in pair:
        raise TypeError(f"{name} must be a (low, high) pair of integers, got {value!r}")
    return pair


def _as_real(name: str, value) -> int | float:
    """A finite real number: Python ints and floats are kept as given, numpy scalars converted."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if isinstance(value, numbers.Integral):
        return operator.index(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _as_fractions(fractions) -> tuple:
    if not isinstance(fractions, (tuple, list, np.ndarray)) or len(fractions) != 3:
        raise ValueError(f"pool_fractions must be three positive numbers summing to 1, got {fractions!r}")
    return tuple(_as_real(f"pool_fractions[{i}]", f) for i, f in enumerate(fractions))


def _check_ranges(knobs: dict) -> None:
    for name in ("seed", "pool_seed"):
        if knobs[name] < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {knobs[name]}")
    for name in ("n_tasks", "videos_per_task", "frames_per_clip"):
        if knobs[name] < 1:
            raise ValueError(f"{name} must be a positive integer, got {knobs[name]}")
    if not 0 <= knobs["max_shift_px"] <= 3:
        raise ValueError(f"max_shift_px must lie in 0..3, got {knobs['max_shift_px']}")
    for name, low in (("steps_per_task", 1), ("clips_per_step", 1), ("background_len", 0), ("filler_len", 1)):
        lo, hi = knobs[name]
        if not low <= lo <= hi:
            raise ValueError(f"{name} must be (low, high) with {low} <= low <= high, got {knobs[name]}")
    for name in ("p_background_digit", "p_skip_step", "p_swap_steps", "p_unnarrated"):
        if not 0.0 <= knobs[name] <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {knobs[name]}")
    if not 0.0 <= knobs["filler_rate"] < 1.0:
        raise ValueError(f"filler_rate must lie in [0, 1), got {knobs['filler_rate']}")
    for name in ("shift_std", "pixel_noise", "background_noise"):
        if knobs[name] < 0:
            raise ValueError(f"{name} must be >= 0, got {knobs[name]}")


def _consistent(arrays: dict, meta: dict, key: str) -> bool:
    """A loaded cache is usable: its key matches and its arrays agree with its records."""
    try:
        offsets, videos = arrays["offsets"], meta["videos"]
        return (meta["key"] == key and len(offsets) == len(videos) + 1 and offsets[0] == 0
                and bool(np.all(np.diff(offsets) > 0)) and offsets[-1] == len(arrays["features"])
                == len(arrays["frame_labels"]) and arrays["features"].shape[1:] == (64,))
    except (KeyError, TypeError, IndexError):
        return False

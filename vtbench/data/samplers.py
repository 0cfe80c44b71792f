"""Method batches: pick clip/caption pairs from a video item, then pad and mask a batch.

``SAMPLERS[name](item, rng, **options) -> sample | None`` (docs/ARCHITECTURE.md section 4); a
sample is a dict ``clips (n, clip_len, D)``, ``clip_times (n, 2)``, ``texts`` (m), ``pair (m,)``
(index of the clip paired with each caption, -1 none), ``video_id`` and for MIL-NCE
``candidates (n, K)``. ``None`` means the item cannot give what the method needs (no caption, or
for TempCLR fewer than n non-overlapping clip/caption pairs); :func:`collate` drops and counts those.

A clip is a fixed window of ``clip_len`` feature rows centred in its caption's span (or placed at
random inside it with ``jitter=True``), clamped to the video; a video shorter than ``clip_len``
repeats its last row.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import torch

from .text import Tokenizer

SAMPLERS: dict[str, Callable] = {}


def register(name: str):
    def add(fn):
        SAMPLERS[name] = fn
        return fn
    return add


def get_sampler(name: str) -> Callable:
    if name not in SAMPLERS:
        raise ValueError(f"unknown sampler {name!r}; valid: {', '.join(sorted(SAMPLERS))}")
    return SAMPLERS[name]


def clip_start(start: float, end: float, clip_len: int, n_rows: int, rng=None) -> int:
    """First row of a ``clip_len`` window in the span [start, end], clamped to [0, T - clip_len]."""
    if rng is not None and end - start > clip_len:
        first = rng.uniform(start, end - clip_len)
    else:
        first = (start + end - clip_len) / 2
    return int(np.clip(np.floor(first + 0.5), 0, max(n_rows - clip_len, 0)))


def _clip_rows(start: float, end: float, clip_len: int, n_rows: int, jitter: bool) -> tuple[int, int]:
    """The rows [first, stop) that the clip of the span [start, end] may cover: its one window, or
    with ``jitter`` the union of the windows that :func:`clip_start` can draw."""
    if jitter and end - start > clip_len:  # the extremes of rng.uniform(start, end - clip_len), rounded and clamped
        lowest = clip_start(start, start + clip_len, clip_len, n_rows)
        highest = clip_start(end - clip_len, end, clip_len, n_rows)
    else:
        lowest = highest = clip_start(start, end, clip_len, n_rows)
    return lowest, highest + clip_len


def _sample(item: dict, captions: np.ndarray, clip_spans: np.ndarray, clip_len: int, jitter: bool, rng) -> dict:
    """Clips for the (start, end) rows of ``clip_spans``; ``captions`` indexes the item's texts."""
    features = item["features"]  # (T, D)
    n_rows = len(features)
    firsts = [clip_start(s, e, clip_len, n_rows, rng if jitter else None) for s, e in clip_spans]
    rows = torch.tensor(firsts, dtype=torch.long)[:, None] + torch.arange(clip_len)[None, :]  # (n, clip_len)
    return {
        "video_id": item["video_id"],
        "clips": features[rows.clamp_max(n_rows - 1)],  # (n, clip_len, D)
        "clip_times": torch.stack([rows[:, 0], rows[:, 0] + clip_len], dim=1).float(),  # (n, 2)
        "texts": [item["texts"][int(c)] for c in captions],
    }


def _time_order(item: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Caption indices sorted by start (stable), with their starts and ends."""
    starts, ends = np.asarray(item["starts"], dtype=np.float64), np.asarray(item["ends"], dtype=np.float64)
    order = np.argsort(starts, kind="stable")
    return order, starts, ends


@register("vt-twins")
def vt_twins(item: dict, rng, *, n: int = 8, clip_len: int = 4, jitter: bool = False) -> dict | None:
    """n consecutive captions (fewer if the video has fewer), each with one clip inside its span."""
    rng = np.random.default_rng(rng)
    order, starts, ends = _time_order(item)
    if len(order) == 0:
        return None
    first = int(rng.integers(0, len(order) - n + 1)) if len(order) > n else 0
    chosen = order[first:first + n]
    sample = _sample(item, chosen, np.stack([starts[chosen], ends[chosen]], 1), clip_len, jitter, rng)
    sample["pair"] = torch.arange(len(chosen))
    return sample


@register("tempclr")
def tempclr(item: dict, rng, *, n: int = 5, clip_len: int = 4, jitter: bool = False) -> dict | None:
    """n non-overlapping clip/caption pairs in temporal order; None if the video has fewer.

    Both the captions and their clips must be disjoint: the clips of short back-to-back captions
    would share rows. The candidates are picked earliest caption end first, each caption kept when
    it starts after the last kept one ends and its clip's rows (all its jittered windows, with
    ``jitter``) start after the last kept clip's; n of them are drawn at random, kept in temporal
    order. That greedy pick is the longest chain for the captions alone, not always with their
    clips too (a short caption's clip can reach past a longer caption's): when it finds fewer than
    n, :func:`_disjoint_chain` draws a chain of n from all of them. Which videos give None does not
    depend on ``rng``.
    """
    rng = np.random.default_rng(rng)
    _, starts, ends = _time_order(item)
    n_rows = len(item["features"])
    rows = np.array([_clip_rows(s, e, clip_len, n_rows, jitter) for s, e in zip(starts, ends)]).reshape(-1, 2)
    disjoint, last_end, last_stop = [], -np.inf, -np.inf
    for i in np.lexsort((starts, ends)):
        if starts[i] >= last_end and rows[i, 0] >= last_stop:
            disjoint.append(i)
            last_end, last_stop = ends[i], rows[i, 1]
    if len(disjoint) >= n:
        chosen = np.asarray(disjoint)[np.sort(rng.choice(len(disjoint), size=n, replace=False))]
    else:
        chosen = _disjoint_chain(starts, ends, rows, n, rng)
        if chosen is None:
            return None
    sample = _sample(item, chosen, np.stack([starts[chosen], ends[chosen]], 1), clip_len, jitter, rng)
    sample["pair"] = torch.arange(n)
    return sample


def _disjoint_chain(starts, ends, rows, n: int, rng) -> np.ndarray | None:
    """A chain of n pairs, each caption starting after the one before it ends and each clip's rows
    [first, stop) after the one before it, drawn uniformly from all such chains; None if there is
    none. ``counts[j, k]``: how many chains of k + 1 pairs end with pair j (O(K^2 n))."""
    follows = (ends[:, None] <= starts[None, :]) & (rows[:, None, 1] <= rows[None, :, 0])  # (K, K): i may precede j
    counts = np.zeros((len(starts), n))
    counts[:, 0] = 1.0
    for k in range(1, n):
        counts[:, k] = follows.T.astype(np.float64) @ counts[:, k - 1]
    if not counts[:, n - 1].any():
        return None
    chain = [int(rng.choice(len(starts), p=counts[:, n - 1] / counts[:, n - 1].sum()))]
    for k in range(n - 2, -1, -1):  # back from the last pair: a predecessor in proportion to its chains
        weights = follows[:, chain[-1]] * counts[:, k]
        chain.append(int(rng.choice(len(starts), p=weights / weights.sum())))
    return np.asarray(chain[::-1])


@register("milnce")
def milnce(item: dict, rng, *, n: int = 4, k: int = 5, clip_len: int = 4, jitter: bool = False) -> dict | None:
    """n clips, each in the span of a distinct random caption, with its k temporally nearest captions.

    Nearness is the distance between caption and clip centres; a clip's own caption is always among
    its candidates (a jittered clip can sit far from its caption's centre). ``texts`` holds the union
    of the candidates in temporal order; ``candidates (n, k)`` indexes it (-1 where the video has < k).
    """
    rng = np.random.default_rng(rng)
    order, starts, ends = _time_order(item)
    if len(order) == 0:
        return None
    anchors = order[np.sort(rng.choice(len(order), size=min(n, len(order)), replace=False))]
    sample = _sample(item, [], np.stack([starts[anchors], ends[anchors]], 1), clip_len, jitter, rng)
    centres = sample["clip_times"].mean(dim=1).numpy()  # (n,)
    distance = np.abs((starts + ends)[None, :] / 2 - centres[:, None])  # (n, K)
    distance[np.arange(len(anchors)), anchors] = -1.0  # the clip's own caption: always a candidate
    nearest = np.argsort(distance, axis=1, kind="stable")[:, :k]  # caption indices, (n, min(k, K))
    used = [c for c in order if c in set(nearest.ravel().tolist())]  # union, temporal order
    position = {c: j for j, c in enumerate(used)}
    candidates = torch.full((len(anchors), k), -1, dtype=torch.long)
    candidates[:, : nearest.shape[1]] = torch.tensor([[position[c] for c in row] for row in nearest.tolist()])
    anchor_of = {int(c): i for i, c in enumerate(anchors)}
    sample["texts"] = [item["texts"][c] for c in used]
    sample["pair"] = torch.tensor([anchor_of.get(int(c), -1) for c in used], dtype=torch.long)
    sample["candidates"] = candidates
    return sample


@register("pairs")
def pairs(item: dict, rng, *, n: int = 4, clip_len: int = 4, jitter: bool = False) -> dict | None:
    """n independent clip/caption pairs (distinct random captions, fewer if the video has fewer)."""
    rng = np.random.default_rng(rng)
    order, starts, ends = _time_order(item)
    if len(order) == 0:
        return None
    chosen = order[np.sort(rng.choice(len(order), size=min(n, len(order)), replace=False))]
    sample = _sample(item, chosen, np.stack([starts[chosen], ends[chosen]], 1), clip_len, jitter, rng)
    sample["pair"] = torch.arange(len(chosen))
    return sample


def collate(samples: list[dict | None], tokenizer: Tokenizer, max_len: int | None = 16) -> dict:
    """Pad and mask samples into the batch of docs/ARCHITECTURE.md section 4.

    ``None`` samples are dropped; ``batch["dropped"]`` counts them (a batch where every sample was
    dropped has B = 0: skip it). Text is (B, m, max_len), or (B, m, longest) with ``max_len=None``.
    """
    kept = [s for s in samples if s is not None]
    B = len(kept)
    n = max([len(s["clips"]) for s in kept], default=0)
    m = max([len(s["texts"]) for s in kept], default=0)
    clip_len, D = kept[0]["clips"].shape[1:] if kept else (0, 0)
    dtype = kept[0]["clips"].dtype if kept else torch.float32
    ids = tokenizer.encode([t for s in kept for t in s["texts"]], max_len)  # (sum m_b, L)
    batch = {
        "video": torch.zeros(B, n, clip_len, D, dtype=dtype),
        "video_mask": torch.zeros(B, n, dtype=torch.bool),
        "text": torch.zeros(B, m, ids.shape[1], dtype=torch.long),
        "text_mask": torch.zeros(B, m, dtype=torch.bool),
        "pair": torch.full((B, m), -1, dtype=torch.long),
        "times": torch.zeros(B, n, 2),
        "video_id": [s["video_id"] for s in kept],
        "dropped": len(samples) - B,
    }
    if any("candidates" in s for s in kept):
        K = max(s["candidates"].shape[1] for s in kept if "candidates" in s)
        batch["candidates"] = torch.full((B, n, K), -1, dtype=torch.long)
    row = 0
    for b, s in enumerate(kept):
        nb, mb = len(s["clips"]), len(s["texts"])
        batch["video"][b, :nb] = s["clips"]
        batch["video_mask"][b, :nb] = True
        batch["times"][b, :nb] = s["clip_times"]
        batch["text"][b, :mb] = ids[row:row + mb]
        batch["text_mask"][b, :mb] = True
        batch["pair"][b, :mb] = s["pair"]
        row += mb
        if "candidates" in s:
            batch["candidates"][b, :nb, : s["candidates"].shape[1]] = s["candidates"]
    return batch


class MethodCollate:
    """A DataLoader ``collate_fn``: samples every item with ``SAMPLERS[sampler]``, then collates.

    Randomness is reproducible and new every epoch: call c in the main process uses
    ``default_rng([seed, 0, c])``, call c of a DataLoader worker ``default_rng([seed, 1, worker seed, c])``
    (torch's worker seed, drawn anew for every epoch's workers from torch's RNG or the loader's
    ``generator``: seed that for the same draws again).
    """

    def __init__(self, sampler: str, tokenizer: Tokenizer, *, seed: int = 0, max_len: int | None = 16, **options):
        self.sample = get_sampler(sampler)
        valid = [p for p in inspect.signature(self.sample).parameters if p not in ("item", "rng")]
        unknown = sorted(set(options) - set(valid))
        if unknown:
            raise ValueError(f"sampler {sampler!r} has no option {unknown}; valid: {valid}")
        self.name, self.tokenizer, self.seed, self.max_len, self.options = sampler, tokenizer, seed, max_len, options
        self.calls = 0

    def __call__(self, items: list[dict]) -> dict:
        info = torch.utils.data.get_worker_info()
        stream = [0] if info is None else [1, info.seed]  # a worker's copy restarts at c = 0 each epoch
        rng = np.random.default_rng([self.seed, *stream, self.calls])
        self.calls += 1
        return collate([self.sample(item, rng, **self.options) for item in items], self.tokenizer, self.max_len)

"""``evaluate(model, dataset, tokenizer, clip_len=...)``: every protocol of METHODS.md section 3 that
the dataset supports, from one encoding pass per video.

How a video becomes clip embeddings (the same for every method, so that they compare):

* **fixed windows** ("background kept"): the video is tiled by windows of ``clip_len`` rows
  (the last one aligned to the end), encoded as one sequence ``(1, W, clip_len, D)`` so that a
  model with temporal context sees its neighbours as in training;
* **span clips** ("background removed"): one window of ``clip_len`` rows centred on each
  ground-truth segment (narrated digits) or caption span (real-format loaders), encoded as the
  sequence of those clips, like the samplers' clip-per-caption batches.

Which protocols a dataset supports is read from its items (docs/ARCHITECTURE.md section 2):
captions with spans give retrieval and video-paragraph retrieval; ``task``/``steps``/``segments``
give step localisation; ``step_labels`` (narrated digits) also give few-shot task classification
and zero-shot digit classification.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch

from .few_shot import few_shot_accuracy
from .retrieval import similarity_matrix, text_to_clip_metrics
from .step_localisation import step_localisation_recall
from .video_paragraph import video_paragraph_metrics
from .zero_shot import zero_shot_accuracy

FEW_SHOT_EPISODES = 200  # few-shot episodes of an evaluation, unless told otherwise

PROTOCOLS = ("retrieval", "video_paragraph", "step_localisation", "few_shot", "zero_shot")


def supported_protocols(item: dict) -> list[str]:
    """The protocols a dataset whose items look like ``item`` supports."""
    out = []
    if _captions(item)[2]:
        out += ["retrieval", "video_paragraph"]
    if {"task", "steps", "segments"} <= item.keys():
        out.append("step_localisation")
    if {"task", "step_labels", "segments"} <= item.keys():
        out += ["few_shot", "zero_shot"]
    return out


def _captions(item: dict) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """(starts, ends, texts) of the evaluation captions: the clean caption of each ground-truth
    segment where the item has them (narrated digits), else its caption spans (YouCook2-like)."""
    if "clean_texts" in item and "segments" in item:
        seg = torch.as_tensor(item["segments"], dtype=torch.float64).reshape(-1, 3)
        return seg[:, 1], seg[:, 2], list(item["clean_texts"])
    if "texts" in item and "starts" in item and "ends" in item:
        return (torch.as_tensor(item["starts"], dtype=torch.float64),
                torch.as_tensor(item["ends"], dtype=torch.float64), list(item["texts"]))
    return torch.zeros(0), torch.zeros(0), []


def window_starts(t_len: int, clip_len: int) -> torch.Tensor:
    """Starts of the fixed windows tiling T rows (the last aligned to the end): (W,)."""
    last = max(t_len - clip_len, 0)
    starts = torch.arange(0, last + 1, clip_len)
    if starts[-1] != last:
        starts = torch.cat([starts, torch.tensor([last])])
    return starts


def span_starts(starts: torch.Tensor, ends: torch.Tensor, t_len: int, clip_len: int) -> torch.Tensor:
    """Start row of the window centred on each span [start, end): (K,). Halves round up, as the
    training samplers' ``clip_start`` does (torch.round would take them to even: another clip)."""
    centre = (torch.as_tensor(starts, dtype=torch.float64) + torch.as_tensor(ends, dtype=torch.float64)) / 2
    return torch.floor(centre - clip_len / 2 + 0.5).long().clamp(0, max(t_len - clip_len, 0))


@torch.no_grad()
def encode_clips(model, features: torch.Tensor, starts: torch.Tensor, clip_len: int) -> torch.Tensor:
    """Embed the clips features[s : s + clip_len] for s in starts, as one sequence: (K, d).
    A video shorter than clip_len repeats its last row, as the training samplers' clips do."""
    features = torch.as_tensor(features)
    index = (starts[:, None] + torch.arange(clip_len)[None, :]).clamp_max(features.shape[0] - 1)  # (K, clip_len)
    device = _device(model)
    video = features[index][None].to(device=device, dtype=_dtype(model))  # (1, K, clip_len, D)
    return model.encode_video(video)[0].float().cpu()


class TextCache:
    """Sentence embeddings, each distinct text encoded once: ``cache(texts) -> (K, d)``."""

    def __init__(self, model, tokenizer, max_words: int | None = None, chunk: int = 256):
        self.model, self.tokenizer, self.max_words, self.chunk = model, tokenizer, max_words, chunk
        self.table: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def add(self, texts: Sequence[str]) -> None:
        new = [t for t in dict.fromkeys(texts) if t not in self.table]
        for i in range(0, len(new), self.chunk):
            part = new[i:i + self.chunk]
            ids = self.tokenizer.encode(part, self.max_words)[:, None, :]  # (K, 1, L): one sentence each
            emb = self.model.encode_text(ids.to(_device(self.model)))[:, 0].float().cpu()
            self.table.update(zip(part, emb))

    def __call__(self, texts: Sequence[str]) -> torch.Tensor:
        self.add(texts)
        return torch.stack([self.table[t] for t in texts])


def check_options(*, protocols: Sequence[str] | None = None, max_videos: int | None = None,
                  few_shot_way: int = 5, few_shot_shot: int = 1, few_shot_episodes: int = FEW_SHOT_EPISODES,
                  **_) -> None:
    """The options of :func:`evaluate` that can be checked without a model or data (so a comparison
    can check them before it trains anything); a ValueError naming the wrong one."""
    if protocols is not None:
        if isinstance(protocols, str) or not protocols:
            raise ValueError(f"protocols must be a non-empty list of: {', '.join(PROTOCOLS)}; got {protocols!r}")
        unknown = sorted(set(protocols) - set(PROTOCOLS))
        if unknown:
            raise ValueError(f"unknown protocol(s) {unknown}; valid: {', '.join(PROTOCOLS)}")
    counts = {"max_videos": max_videos, "few_shot_way": few_shot_way, "few_shot_shot": few_shot_shot,
              "few_shot_episodes": few_shot_episodes}
    for name, value in counts.items():
        if value is None and name == "max_videos":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            every = " (or None: every video)" if name == "max_videos" else ""
            raise ValueError(f"{name} must be an int >= 1{every}, got {value!r}")


def evaluate(model, dataset, tokenizer, *, clip_len: int, max_words: int | None = None,
             protocols: Sequence[str] | None = None, max_videos: int | None = None,
             few_shot_way: int = 5, few_shot_shot: int = 1, few_shot_episodes: int = FEW_SHOT_EPISODES,
             seed: int = 0) -> dict:
    """Run every protocol the dataset supports (or those named in ``protocols``); a dict of
    results per protocol plus ``meta``. Flatten it for tables with :func:`flatten_metrics`."""
    check_options(protocols=protocols, max_videos=max_videos, few_shot_way=few_shot_way, few_shot_shot=few_shot_shot,
                  few_shot_episodes=few_shot_episodes)
    n = len(dataset) if max_videos is None else min(len(dataset), max_videos)
    if n == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    items = [dataset[i] for i in range(n)]
    supported = supported_protocols(items[0])
    if protocols is None:
        protocols = supported
    missing = sorted(set(protocols) - set(supported))
    if missing:
        raise ValueError(f"this dataset does not support {missing}; it supports {supported}")

    was_training = model.training
    model.eval()
    try:
        videos = [_encode_video(model, item, clip_len) for item in items]
        texts = TextCache(model, tokenizer, max_words)
        out: dict = {}
        if "retrieval" in protocols:
            out["retrieval"] = _retrieval(items, videos, texts)
        if "video_paragraph" in protocols:
            out["video_paragraph"] = _video_paragraph(items, videos, texts)
        if "step_localisation" in protocols:
            out["step_localisation"] = _step_localisation(items, videos, texts, clip_len)
        if "few_shot" in protocols:
            out["few_shot"] = _few_shot(items, videos, few_shot_way, few_shot_shot, few_shot_episodes, seed)
        if "zero_shot" in protocols:
            out["zero_shot"] = _zero_shot(items, videos, texts)
    finally:
        model.train(was_training)
    out["meta"] = {"n_videos": n, "clip_len": clip_len, "protocols": list(protocols)}
    return out


def _encode_video(model, item: dict, clip_len: int) -> dict:
    features = torch.as_tensor(item["features"])
    t_len = features.shape[0]
    windows = window_starts(t_len, clip_len)
    starts, ends, captions = _captions(item)
    out = {"t_len": t_len, "window_starts": windows, "windows": encode_clips(model, features, windows, clip_len),
           "captions": captions}
    if captions:
        out["spans"] = encode_clips(model, features, span_starts(starts, ends, t_len, clip_len), clip_len)
    return out


def _retrieval(items, videos, texts) -> dict:
    """Text-to-clip retrieval over every caption of the split; where captions repeat, also the
    variant in which any clip with the query's exact text counts (``same_text``)."""
    with_captions = [v for v in videos if v["captions"]]
    clips = torch.cat([v["spans"] for v in with_captions])
    captions = [c for v in with_captions for c in v["captions"]]
    sim = similarity_matrix(texts(captions), clips)
    out = text_to_clip_metrics(sim)
    if len(set(captions)) < len(captions):
        ids = {c: i for i, c in enumerate(dict.fromkeys(captions))}
        out["same_text"] = text_to_clip_metrics(sim, groups=torch.tensor([ids[c] for c in captions]))
    return out


def _video_paragraph(items, videos, texts) -> dict:
    with_captions = [v for v in videos if v["captions"]]
    paragraphs = [texts(v["captions"]) for v in with_captions]
    return {
        "background_removed": video_paragraph_metrics(paragraphs, [v["spans"] for v in with_captions]),
        "background_kept": video_paragraph_metrics(paragraphs, [v["windows"] for v in with_captions]),
    }


def _step_localisation(items, videos, texts, clip_len: int) -> dict:
    rows = []
    for item, video in zip(items, videos):
        if not item["steps"]:
            continue
        # one score row per second: the window whose centre is nearest to the second's centre
        centres = video["window_starts"].double() + clip_len / 2
        seconds = torch.arange(video["t_len"], dtype=torch.float64) + 0.5
        nearest = (seconds[:, None] - centres[None, :]).abs().argmin(dim=1)  # (T,)
        sim = similarity_matrix(video["windows"], texts(item["steps"]))  # (W, K)
        rows.append((item["task"], sim[nearest], item["segments"]))
    return step_localisation_recall(rows)


def _few_shot(items, videos, n_way, k_shot, n_episodes, seed) -> dict:
    """Task classification of whole videos (fixed windows); N is lowered to the number of tasks
    with enough videos, and with fewer than two such tasks the protocol is skipped, saying why."""
    labels = [item["task"] for item in items]
    eligible = sum(1 for c in set(labels) if labels.count(c) >= k_shot + 1)
    if eligible < 2:
        return {"skipped": f"few-shot needs two tasks with >= {k_shot + 1} videos each; {eligible} have that many"}
    sequences = [v["windows"] for v in videos]
    return {score: few_shot_accuracy(sequences, labels, n_way=min(n_way, eligible), k_shot=k_shot, n_query=1,
                                     n_episodes=n_episodes, score=score, seed=seed)
            for score in ("dtw", "otam")}


def _zero_shot(items, videos, texts) -> dict:
    from vtbench.data.digit_words import digit_prompts  # the prompts live with the dataset's words

    prompts = digit_prompts()
    clips, labels = [], []
    for item, video in zip(items, videos):
        steps = torch.as_tensor(item["segments"]).reshape(-1, 3)[:, 0].long()
        clips.append(video["spans"])
        labels += [item["step_labels"][s] for s in steps.tolist()]
    out = zero_shot_accuracy(torch.cat(clips), torch.tensor(labels), texts(prompts))
    return {**out, "prompts": prompts}


def flatten_metrics(result: dict, prefix: str = "") -> dict[str, float]:
    """Nested results -> {"retrieval/R@1": ..., "video_paragraph/background_kept/dtw/R@1": ...}:
    the scalar metrics only (per-task and per-class breakdowns, counts and settings left out)."""
    skip = {"per_task", "per_class", "meta", "run", "prompts", "chance", "n_queries", "n_videos", "n_tasks", "n_clips",
            "n_way", "k_shot", "n_query", "n_episodes", "score", "tasks_without_truth", "skipped_short",
            "MeanR", "ci95"}
    flat = {}
    for key, value in result.items():
        if key in skip:
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten_metrics(value, name + "/"))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def is_percent(metric: str) -> bool:
    """Whether a flat metric (``flatten_metrics``' name) is a fraction shown in %: R@K, recall and
    accuracy; ranks (MedR) and the rest are shown as they are."""
    leaf = metric.rsplit("/", 1)[-1]
    return leaf.startswith("R@") or leaf in ("recall", "accuracy", "balanced_accuracy")


def _device(model) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def _dtype(model) -> torch.dtype:
    p = next(iter(model.parameters()), None)
    return p.dtype if p is not None and p.is_floating_point() else torch.float32

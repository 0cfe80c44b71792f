"""Pairs from real models and test videos, for the explorer and the learned-alignment figures.

A test video is cut into consecutive clips of ``clip_len`` rows (the model's clip length); its
columns are either its narration (``columns="narration"``: the weakly aligned sentences the methods
train on, fillers included) or one clean caption per ground-truth step segment
(``columns="steps"``). The ground truth marks clip i for sentence j when the clip's centre lies in
the segment the sentence describes (``narration_segment`` / ``segments``); fillers have none.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from .alignments import Pair

COLUMNS = ("narration", "steps")


@dataclass
class Embedder:
    """A trained (or untrained) DualEncoder with what it needs to embed a video and its text."""

    model: torch.nn.Module
    tokenizer: object
    clip_len: int = 4
    max_len: int | None = 16

    @classmethod
    def from_run(cls, run) -> Embedder:
        """From a loaded run (``vtbench.train.load_run``: model, config, tokenizer)."""
        return cls(run.model, run.tokenizer, run.config.clip_len, run.config.max_words)

    @torch.no_grad()
    def similarity(self, clips: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Cosine similarity (n, m) between clips (n, clip_len, D) and sentences."""
        self.model.eval()
        video = self.model.encode_video(clips[None].float())[0]  # (n, d)
        text = self.model.encode_text(self.tokenizer.encode(texts, self.max_len)[None])[0]  # (m, d)
        video = torch.nn.functional.normalize(video.double(), dim=-1)
        text = torch.nn.functional.normalize(text.double(), dim=-1)
        return video @ text.T


def untrained_embedder(train_split, *, model: str = "frames", seed: int = 0, clip_len: int = 4, **config) -> Embedder:
    """A model with random weights (what training starts from), its tokenizer fitted on
    ``train_split``'s sentences: the baseline every learned alignment should beat."""
    from vtbench.data import Tokenizer
    from vtbench.models import build_model

    tokenizer = Tokenizer.fit(train_split.all_texts())
    input_dim = int(train_split[0]["features"].shape[-1])
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        network = build_model(model, input_dim=input_dim, vocab_size=len(tokenizer), **config)
    return Embedder(network, tokenizer, clip_len)


def cut_clips(features: torch.Tensor, clip_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """features (T, D) -> clips (n, clip_len, D) and their times (n, 2) in rows; the tail that does
    not fill a clip is left out."""
    n = features.shape[0] // clip_len
    if n == 0:
        raise ValueError(f"a video of {features.shape[0]} rows is shorter than one clip ({clip_len})")
    starts = torch.arange(n, dtype=torch.float32) * clip_len
    return features[: n * clip_len].reshape(n, clip_len, -1), torch.stack([starts, starts + clip_len], 1)


def clip_truth(times: torch.Tensor, segments: torch.Tensor, segment_of_column: torch.Tensor) -> torch.Tensor:
    """(n, m) bool: clip i's centre lies in segment ``segment_of_column[j]`` (-1: no segment)."""
    centre = times.mean(1)[:, None]  # (n, 1)
    rows = segment_of_column.clamp_min(0)
    start, end = segments[rows, 1][None, :], segments[rows, 2][None, :]  # (1, m)
    return (centre >= start) & (centre < end) & (segment_of_column >= 0)[None, :]


def _short(text: str, width: int = 22) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def video_pair(item: Mapping, embedder: Embedder, columns: str = "narration", name: str | None = None) -> Pair:
    """One dataset item (docs/ARCHITECTURE.md section 2) embedded by ``embedder`` as a Pair."""
    if columns not in COLUMNS:
        raise ValueError(f"columns must be one of {COLUMNS}, got {columns!r}")
    clips, times = cut_clips(item["features"], embedder.clip_len)
    segments = item["segments"]
    if columns == "narration":
        texts, of_column = list(item["texts"]), torch.as_tensor(item["narration_segment"], dtype=torch.long)
    else:
        texts, of_column = list(item["clean_texts"]), torch.arange(len(segments))
    return Pair(
        name=name or str(item["video_id"]),
        similarity=embedder.similarity(clips, texts),
        truth=clip_truth(times, segments, of_column),
        row_labels=[f"{int(s)}-{int(e)} s" for s, e in times.tolist()],
        col_labels=[_short(t) for t in texts],
        note=f"{len(texts)} {'sentences' if columns == 'narration' else 'steps'}; task {item.get('task', '?')}",
    )


class DatasetSource:
    """Explorer source: ``models`` {name: Embedder} against the first ``max_videos`` items of
    ``dataset``; pairs are built on demand (the explorer caches them)."""

    def __init__(self, dataset, models: Mapping[str, Embedder], *, columns: str = "narration", max_videos: int = 12):
        if not models:
            raise ValueError("DatasetSource needs at least one model")
        self.dataset, self.embedders, self.columns = dataset, dict(models), columns
        self.models = list(self.embedders)
        count = min(max_videos, len(dataset))
        self._index = {str(dataset[i]["video_id"]): i for i in range(count)}
        self.videos = list(self._index)

    def pair(self, model: str, video: str) -> Pair:
        item = self.dataset[self._index[video]]
        return video_pair(item, self.embedders[model], self.columns, name=f"{video} · {model}")

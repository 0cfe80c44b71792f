"""Training data: the dataset, its tokenizer, and the batch of every step.

Batches are a pure function of (seed, step): step s draws its videos with
``default_rng([seed, s])`` and samples global slot j with ``default_rng([seed, s, j])``, so a
resumed run sees exactly the batches it would have seen, and a run over W processes (each taking
its B / W slots) sees the same global batch as one process. Every batch is padded to fixed
shapes (B, n, ...) so that processes can gather each other's tensors; padded videos are masked
out and change no loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..data import Tokenizer, build_dataset, collate, get_sampler
from ..losses import sampler_for
from .config import TrainConfig


@dataclass
class TrainingData:
    dataset: torch.utils.data.Dataset
    tokenizer: Tokenizer
    sampler: str
    options: dict
    input_dim: int
    eligible: np.ndarray  # indices of the videos the sampler can use (others are never drawn)

    @property
    def max_captions(self) -> int:
        """m: captions per video in a batch (MIL-NCE: the union of the clips' candidates)."""
        return self.options["n"] * self.options.get("k", 1)


def dataset_kwargs(config: TrainConfig) -> dict:
    """The arguments of ``vtbench.data.build_dataset`` that the config names."""
    if config.data == "narrated-digits":
        return {"seed": config.data_seed, "preset": config.data_preset or None, "noise": config.data_noise}
    paths = {"howto100m": ("captions", "features"), "youcook2": ("csv_or_json", "features"),
             "msrvtt": ("csv", "features"), "crosstask": ("root", "features")}
    if config.data not in paths:
        raise ValueError(f"unknown dataset {config.data!r}; valid: narrated-digits, {', '.join(paths)}")
    first, second = paths[config.data]
    optional = config.data == "crosstask"  # its features default to root/features
    if not config.data_path or not (config.features_path or optional):
        raise ValueError(f"data={config.data!r} needs --set data_path=... and features_path=...")
    return {first: config.data_path, **({second: config.features_path} if config.features_path else {})}


def corpus(dataset) -> list[str]:
    """The sentences to fit the tokenizer on."""
    if hasattr(dataset, "all_texts"):
        return list(dataset.all_texts())
    return [t for i in range(len(dataset)) for t in dataset[i]["texts"]]


def load_training_data(config: TrainConfig, tokenizer: Tokenizer | None = None) -> TrainingData:
    """The train split, the tokenizer (fitted on it unless given) and the sampler of the method.

    Videos the sampler cannot use (e.g. TempCLR: fewer than n non-overlapping captions) are left
    out up front, as the published data loaders do; a ValueError when the split is empty or no
    video is left."""
    dataset = build_dataset(config.data, "train", **dataset_kwargs(config))
    if len(dataset) == 0:
        raise ValueError(f"the {config.data!r} train split is empty: nothing to train on")
    sampler = sampler_for(config.method)
    options = {"n": config.n_clips, "clip_len": config.clip_len, "jitter": config.jitter}
    if sampler == "milnce":
        options["k"] = config.n_candidates
    tokenizer = tokenizer or Tokenizer.fit(corpus(dataset))
    sample = get_sampler(sampler)
    eligible = np.array([i for i in range(len(dataset)) if sample(dataset[i], np.random.default_rng(i), **options) is not None])
    if len(eligible) == 0:
        raise ValueError(f"no video of the {config.data!r} train split gives what {config.method!r} needs "
                         f"(sampler {sampler!r} with {options}); e.g. lower n_clips")
    if len(eligible) < config.batch_size:  # a batch would hold a video twice, each copy the other's negative
        raise ValueError(f"batch_size={config.batch_size} exceeds the {len(eligible)} videos of the {config.data!r} "
                         f"train split that give what {config.method!r} needs (sampler {sampler!r} with {options}); "
                         f"lower batch_size")
    return TrainingData(dataset, tokenizer, sampler, options, int(dataset[0]["features"].shape[-1]), eligible)


def pad_batch(batch: dict, b: int, n: int, m: int, clip_len: int, dim: int, words: int, k: int | None) -> dict:
    """Pad a collated batch to exactly (b, n, ...) videos/clips and m captions (masked padding)."""
    shapes = {"video": ((b, n, clip_len, dim), 0.0), "video_mask": ((b, n), False), "text": ((b, m, words), 0),
              "text_mask": ((b, m), False), "pair": ((b, m), -1), "times": ((b, n, 2), 0.0)}
    if k is not None:
        shapes["candidates"] = ((b, n, k), -1)
    out = dict(batch)
    for key, (shape, fill) in shapes.items():
        x = batch.get(key)
        dtype = x.dtype if x is not None else {bool: torch.bool, int: torch.long, float: torch.float32}[type(fill)]
        padded = torch.full(shape, fill, dtype=dtype)
        if x is not None and x.numel():
            if any(s > t for s, t in zip(x.shape, shape)):
                raise ValueError(f"batch[{key!r}] of shape {tuple(x.shape)} exceeds {shape}")
            padded[tuple(slice(0, s) for s in x.shape)] = x
        out[key] = padded
    out["video_id"] = list(batch.get("video_id", [])) + [""] * (b - len(batch.get("video_id", [])))
    return out


def batch_for_step(data: TrainingData, config: TrainConfig, step: int, rank: int = 0, world_size: int = 1) -> dict:
    """This process's part of the global batch of ``step`` (CPU tensors, fixed shapes)."""
    if config.batch_size % world_size:
        raise ValueError(f"batch_size={config.batch_size} must be divisible by the {world_size} processes")
    per_process = config.batch_size // world_size
    size = len(data.eligible)
    draw = np.random.default_rng([config.seed, step]).choice(size, config.batch_size, replace=False)
    videos = data.eligible[draw]
    slots = range(rank * per_process, (rank + 1) * per_process)
    sample = get_sampler(data.sampler)
    samples = [sample(data.dataset[int(videos[j])], np.random.default_rng([config.seed, step, j]), **data.options)
               for j in slots]
    batch = collate(samples, data.tokenizer, config.max_words)
    k = data.options.get("k")
    return pad_batch(batch, per_process, data.options["n"], data.max_captions, config.clip_len, data.input_dim,
                     config.max_words, k)


def to_device(batch: dict, device: torch.device) -> dict:
    """The batch's tensors on ``device``. To a GPU from pinned memory without blocking: a blocking
    copy returns only once the GPU has run every kernel queued before it."""
    if device.type != "cuda":
        return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    return {k: v.pin_memory().to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v
            for k, v in batch.items()}

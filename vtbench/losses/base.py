"""What every loss shares: its output, the gather convention and a few batch helpers.

Many processes. Each process holds B of the videos of a global batch of W * B. A loss is called
as ``loss(video_emb, text_emb, batch, gather=...)`` where ``gather(x)`` concatenates x (B, ...)
over the processes along dim 0 with gradients flowing back (the trainer passes its
``Context.gather``: under torchrun a ``vtbench.train.distributed.DistributedGather``; the default
:data:`LOCAL` is the identity). Each process computes the terms of its own rows against every
gathered column and returns its *share* of the global loss, sum(own row terms) / (rows of the
global batch): the shares of all processes add up to the global loss, and with one process the
share is the plain formula. (Under DistributedDataParallel, which averages gradients, the trainer
back-propagates W * share.)
``stats`` are numbers that also add up over processes (loss terms as shares, counts as counts), as
floats or detached 0-d tensors: the trainer reads all of them back in one transfer per step.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import torch

from ..align.checks import checking_values, value_range


@dataclass
class LossOutput:
    """``loss``: this process's share of the global loss (a scalar tensor); ``stats``: numbers
    (floats or detached 0-d tensors) that add up over processes, e.g. the share of each loss term
    and counts of rows."""

    loss: torch.Tensor
    stats: dict[str, float | torch.Tensor] = field(default_factory=dict)


class Gather(Protocol):
    rank: int
    world_size: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, ...) on every process -> (W * B, ...), process r's rows at r * B, differentiable."""


class LocalGather:
    """The identity gather of a single process."""

    rank = 0
    world_size = 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def __repr__(self) -> str:
        return "LocalGather()"


LOCAL = LocalGather()


def gather_mask(gather: Gather, mask: torch.Tensor) -> torch.Tensor:
    """Gather a bool mask (B, ...) -> (W * B, ...) (sent as float: not every backend sends bools)."""
    return gather(mask.float()) > 0.5


def own_rows(gather: Gather, rows: int) -> slice:
    """Where this process's ``rows`` rows sit inside a gathered tensor."""
    return slice(gather.rank * rows, (gather.rank + 1) * rows)


def lengths(mask: torch.Tensor, name: str) -> torch.Tensor:
    """Per-row lengths of a prefix mask (B, n) -> (B,); a mask with holes is a ValueError
    (the alignment losses need each sequence to be a prefix of its padded tensor)."""
    counts = mask.long().sum(-1)
    prefix = torch.arange(mask.shape[-1], device=mask.device) < counts[..., None]
    if checking_values() and not torch.equal(prefix, mask.bool()):  # (unchecked: taken as the prefix of its count)
        raise ValueError(f"{name} must be a prefix mask (valid entries first, padding last)")
    return counts


def paired_clips(video_emb: torch.Tensor, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The clip paired with each caption: (B, m, d), and which captions have one: (B, m) bool.

    Uses ``batch["pair"]`` (B, m) (clip index, -1 for none) and the masks when present.
    """
    b, m = batch["pair"].shape
    pair = batch["pair"].to(video_emb.device)
    valid = pair >= 0
    if "text_mask" in batch:
        valid &= batch["text_mask"].to(valid.device).bool()
    index = pair.clamp_min(0)
    if "video_mask" in batch:
        valid &= torch.gather(batch["video_mask"].to(valid.device).bool(), 1, index)
    clips = torch.gather(video_emb, 1, index[..., None].expand(b, m, video_emb.shape[-1]))  # (B, m, d)
    return clips, valid


def masked_logsumexp(logits: torch.Tensor, mask: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """logsumexp over the entries where mask is True (rows with none give -inf)."""
    return torch.logsumexp(logits.masked_fill(~mask, float("-inf")), dim=dim)


def check_embeddings(video_emb: torch.Tensor, text_emb: torch.Tensor, batch: dict,
                     required: tuple[str, ...] = ()) -> None:
    """ValueError naming the argument or batch key unless video_emb (B, n, d), text_emb (B, m, d),
    the batch holds the ``required`` keys, the masks are (B, n), (B, m), ``pair`` (B, m) holds clip
    indices in -1..n-1 and ``candidates`` (B, n, K) caption indices in -1..m-1."""
    if video_emb.dim() != 3 or text_emb.dim() != 3:
        raise ValueError(f"video_emb must be (B, n, d) and text_emb (B, m, d), "
                         f"got {tuple(video_emb.shape)} and {tuple(text_emb.shape)}")
    if video_emb.shape[0] != text_emb.shape[0] or video_emb.shape[-1] != text_emb.shape[-1]:
        raise ValueError(f"video_emb {tuple(video_emb.shape)} and text_emb {tuple(text_emb.shape)} must share B and d")
    missing = [key for key in required if key not in batch]
    if missing:
        raise ValueError(f"batch has no {missing}, which this loss needs; it has {sorted(batch)}")
    (b, n, _), m = video_emb.shape, text_emb.shape[1]
    for key, size in (("video_mask", (b, n)), ("text_mask", (b, m)), ("pair", (b, m))):
        if key in batch and tuple(batch[key].shape) != size:
            raise ValueError(f"batch[{key!r}] has shape {tuple(batch[key].shape)}, expected {size}")
    if "candidates" in batch and (batch["candidates"].dim() != 3 or tuple(batch["candidates"].shape[:2]) != (b, n)):
        raise ValueError(f"batch['candidates'] has shape {tuple(batch['candidates'].shape)}, expected ({b}, {n}, K)")
    for key, size, what in (("pair", n, "clip"), ("candidates", m, "caption")):
        if key in batch:
            check_indices(batch[key], size, f"batch[{key!r}]", what)


def check_indices(index: torch.Tensor, size: int, name: str, what: str) -> None:
    """An int64 or int32 tensor (what torch.gather takes) of indices in 0..size-1, or -1 for none;
    else a ValueError naming ``name``."""
    if index.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"{name} must hold {what} indices as int64 or int32, got {index.dtype}")
    if not index.numel() or not checking_values():
        return
    low, high = value_range(index)
    if low < -1 or high >= size:
        raise ValueError(f"{name} must hold {what} indices in 0..{size - 1} (or -1 for none), got values in {low}..{high}")


def check_number(name: str, value, *, at_least: float | None = None, above: float | None = None) -> float:
    """A hyperparameter as a float: a finite number, >= ``at_least``, > ``above``; else a
    ValueError naming it."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (at_least is None or value >= at_least) and (above is None or value > above)
    if not ok:
        bound = f" >= {at_least}" if at_least is not None else f" > {above}" if above is not None else ""
        raise ValueError(f"{name} must be a finite number{bound}, got {value!r}")
    return float(value)


def check_count(name: str, value, at_least: int) -> int:
    """A hyperparameter that counts something: an int >= ``at_least``; else a ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < at_least:
        raise ValueError(f"{name} must be an int >= {at_least}, got {value!r}")
    return value


def num(x) -> float | torch.Tensor:
    """A stats value: a tensor detached and kept where it is (reading it back here would cost a
    device sync per stat: the trainer reads them all at once), anything else a float."""
    return x.detach() if isinstance(x, torch.Tensor) else float(x)


def share(total: torch.Tensor, count: torch.Tensor | int) -> torch.Tensor:
    """sum of own row terms / rows in the global batch (0 rows: a zero that keeps the graph)."""
    count = torch.as_tensor(count, dtype=total.dtype, device=total.device)
    return total / count.clamp_min(1)

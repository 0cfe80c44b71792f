"""The only module of vtbench that touches torch.distributed.

Under torchrun (WORLD_SIZE > 1 in the environment) :func:`setup` joins the process group (gloo on
CPU, NCCL on CUDA). :class:`DistributedGather` concatenates a tensor over the processes with
``torch.distributed.nn.functional.all_gather``, whose backward sums every process's gradient
back into the slice each process sent: negatives drawn from other processes train this
process's encoders too (the published VT-TWINS gather, a hand-written autograd function,
drops those gradients).
"""
from __future__ import annotations

import atexit
import os
import warnings
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..losses import LOCAL, Gather


class DistributedGather:
    """``gather(x)``: x (B, ...) on every process -> (W * B, ...) with gradients flowing back."""

    def __init__(self, rank: int, world_size: int):
        self.rank, self.world_size = rank, world_size

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        from torch.distributed.nn.functional import all_gather

        with warnings.catch_warnings():  # deprecated in torch 2.13 for a private API; still the public one
            warnings.simplefilter("ignore", FutureWarning)
            out = torch.cat(all_gather(x.contiguous()), dim=0)
        if out.requires_grad:
            # all_gather's backward sends the incoming gradients as they are, and gloo sends a
            # non-contiguous tensor's memory in storage order: make them contiguous first.
            out.register_hook(torch.Tensor.contiguous)
        return out

    def __repr__(self) -> str:
        return f"DistributedGather(rank={self.rank}, world_size={self.world_size})"


@dataclass
class Context:
    """Where this process runs: its rank, the world size, its device and its gather."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    gather: Gather = LOCAL

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """auto -> cuda (this process's local rank) when available, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={name!r} but CUDA is not available here; use device=cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def setup(device: str = "auto") -> Context:
    """Join the process group when launched by torchrun, else a single-process context."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Context(device=resolve_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda:"):
        raise ValueError(f"device={device!r} under torchrun would put every process on one GPU: "
                         f"use device=cuda (or auto), and each process takes cuda:LOCAL_RANK")
    dev = resolve_device(device, local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)  # before the process group, so NCCL binds this process's GPU
    if not dist.is_initialized():  # else the caller's own group, which it keeps and destroys
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        atexit.register(_destroy_group)
    return Context(rank, world_size, local_rank, dev, DistributedGather(rank, world_size))


def _destroy_group() -> None:
    """At exit, the group vtbench started: it lives as long as the process, so that a second
    train() in it (a comparison, an ablation, a notebook) finds it. Destroyed and started again
    between two runs, every process had to take part in both at once, and they deadlocked."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, ctx: Context) -> torch.Tensor:
    """Sum a tensor over the processes (no gradient); identity on one process."""
    values = values.detach().clone()
    if ctx.distributed:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        dist.barrier()


def wrap(module: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """DistributedDataParallel around ``module`` when there are several processes."""
    if not ctx.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(module, device_ids=ids)

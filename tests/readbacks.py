"""Counting device read-backs (item, float, tolist, bool, equal: on a GPU each waits for the queue to
drain) by the vtbench source file that asked for them."""
import os
import traceback
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

import vtbench

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(vtbench.__file__))) + "/"  # the folder holding the package
_READS = (torch.ops.aten._local_scalar_dense.default, torch.ops.aten.equal.default, torch.ops.aten.is_nonzero.default)


def innermost() -> str:
    """The innermost frame of vtbench's source on the stack, as a path below ROOT, or "torch.optim"
    while an optimiser runs."""
    for frame in reversed(traceback.extract_stack()):
        if "/torch/optim/" in frame.filename:
            return "torch.optim"
        if frame.filename.startswith(ROOT + "vtbench/"):
            return frame.filename[len(ROOT):]
    return "?"


class _Dispatch(TorchDispatchMode):
    def __init__(self, where: Counter):
        super().__init__()
        self.where = where

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in _READS:
            self.where[innermost()] += 1
        return func(*args, **(kwargs or {}))


class _Function(TorchFunctionMode):
    def __init__(self, where: Counter):
        super().__init__()
        self.where = where

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.Tensor.tolist:  # no dispatch on CPU tensors: seen here
            self.where[innermost()] += 1
        return func(*args, **(kwargs or {}))


class ReadBacks:
    """``with ReadBacks() as reads: ...``; then ``reads.where`` counts them by file."""

    def __init__(self):
        self.where = Counter()
        self._modes = (_Function(self.where), _Dispatch(self.where))

    def __enter__(self):
        for mode in self._modes:
            mode.__enter__()
        return self

    def __exit__(self, *exc):
        for mode in reversed(self._modes):
            mode.__exit__(*exc)
        return False

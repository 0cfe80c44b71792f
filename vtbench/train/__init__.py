"""Training: a flat config, the loop, atomic checkpoints, and the only module touching
torch.distributed. The library (align, losses, models, data, eval) never imports this package.

>>> from vtbench.train import make_config, train, load_run       # doctest: +SKIP
>>> run_dir = train(make_config("vt-twins", "quick", out="runs/vt-twins"))  # doctest: +SKIP
>>> run = load_run(run_dir); run.model.encode_text(...)           # doctest: +SKIP
"""
from .checkpoint import CheckpointError
from .config import PRESETS, TrainConfig, make_config, parse_overrides, valid_keys
from .loop import Objective, Run, TrainingDiverged, load_run, train

__all__ = [
    "PRESETS", "CheckpointError", "Objective", "Run", "TrainConfig", "TrainingDiverged", "load_run",
    "make_config", "parse_overrides", "train", "valid_keys",
]

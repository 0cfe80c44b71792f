"""Experiments on top of the trainer: evaluate a run, compare every method over seeds, ablations.

>>> from vtbench.experiments import evaluate_run, run_comparison, noise_ablation   # doctest: +SKIP
>>> evaluate_run("runs/vt-twins")["retrieval"]["R@1"]                               # doctest: +SKIP
"""
from .ablation import ablation, noise_ablation, noise_overrides
from .compare import METHODS, run_comparison, summarise
from .evaluate import eval_dataset, evaluate_loaded, evaluate_run, untrained_run

__all__ = ["METHODS", "ablation", "eval_dataset", "evaluate_loaded", "evaluate_run", "noise_ablation", "noise_overrides",
           "run_comparison", "summarise", "untrained_run"]

"""Training objectives: InfoNCE, MIL-NCE, VT-TWINS, TempCLR and Cali-NCE (a reconstruction).

Each is an ``nn.Module`` called as ``loss(video_emb (B, n, d), text_emb (B, m, d), batch,
gather=LOCAL) -> LossOutput(loss, stats)``; see :mod:`vtbench.losses.base` for how ``gather``
spreads a global batch over processes.

>>> from vtbench.losses import LOSSES, build_loss
>>> list(LOSSES)
['infonce', 'milnce', 'vt-twins', 'tempclr', 'cali-nce']
"""
from .base import LOCAL, Gather, LocalGather, LossOutput
from .cali_nce import CaliNCE, CorrespondenceHead
from .infonce import InfoNCE, Temperature, pair_nce_terms
from .milnce import MILNCE
from .orders import count_orders, sample_orders
from .registry import LOSSES, build_loss, hyperparameters, loss_parameters, loss_types, register_loss, sampler_for
from .tda import local_permutations
from .tempclr import TempCLR
from .vt_twins import VTTwins

__all__ = [
    "LOCAL", "LOSSES", "CaliNCE", "CorrespondenceHead", "Gather", "InfoNCE", "LocalGather", "LossOutput",
    "MILNCE", "TempCLR", "Temperature", "VTTwins", "build_loss", "count_orders", "local_permutations",
    "hyperparameters", "loss_parameters", "loss_types", "pair_nce_terms", "register_loss", "sample_orders",
    "sampler_for",
]

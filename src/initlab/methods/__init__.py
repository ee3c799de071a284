"""Data-driven, residual-aware and transfer initialization of whole models.

Owns LSUV (one forward sweep) and its O(L^2) reference, data-dependent and weight-norm init, the residual
rules (Fixup and its module transform, SkipInit/ReZero, zero-init norm gamma, T-Fixup, DeepNorm, GPT-2
scaling), delta-orthogonal/orthogonal model schemes and ``transfer``. May import the catalog, backends and
:mod:`initlab.model` (layer discovery, residual branches, ``init_model``, ``ModelState``); never diagnostics,
lab or cli.
"""

from ._sweep import DataInitError
from .datadep import DataInitReport, data_dependent_init, weight_norm_init
from .lsuv import LayerCalibration, LSUVReport, lsuv, lsuv_reference
from .residual import ResidualError, TransformReport, fixup, skipinit
from .transfer import TransferError, TransferReport, transfer

__all__ = [
    "DataInitError", "DataInitReport", "LSUVReport", "LayerCalibration", "ResidualError", "TransferError",
    "TransferReport", "TransformReport", "data_dependent_init", "fixup", "lsuv", "lsuv_reference", "skipinit",
    "transfer", "weight_norm_init",
]

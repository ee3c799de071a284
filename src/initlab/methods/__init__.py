"""Data-driven, residual-aware and transfer initialization of whole models.

Owns LSUV (one forward sweep) and its O(L^2) reference, data-dependent and weight-norm init, the residual
rules (Fixup and its module transform, SkipInit/ReZero, zero-init norm gamma, T-Fixup, DeepNorm, GPT-2
scaling), delta-orthogonal/orthogonal model schemes and ``transfer``. May import the catalog, backends and
:mod:`initlab.model` (layer discovery, residual branches, ``init_model``, ``ModelState``); never diagnostics,
lab or cli.
"""

from ._sweep import DataInitError
from .lsuv import LayerCalibration, LSUVReport, lsuv, lsuv_reference
from .transfer import TransferError, TransferReport, transfer

__all__ = [
    "DataInitError", "LSUVReport", "LayerCalibration", "TransferError", "TransferReport", "lsuv",
    "lsuv_reference", "transfer",
]

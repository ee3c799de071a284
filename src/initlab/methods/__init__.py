"""Data-driven, residual-aware and transfer initialization of whole models.

Owns LSUV (one forward sweep) and its O(L^2) reference, data-dependent and weight-norm init, the residual
rules (Fixup and its module transform, SkipInit/ReZero, zero-init norm gamma, T-Fixup, DeepNorm, GPT-2
scaling), delta-orthogonal/orthogonal model schemes and ``transfer``. May import the catalog, backends and
:mod:`initlab.model` (layer discovery, residual branches, ``init_model``, ``ModelState``); never diagnostics,
lab or cli.
"""

from ._sweep import DataInitError
from .datadep import DataInitReport, data_dependent_init, weight_norm_init  # noqa: F401 (re-exports, see below)
from .lsuv import LayerCalibration, LSUVReport, lsuv, lsuv_reference  # noqa: F401 (re-exports, see below)
from .residual import ResidualError, TransformReport, fixup, skipinit  # noqa: F401 (re-exports, see below)
from .transfer import TransferError, TransferReport, transfer  # noqa: F401 (re-exports, see below)

# Also here, listed once in ``initlab.__all__`` (their one documented path, ``initlab.<name>``): lsuv, fixup,
# transfer, lsuv_reference, skipinit, data_dependent_init, weight_norm_init.
__all__ = [
    "DataInitError", "DataInitReport", "LSUVReport", "LayerCalibration", "ResidualError", "TransferError",
    "TransferReport", "TransformReport",
]

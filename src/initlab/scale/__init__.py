"""initlab.scale: counter-based generation, sharded init and big-model materialization.

Owns the Philox4x32-10 counter-based generator (every value a pure function of seed, the parameter's qualified
name and the element's global index), its CPU (numba, with a numpy fallback) and CUDA (Triton) kernels,
``counter_fill_`` for catalog draws, ``init_sharded`` for FSDP2/DTensor models built on the meta device, and
``materialize`` for models too big to build twice. May import the catalog, the backends and ``initlab.model``;
the catalog, backends and model never import it (``init_model(generator="counter")`` loads it on demand).
Submodules load on first use, so ``initlab.scale.philox`` needs neither torch nor numba.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "counter_fill_": "initlab.scale.fill",
    "generate": "initlab.scale.fill",
    "has_numba": "initlab.scale.fill",
    "init_sharded": "initlab.scale.distributed",
    "materialize": "initlab.scale.big_model",
    "apply_plan_counter": "initlab.scale.plan_fill",
    "derive_key": "initlab.scale.philox",
    "philox4x32": "initlab.scale.philox",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'initlab.scale' has no attribute {name!r}")

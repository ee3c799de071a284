"""initlab.scale: sharded init and big-model materialization.

Owns ``init_sharded`` for FSDP2/DTensor models built on the meta device (each rank draws its own pieces) and
``materialize`` for models too big to build twice, both on the counter-based generator
(:mod:`initlab.backends.counter`, re-exported here: ``counter_fill_``, ``generate``, ``derive_key``...) and
the plans of :mod:`initlab.model` (drawn piecewise by :mod:`initlab.model.plan_counter`). May import the
catalog, the backends and ``initlab.model``; none of them imports it. Names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "counter_fill_": "initlab.backends.counter.fill",
    "generate": "initlab.backends.counter.fill",
    "has_numba": "initlab.backends.counter.fill",
    "init_sharded": "initlab.scale.distributed",
    "materialize": "initlab.scale.big_model",
    "on_meta": "initlab.scale.big_model",
    "apply_plan_counter": "initlab.model.plan_counter",
    "derive_key": "initlab.backends.counter.philox",
    "philox4x32": "initlab.backends.counter.philox",
}

# Also here, listed once elsewhere (their one documented path): materialize and on_meta in
# ``initlab.__all__``, init_sharded in ``initlab.distributed.__all__``.
__all__ = [n for n in _LAZY if n not in ("materialize", "on_meta", "init_sharded")]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'initlab.scale' has no attribute {name!r}")

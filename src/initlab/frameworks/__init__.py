"""What Keras, JAX and Flax share: one "auto" reasoning for three frameworks.

Owns the *shadow* path: a framework's discovery describes its model as a torch skeleton on the meta device
(the same layers, shapes and activations, named by layer order: ``layers.0.weight``), :func:`plan_shadow`
plans it with :func:`initlab.model.init_model` (``dry_run``: the same chooser, rules and report as PyTorch)
and :func:`draw_plan` draws every assignment with the counter-based generator into CPU tensors in torch's
layout; the framework then writes them, transposed to its own layout. ``key="order"`` names each parameter by
its layer's position, so that equivalent torch, Keras and Flax models get bit-identical weights for a seed:
:func:`init_torch` initializes a torch model that way.

May import the catalog, backends and model packages and torch; never keras, jax or flax (their packages import
this one, not the reverse)."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {"host_sample": "._host", "resolve": "._host", "Draws": "._shadow",
         "ShadowBuilder": "._shadow",
         "draw_plan": "._shadow", "init_torch": "._shadow", "order_names": "._shadow",
         "plan_shadow": "._shadow", "relabel": "._shadow"}
__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:  # torch loads only with the shadow path, not for a Keras initializer
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)

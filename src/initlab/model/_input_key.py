"""The identity of an ``example_input``, for the graph cache of hooks discovery.

A graph found by running the model (hooks) depends on the input it ran on (shapes, masks, control flow on
values). It is reused only for the same input objects, unmodified: the same tensors (held weakly, so a new
tensor at a recycled address never matches), at the same version counter (an in-place write bumps it) and
shape, and equal non-tensor leaves (ints, strings, None...)."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import torch

_LEAF = (type(None), bool, int, float, str)


class InputKey:
    def __init__(self, example: Any):
        tensors: list[torch.Tensor] = []
        self.spec = _spec(example, tensors)
        self.refs = [weakref.ref(t) for t in tensors]
        self.state = [(t._version, tuple(t.shape), t.dtype, t.device) for t in tensors]
        self.ok = self.spec is not None

    def matches(self, example: Any) -> bool:
        if not self.ok:
            return False
        tensors: list[torch.Tensor] = []
        if _spec(example, tensors) != self.spec or len(tensors) != len(self.refs):
            return False
        return all(
            r() is t and (t._version, tuple(t.shape), t.dtype, t.device) == s
            for r, t, s in zip(self.refs, tensors, self.state, strict=True)
        )


def _spec(x: Any, tensors: list[torch.Tensor], depth: int = 4) -> Any:
    """The structure of ``x`` with tensors replaced by their position; None when something in it cannot be
    compared by value (an arbitrary object: never cached)."""
    if isinstance(x, torch.Tensor):
        tensors.append(x)
        return ("t", len(tensors) - 1)
    if type(x) in _LEAF:
        return x
    if depth <= 0:
        return None
    if isinstance(x, Mapping):
        items = tuple((k, _spec(v, tensors, depth - 1)) for k, v in x.items())
        return None if any(v is None and x[k] is not None for k, v in items) else ("map", items)
    if isinstance(x, tuple | list):
        items = tuple(_spec(v, tensors, depth - 1) for v in x)
        return None if any(s is None and v is not None for s, v in zip(items, x, strict=True)) else (
            type(x).__name__, items)
    return None

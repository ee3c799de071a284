"""What a discovered graph depends on, as one hashable value: the key of the graph cache.

A graph (and every plan made from it) is a function of the model's modules -- their identities, types and
train/eval flags --, of the Python attributes ``forward`` reads (an activation's slope, a control-flow flag
such as ``self.residual``, a functional activation stored as ``self.act = F.gelu``, a config object), of the
modules' forward hooks, of the parameters' identities, shapes, dtypes and devices, and of a one-slope PReLU's
value. The fingerprint holds all of these by value or by ``id`` (never a strong reference to the model or
anything that could refer back to it), so a change made after a first call is seen and the next call
rediscovers instead of reusing a stale plan.
"""

from __future__ import annotations

import enum
import types
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

_MODULE_INTERNALS = frozenset(nn.Module().__dict__) - {"training"}
_SCALARS = (type(None), bool, int, float, complex, str, bytes, enum.Enum, torch.dtype, torch.device)
_FAST = frozenset({type(None), bool, int, float, str})
_SEQS = frozenset({tuple, list})
_MAX_ITEMS = 64  # longer containers are keyed by identity and length
_DEPTH = 3  # how deep into plain objects (configs) attributes are read


def fingerprint(modules: Mapping[str, nn.Module], params: Mapping[str, torch.Tensor]) -> Any:
    """The cache key of the graph of the model whose :func:`.graph.named_tensors` are ``modules, params``.

    Forward hooks are part of it (fx traces through a submodule's hooks) and so are the parameters' dtypes
    and devices (``model.double()`` or ``.to(device)`` keep the Parameter objects). Written as plain loops:
    it runs on every ``init_model`` call, cached or not."""
    memo: dict[int, Any] = {}
    mods = []
    for n, m in modules.items():
        mods.append((n, id(m), type(m), m.training, tuple(m._forward_pre_hooks), tuple(m._forward_hooks),
                     _attributes(m, memo)))
    return tuple(mods), tuple([(n, id(p), p.shape, p.dtype, p.device) for n, p in params.items()])


def _attributes(module: nn.Module, memo: dict[int, Any]) -> tuple[Any, ...]:
    items = [(k, v if type(v) in _FAST else _token(v, memo, _DEPTH))
             for k, v in module.__dict__.items() if k not in _MODULE_INTERNALS]
    if isinstance(module, nn.PReLU) and module.weight.numel() == 1 and module.weight.device.type != "meta":
        items.append(("<slope>", float(module.weight.detach().reshape(()))))
    return tuple(items)


def _token(v: Any, memo: dict[int, Any], depth: int) -> Any:
    """A hashable stand-in for ``v`` that changes when ``v`` changes in a way ``forward`` could read."""
    t = type(v)
    if t in _SEQS and len(v) <= _MAX_ITEMS and _FAST.issuperset(map(type, v)):
        return v if t is tuple else (t, tuple(v))  # a conv's padding tuples, its reversed-padding list
    if isinstance(v, _SCALARS):
        return v
    if isinstance(v, type):
        return v
    if isinstance(v, torch.Tensor):
        return ("tensor", id(v), tuple(v.shape), v.dtype)
    if isinstance(v, nn.Module):
        return ("module", id(v))
    if isinstance(v, types.MethodType):
        return ("method", id(v.__func__), id(v.__self__))
    if isinstance(v, types.FunctionType | types.BuiltinFunctionType):
        return ("fn", id(v), getattr(v, "__qualname__", ""), id(getattr(v, "__code__", None)))
    if isinstance(v, list | tuple | set | frozenset | dict):
        if len(v) > _MAX_ITEMS or depth <= 0:
            return ("seq", type(v), id(v), len(v))
        items: Any = v.items() if isinstance(v, dict) else v
        if isinstance(v, set | frozenset):
            items = sorted(v, key=repr)
        return (type(v), tuple(_token(x, memo, depth - 1) for x in items))
    key = id(v)
    if key not in memo:
        memo[key] = ("obj", type(v), key)  # a cycle through this object stops here
        attrs = getattr(v, "__dict__", None)
        if isinstance(attrs, dict) and depth > 0 and len(attrs) <= 4 * _MAX_ITEMS:
            inner = tuple((k, _token(x, memo, depth - 1)) for k, x in attrs.items())
            memo[key] = ("obj", type(v), key, inner)
        elif callable(v):
            memo[key] = ("callable", type(v), key)
    return memo[key]

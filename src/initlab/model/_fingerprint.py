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
import operator
import types
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import chain
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
    and devices (``model.double()`` or ``.to(device)`` keep the Parameter objects). It runs on every
    ``init_model`` call, cached or not: see :class:`_Snapshot` for how the attributes are read fast."""
    mods = list(modules.values())
    structure = (tuple(modules), tuple(map(id, mods)), tuple(map(type, mods)),
                 # hook handles' ids come from one global counter: a flat tuple tells every change
                 tuple(chain.from_iterable(map(_PRE_HOOKS, mods))),
                 tuple(chain.from_iterable(map(_HOOKS, mods))),
                 tuple([_slope(m) for m in mods if isinstance(m, nn.PReLU)]))
    tensors = list(params.values())
    return (structure, _attributes(mods), tuple(params), tuple(map(id, tensors)),
            tuple(map(_TENSOR_META, tensors)))


_PRE_HOOKS = operator.attrgetter("_forward_pre_hooks")
_HOOKS = operator.attrgetter("_forward_hooks")
_TENSOR_META = operator.attrgetter("shape", "dtype", "device")


def _slope(module: nn.PReLU) -> float | None:
    """A one-slope PReLU's value: discovery reads it (a known slope names the activation)."""
    if module.weight.numel() == 1 and module.weight.device.type != "meta":
        return float(module.weight.detach().reshape(()))
    return None


@dataclass
class _Snapshot:
    """The attribute part of a model's key, with what tells cheaply that it still holds.

    ``lens``: every module's ``__dict__`` size; ``getters`` fetch the values of the keys that are not
    ``nn.Module`` internals (those the key does not read) and ``ids`` are those values' ids. While all three
    match (C-level passes: a removed key fails its getter, an added one changes a size), the same objects
    sit in the same slots; ``held`` keeps the immutable ones
    (scalars, tuples of scalars: nothing that can refer back to the model) alive so that their ids cannot be
    reused by new objects, so they are unchanged too; only the mutable values (``mutable``: module index,
    item index, name) are read again. Anything else rebuilds the whole key."""

    lens: list[int]
    getters: list[Callable[[dict[str, Any]], Any]]
    ids: tuple[int, ...]
    held: tuple[Any, ...]
    mutable: list[tuple[int, int, str]]
    attrs: tuple[tuple[Any, ...], ...]

    def holds(self, dicts: list[dict[str, Any]]) -> bool:
        if list(map(len, dicts)) != self.lens:
            return False
        try:
            if tuple(map(id, chain.from_iterable(map(operator.call, self.getters, dicts)))) != self.ids:
                return False
        except KeyError:
            return False
        memo: dict[int, Any] = {}
        return all(_token(dicts[i][k], memo, _DEPTH) == self.attrs[i][j][1] for i, j, k in self.mutable)


_SNAPSHOTS: weakref.WeakKeyDictionary[nn.Module, _Snapshot] = weakref.WeakKeyDictionary()


def _attributes(mods: list[nn.Module]) -> tuple[tuple[Any, ...], ...]:
    dicts = [m.__dict__ for m in mods]
    snap = _SNAPSHOTS.get(mods[0]) if mods else None
    if snap is not None and snap.holds(dicts):
        return snap.attrs
    memo: dict[int, Any] = {}
    held: list[Any] = []
    mutable: list[tuple[int, int, str]] = []
    attrs: list[tuple[Any, ...]] = []
    getters: list[Callable[[dict[str, Any]], Any]] = []
    for i, d in enumerate(dicts):
        items: list[tuple[str, Any]] = []
        for k, v in d.items():
            if k in _MODULE_INTERNALS:
                continue
            if type(v) in _FAST or (type(v) is tuple and _FAST.issuperset(map(type, v))):
                held.append(v)
                items.append((k, v))
            else:
                mutable.append((i, len(items), k))
                items.append((k, _token(v, memo, _DEPTH)))
        attrs.append(tuple(items))
        names = [k for k, _ in items]
        # itemgetter of one key returns the value itself, of two or more a tuple: always ask for two or more
        getters.append(operator.itemgetter(*(names * 2 if len(names) == 1 else names)))
    if mods and all(attrs):
        ids = tuple(map(id, chain.from_iterable(map(operator.call, getters, dicts))))
        _SNAPSHOTS[mods[0]] = _Snapshot(list(map(len, dicts)), getters, ids, tuple(held), mutable,
                                        tuple(attrs))
    return tuple(attrs)


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

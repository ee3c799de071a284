"""``initlab.flax.init_model``: Flax NNX modules and Linen parameter trees described as a shadow torch
skeleton, planned and drawn by the shared path, written back in Flax's layout -- all or nothing.

Without an example input, discovery reads the module tree in order (``nnx.Sequential`` items, other modules
in Flax's graph order; Linen trees in the order Linen created the submodules); activations come from the
callables of an ``nnx.Sequential`` or from ``activation=`` (Linen trees and other modules, where the tree does
not say which activation follows a layer); residual adds are not seen. With one, :mod:`._trace` reads all of
it from the forward and uses the layer builders here."""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from flax import nnx
from torch import nn

from ..frameworks import _layout as L
from ..frameworks._shadow import Label, ShadowBuilder, activation_module

Get = Callable[[], Any]
Set = Callable[[Any], None]


@dataclass
class Slot:
    """One Flax array: where it lives (get/set), and how its value comes from the shadow's draws."""

    path: str
    shape: tuple[int, ...]
    get: Get
    set: Set
    needs: tuple[str, ...]  # the shadow tensors its value is made from (an LSTM bias: torch's two)
    convert: Callable[..., np.ndarray]


@dataclass
class Ctx:
    builder: ShadowBuilder = field(default_factory=ShadowBuilder)
    slots: list[Slot] = field(default_factory=list)
    labels: dict[str, Label] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    hidden: int = 0  # Linen: kernel layers still to come (the activation follows all but the last)

    def slot(self, path: str, kind: str, leaf: tuple[Get, Set], need: str | tuple[str, ...],
             convert: Callable[..., np.ndarray] = np.asarray) -> None:
        get, set_ = leaf
        shape = tuple(get().shape)
        needs = (need,) if isinstance(need, str) else need
        self.slots.append(Slot(path, shape, get, set_, needs, convert))
        for n in needs:
            self.labels[n] = (path, kind, shape if len(needs) == 1 else None)


def activation(ctx: Ctx, fn: Any, node: int) -> int:
    name = fn if isinstance(fn, str) else getattr(fn, "__name__", repr(fn))
    if name == "gelu" and not isinstance(fn, str):  # jax.nn.gelu defaults to the tanh approximation
        name = "gelu_approximate"
    try:
        return ctx.builder.act(activation_module(str(name)), node)
    except KeyError:
        ctx.notes.append(f"unknown activation {name!r} treated as linear: use a known name ('relu', 'tanh')")
        return node


def dense_like(ctx: Ctx, kind: str, path: str, leaves: dict[str, Any], src: int, groups: int = 1) -> int:
    """A kernel ``(*k, in/groups, out)`` (+ bias) -> torch Linear / Conv."""
    kernel = leaves["kernel"]
    shape = tuple(kernel[0]().shape)
    bias = "bias" in leaves
    if len(shape) == 2:
        node, p = ctx.builder.layer(lambda: nn.Linear(shape[0], shape[1], bias=bias), src)
        convert: Callable[[np.ndarray], np.ndarray] = L.dense
    elif len(shape) in (3, 4, 5):
        conv_cls: Any = {3: nn.Conv1d, 4: nn.Conv2d, 5: nn.Conv3d}[len(shape)]
        node, p = ctx.builder.layer(
            lambda: conv_cls(shape[-2] * groups, shape[-1], shape[:-2], groups=groups, bias=bias), src)
        convert = L.conv
    else:
        ctx.skipped.append(f"{path} (kernel of shape {shape})")
        return src
    ctx.slot(f"{path}/kernel", kind, kernel, f"{p}.weight", convert)
    if bias:
        ctx.slot(f"{path}/bias", kind, leaves["bias"], f"{p}.bias")
    return node


def embed(ctx: Ctx, kind: str, path: str, leaves: dict[str, Any], src: int) -> int:
    vocab, dim = leaves["embedding"][0]().shape
    node, p = ctx.builder.layer(lambda: nn.Embedding(vocab, dim), src)
    ctx.slot(f"{path}/embedding", kind, leaves["embedding"], f"{p}.weight")
    return node


def norm(ctx: Ctx, kind: str, path: str, leaves: dict[str, Any], src: int) -> int:
    dim = next(iter(leaves.values()))[0]().shape[-1]
    node, p = ctx.builder.layer(lambda: nn.BatchNorm1d(dim) if "Batch" in kind else nn.LayerNorm(dim), src)
    for leaf, attr in (("scale", "weight"), ("bias", "bias")):
        if leaf in leaves:
            ctx.slot(f"{path}/{leaf}", kind, leaves[leaf], f"{p}.{attr}")
    return node


# ---- NNX ---------------------------------------------------------------------------------------------------
def _param(var: nnx.Variable) -> tuple[Get, Set]:
    def set_(value: Any) -> None:
        var[...] = value
    return (lambda: var[...]), set_


def _nnx_layer(ctx: Ctx, module: Any, path: str, src: int) -> int:
    kind = type(module).__name__
    leaves = {k: _param(v) for k, v in vars(module).items() if isinstance(v, nnx.Param)}
    if isinstance(module, nnx.Sequential):
        node = src
        for i, item in enumerate(module.layers):
            sub = f"{path}/layers/{i}".lstrip("/")
            node = _nnx_layer(ctx, item, sub, node) if isinstance(item, nnx.Module) \
                else activation(ctx, item, node)
        return node
    if isinstance(module, nnx.Linear | nnx.Conv):
        return dense_like(ctx, kind, path, leaves, src, int(getattr(module, "feature_group_count", 1)))
    if isinstance(module, nnx.Embed):
        return embed(ctx, kind, path, leaves, src)
    if isinstance(module, nnx.LayerNorm | nnx.BatchNorm | nnx.RMSNorm):
        return norm(ctx, kind, path, leaves, src)
    children = list(_children(module))
    if type(module).__module__.startswith("flax.") or not children:  # a Flax layer initlab does not know
        if leaves or children:
            ctx.skipped.append(f"{path} ({kind})")
        return src
    ctx.notes.append(f"{path or kind}: layers in Flax's graph order; activations between them not seen "
                     "(use nnx.Sequential or pass activation=...)")
    node = src
    for name, child in children:
        node = _nnx_layer(ctx, child, f"{path}/{name}" if path else str(name), node)
    return node


def _children(module: Any) -> Iterator[tuple[str, Any]]:
    for name, value in sorted(vars(module).items()):
        if isinstance(value, nnx.Module):
            yield name, value
        elif isinstance(value, list | tuple | nnx.List):
            for i, item in enumerate(value):
                if isinstance(item, nnx.Module):
                    yield f"{name}/{i}", item


# ---- Linen trees -------------------------------------------------------------------------------------------
def _leaf(tree: MutableMapping[str, Any], key: str) -> tuple[Get, Set]:
    def set_(value: Any) -> None:
        tree[key] = value
    return (lambda: tree[key]), set_


def linen_tree(ctx: Ctx, tree: MutableMapping[str, Any], path: str, src: int, act: Any) -> int:
    node = src
    for name, sub in tree.items():
        sub_path = f"{path}/{name}" if path else name
        if not isinstance(sub, MutableMapping):
            ctx.skipped.append(f"{sub_path} (a bare array)")
            continue
        leaves = {k: _leaf(sub, k) for k, v in sub.items() if not isinstance(v, MutableMapping)}
        kind = name.rsplit("_", 1)[0]
        if len(leaves) < len(sub):  # a submodule with submodules
            node = linen_tree(ctx, sub, sub_path, node, act)
        elif "kernel" in leaves:
            node = dense_like(ctx, kind, sub_path, leaves, node)  # Linen trees do not record conv groups
            ctx.hidden -= 1
            node = activation(ctx, act, node) if act is not None and ctx.hidden > 0 else node
        elif "embedding" in leaves:
            node = embed(ctx, kind, sub_path, leaves, node)
        elif set(leaves) <= {"scale", "bias"}:
            node = norm(ctx, kind, sub_path, leaves, node)
        else:
            ctx.skipped.append(f"{sub_path} ({sorted(leaves)})")
    return node


def count_kernels(tree: Any) -> int:
    if not isinstance(tree, MutableMapping):
        return 0
    return int("kernel" in tree) + sum(count_kernels(v) for v in tree.values())





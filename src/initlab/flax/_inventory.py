"""What the trace needs from the module tree: every parameter leaf in the order the traced function takes
them, the module that owns it (its class for NNX, its name for Linen), the composite modules (LSTM cells,
attention) whose inner layers are one torch layer, and the forward as a function of the leaves."""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

import jax
from flax import nnx

from ._model import Get, Set, _leaf, _param

# composite modules: their inner dense layers are one torch layer (or, unknown ones, left as they are)
LSTM_NNX = ("ii", "if_", "ig", "io", "hi", "hf", "hg", "ho")
LSTM_LINEN = ("ii", "if", "ig", "io", "hi", "hf", "hg", "ho")
MHA = ("query", "key", "value", "out")
# Flax layers initlab knows, and containers (their children are read)
_KNOWN_NNX = {"Linear", "Conv", "ConvTranspose", "Embed", "LayerNorm", "BatchNorm", "RMSNorm", "GroupNorm",
              "Sequential", "RNN", "Bidirectional", "Dropout", "List", "Dict", "Rngs", "RngStream"}


@dataclass
class Leaf:
    path: str  # "layers/0/kernel"
    module: str  # the owning module's path: "layers/0"
    name: str  # "kernel"
    access: tuple[Get, Set]


@dataclass
class Module:
    path: str
    kind: str  # NNX: the class name; Linen: the name without its "_<n>" suffix
    leaves: dict[str, tuple[Get, Set]] = field(default_factory=dict)
    groups: int = 1


@dataclass
class Inventory:
    leaves: list[Leaf]
    values: list[Any]  # the leaves' current values, the traced function's first argument
    modules: dict[str, Module]
    units: dict[str, str]  # composite module path -> "lstm" | "mha" | its class (not known: left as it is)
    forward: Callable[..., Any]  # (leaves, *example_input) -> output

    def unit_of(self, module: str) -> str | None:
        """The composite module a module belongs to (itself included), outermost first."""
        parts = module.split("/") if module else []
        for i in range(len(parts) + 1):
            if "/".join(parts[:i]) in self.units:
                return "/".join(parts[:i])
        return None


def _key(entry: Any) -> str | None:
    key = getattr(entry, "key", None)
    return None if key is None else str(key)


def _paths(tree: Any) -> tuple[list[tuple[str, ...]], list[Any], Any]:
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    paths = [tuple(k for k in map(_key, keys) if k is not None) for keys, _ in flat]
    return paths, [v for _, v in flat], treedef


def nnx_inventory(model: nnx.Module) -> Inventory:
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)  # type: ignore[misc]
    paths, values, treedef = _paths(params)
    nodes = {tuple(map(str, p)): v for p, v in nnx.iter_graph(model)}
    modules: dict[str, Module] = {}
    units: dict[str, str] = {}
    for p, node in nodes.items():
        if not isinstance(node, nnx.Module):
            continue
        kind = type(node).__name__
        modules["/".join(p)] = Module("/".join(p), kind, groups=int(getattr(node, "feature_group_count", 1)))
        if kind == "LSTMCell":
            units["/".join(p)] = "lstm"
        elif kind == "MultiHeadAttention":
            units["/".join(p)] = "mha"
        elif type(node).__module__.startswith("flax.") and kind not in _KNOWN_NNX:
            units["/".join(p)] = kind
    leaves = []
    for p in paths:
        mod = "/".join(p[:-1])
        access = _param(nodes[p])
        modules[mod].leaves[p[-1]] = access
        leaves.append(Leaf("/".join(p), mod, p[-1], access))

    # the other state (RNG counts, batch statistics) goes through the trace too: a module may update it
    others, rest_def = jax.tree_util.tree_flatten(rest)

    def forward(flat: list[Any], *args: Any) -> Any:
        state = jax.tree_util.tree_unflatten(rest_def, others)
        return nnx.merge(graphdef, jax.tree_util.tree_unflatten(treedef, flat), state)(*args)
    return Inventory(leaves, values, modules, units, forward)


def linen_inventory(variables: MutableMapping[str, Any], apply_fn: Callable[..., Any]) -> Inventory:
    """``variables``: ``{"params": tree, ...}`` (other collections passed through as they are) or a bare
    parameter tree; ``apply_fn(variables, *example_input)`` as ``module.apply``."""
    wrapped = "params" in variables and isinstance(variables["params"], MutableMapping)
    tree = variables["params"] if wrapped else variables
    paths, values, treedef = _paths(tree)
    modules: dict[str, Module] = {}
    units: dict[str, str] = {}
    leaves = []
    for p in paths:
        mod = "/".join(p[:-1])
        sub: Any = tree
        for k in p[:-1]:
            sub = sub[k]
        access = _leaf(sub, p[-1])
        modules.setdefault(mod, Module(mod, p[-2].rsplit("_", 1)[0] if len(p) > 1 else "")).leaves[p[-1]] = \
            access
        leaves.append(Leaf("/".join(p), mod, p[-1], access))
        _linen_unit(tree, p[:-1], units)

    def forward(flat: list[Any], *args: Any) -> Any:
        params = jax.tree_util.tree_unflatten(treedef, flat)
        return apply_fn({**variables, "params": params} if wrapped else {"params": params}, *args)
    return Inventory(leaves, values, modules, units, forward)


def _linen_unit(tree: Any, module: tuple[str, ...], units: dict[str, str]) -> None:
    """Linen trees say no class: an LSTM cell and an attention block are known by their children's names."""
    for i in range(len(module)):
        sub = tree
        for k in module[:i]:
            sub = sub[k]
        if set(sub) == set(LSTM_LINEN):
            units["/".join(module[:i])] = "lstm"
        elif set(sub) == set(MHA):
            units["/".join(module[:i])] = "mha"

"""Activations written from primitives, read as one activation.

``z * torch.sigmoid(z)`` (SiLU), ``x * torch.tanh(F.softplus(x))`` (Mish), ``x * 0.5 * (1 + torch.erf(x /
sqrt(2)))`` (GELU), ``z.clamp(0, 6)``, ``2 * z + 1``: a set of elementwise ops whose tensor inputs all come
from one tensor ``z`` computes ``f(z)`` for one scalar function ``f``. Discovery fuses each such region with
one output into a single activation node whose catalog function is the composition, evaluated in numpy; when
it equals a catalog activation (within 1e-6 on a grid) it is named so (``silu``, ``gelu``, ``relu6``), else
it is ``composite[<expression>]`` and the catalog integrates it numerically like any activation. A pure affine
map is marked so, since walks looking for the nonlinearity after a layer see through it. A product of two
different tensors (the gated ``act(W1 x) * (W3 x)`` of SwiGLU/GeGLU) is not fused: it stays a product node.
A region the catalog cannot integrate (not finite on the real line) is never read as its inner function: its
output becomes an unknown op and a note says so.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from ..catalog import activations as acts
from ..catalog.activations import Activation


@dataclass(frozen=True)
class Ref:
    """A tensor argument of a recorded call: the node that produced it."""

    node: int


def _erf(x: Any) -> Any:
    from scipy import special

    return special.erf(x)


def _clamp(x: Any, min: float | None = None, max: float | None = None) -> Any:
    return np.clip(x, -np.inf if min is None else min, np.inf if max is None else max)


_SWAP = {"__radd__", "__rsub__", "rsub", "__rmul__", "__rtruediv__", "__rdiv__", "__rpow__"}
_BINARY: dict[str, tuple[Callable[[Any, Any], Any], str]] = {}
for _names, _fn, _sym in (
    (("add", "__add__", "__iadd__", "add_", "__radd__"), np.add, "+"),
    (("sub", "__sub__", "__isub__", "sub_", "subtract", "__rsub__", "rsub"), np.subtract, "-"),
    (("mul", "__mul__", "__imul__", "mul_", "multiply", "__rmul__"), np.multiply, "*"),
    (("div", "__truediv__", "__itruediv__", "div_", "true_divide", "divide", "__rtruediv__", "__rdiv__"),
     np.divide, "/"),
    (("pow", "__pow__", "pow_", "__rpow__"), np.power, "**"),
    (("maximum",), np.maximum, "max"),
    (("minimum",), np.minimum, "min"),
):
    for _n in _names:
        _BINARY[_n] = (_fn, _sym)
_UNARY: dict[str, Callable[..., Any]] = {
    "erf": _erf,
    "exp": np.exp,
    "expm1": np.expm1,
    "log1p": np.log1p,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1.0 / np.sqrt(x),
    "abs": np.abs,
    "__abs__": np.abs,
    "neg": np.negative,
    "__neg__": np.negative,
    "negative": np.negative,
    "square": np.square,
    "reciprocal": lambda x: 1.0 / x,
    "cos": np.cos,
    "clamp": _clamp,
    "clip": _clamp,
    "clamp_min": lambda x, min: _clamp(x, min=min),
    "clamp_max": lambda x, max: _clamp(x, max=max),
}
for _n in list(_UNARY):
    if not _n.startswith("_"):
        _UNARY[_n + "_"] = _UNARY[_n]


def _scalar(a: Any) -> bool:
    return isinstance(a, int | float) and not isinstance(a, bool)


def elementwise_call(fname: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> bool:
    """True when ``fname(*args, **kwargs)`` is an elementwise op of tensors and Python scalars we can
    evaluate in numpy."""
    refs = [a for a in args if isinstance(a, Ref)]
    if not refs or not all(isinstance(a, Ref) or _scalar(a) or a is None for a in args):
        return False
    if fname in _BINARY:
        return len(args) == 2 and not kwargs and None not in args
    if fname.rstrip("_") in ("clamp", "clip", "clamp_min", "clamp_max"):
        return set(kwargs) <= {"min", "max"} and all(v is None or _scalar(v) for v in kwargs.values())
    return fname in _UNARY and len(args) == 1 and not kwargs


@dataclass
class Fused:
    """What :func:`fuse` did: ``composites`` maps each fused output node to its expression, ``affine`` the
    fused nodes that are affine maps, ``notes`` what could not be read."""

    composites: dict[int, str]
    affine: set[int]
    notes: list[str]
    visits: int = 0


def fuse(nodes: Sequence[Any], source_name: Callable[[int], str]) -> Fused:
    """Rewrite ``nodes`` in place: every single-source elementwise region with one output becomes one
    ``act`` node (its other nodes become ``fused`` nodes with no inputs)."""
    consumers: list[list[int]] = [[] for _ in nodes]
    for i, n in enumerate(nodes):
        for j in n.inputs:
            consumers[j].append(i)
    out = Fused({}, set(), [])
    absorbed: set[int] = set()
    for s in range(len(nodes)):
        if s in absorbed:
            continue
        region = _region(nodes, consumers, s, absorbed, out)
        if not region:
            continue
        outputs = [c for c in region if not consumers[c] or any(k not in region for k in consumers[c])]
        if len(outputs) != 1 or (len(region) == 1 and nodes[region[0]].op == "act"):
            continue  # several outputs share ops (left as they are), or one plain activation
        absorbed.update(region)
        _rewrite(nodes, s, region, outputs[0], source_name(s), out)
    return out


def _candidate(n: Any) -> bool:
    return n.call is not None or (n.op == "act" and n.act is not None and len(n.inputs) == 1)


def _tensor_args(n: Any) -> list[int]:
    if n.call is not None:
        return [a.node for a in (*n.call[1], *n.call[2].values()) if isinstance(a, Ref)]
    return list(n.inputs)


def _region(
    nodes: Sequence[Any], consumers: list[list[int]], s: int, absorbed: set[int], out: Fused
) -> list[int]:
    inside, region = {s}, []
    heap = list(consumers[s])
    heapq.heapify(heap)
    while heap:
        c = heapq.heappop(heap)
        out.visits += 1
        if c in inside or c in absorbed or not _candidate(nodes[c]):
            continue
        if not set(_tensor_args(nodes[c])) <= inside or set(nodes[c].inputs) - inside:
            continue
        inside.add(c)
        region.append(c)
        for k in consumers[c]:
            heapq.heappush(heap, k)
    return region


def _compose(nodes: Sequence[Any], s: int, region: list[int], end: int) -> tuple[Callable[[Any], Any], str]:
    # the steps are read now: the nodes are rewritten once the region is fused
    steps = [(c, nodes[c].act, nodes[c].inputs[:1], nodes[c].call) for c in region]

    def fn(z: Any) -> Any:
        vals: dict[int, Any] = {s: np.asarray(z, dtype=np.float64)}
        for c, act, first, call in steps:
            if call is None:
                vals[c] = act(vals[first[0]])
                continue
            fname, args, kwargs = call
            values = [vals[a.node] if isinstance(a, Ref) else a for a in args]
            if fname in _BINARY:
                a, b = values[::-1] if fname in _SWAP else values
                vals[c] = _BINARY[fname][0](a, b)
            else:
                vals[c] = _UNARY[fname](*values, **kwargs)
        return vals[end]

    text: dict[int, str] = {s: "z"}
    for c in region:
        n = nodes[c]
        if n.call is None:
            text[c] = f"{n.name}({text[n.inputs[0]]})"
            continue
        fname, args, kwargs = n.call
        parts = [text[a.node] if isinstance(a, Ref) else f"{a:g}" for a in args]
        if fname in _BINARY:
            a, b = parts[::-1] if fname in _SWAP else parts
            sym = _BINARY[fname][1]
            text[c] = f"{sym}({a}, {b})" if sym in ("max", "min") else f"({a}{sym}{b})"
        else:
            extra = [f"{k}={v:g}" for k, v in kwargs.items() if v is not None]
            text[c] = f"{fname.rstrip('_')}({', '.join(parts + extra)})"
    expr = text[end]
    return fn, expr[1:-1] if expr.startswith("(") and expr.endswith(")") else expr


_GRID = np.linspace(-8.0, 8.0, 161)


def _rewrite(nodes: Sequence[Any], s: int, region: list[int], end: int, src: str, out: Fused) -> None:
    fn, expr = _compose(nodes, s, region, end)
    try:
        with np.errstate(all="ignore"):
            y = np.asarray(fn(_GRID), dtype=np.float64)
        finite = y.shape == _GRID.shape and bool(np.isfinite(y).all())
    except Exception:  # an op numpy cannot evaluate on this grid: the catalog cannot integrate it either
        finite = False
    for c in region:
        if c != end:
            nodes[c].op, nodes[c].inputs, nodes[c].act = "fused", (), None
    node = nodes[end]
    node.inputs, node.call = (s,), None
    if not finite:
        node.op, node.name, node.act = "other", _composite_name(expr), None
        out.notes.append(
            f"the elementwise function {expr} applied to {src} is not finite on the real line, so the "
            "catalog cannot integrate it: planned as an unknown op (pass rules= to set that layer's scale)"
        )
        return
    act = _catalog_match(y) or Activation(_composite_name(expr), fn)
    node.op, node.act, node.name = "act", act, act.spec if act.name in acts.activation_names() else act.name
    out.composites[end] = expr
    if _affine(y):
        out.affine.add(end)


def _affine(y: np.ndarray) -> bool:
    """Whether ``y`` (on ``_GRID``) lies on a line, to 1e-9: the line through its end points (an affine
    function's own; a least-squares fit cost half of fusing a small transformer's compositions)."""
    slope = (y[-1] - y[0]) / (_GRID[-1] - _GRID[0])
    line = y[0] + slope * (_GRID - _GRID[0])
    return bool((np.abs(y - line) <= 1e-9 * max(1.0, abs(slope)) + 1e-9 * np.abs(line)).all())


def _composite_name(expr: str) -> str:
    """``composite[<expr>]``: a name the catalog's parser rejects cleanly (ValueError), so moment maps fall
    back to integrating the function itself."""
    name = f"composite[{expr}]"
    try:
        acts.activation(name)
    except ValueError:
        return name
    except Exception:  # the parser choked on the expression: keep the name plain
        return "composite"
    return "composite"


def _catalog_match(y: np.ndarray) -> Activation | None:
    names, table, tol = _catalog_table(tuple(acts.activation_names()))
    if not names:
        return None
    with np.errstate(all="ignore"):
        ok = (np.abs(table - y) <= tol).all(axis=1)  # np.allclose(y, ref, rtol=1e-6, atol=...) per row
    hits = np.flatnonzero(ok)
    return acts.activation(names[int(hits[0])]) if hits.size else None


@lru_cache(maxsize=2)
def _catalog_table(catalog: tuple[str, ...]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every catalog activation on the grid, once per catalog (a composite is matched against all of
    them), with each row's tolerance."""
    names, rows = [], []
    for name in catalog:
        if name in ("linear", "prelu"):
            continue
        with np.errstate(all="ignore"):
            ref = np.asarray(acts.activation(name)(_GRID), dtype=np.float64)
        if ref.shape == _GRID.shape and np.isfinite(ref).all():
            names.append(name)
            rows.append(ref)
    if not rows:
        return [], np.zeros((0, _GRID.size)), np.zeros((0, _GRID.size))
    table = np.stack(rows)
    atol = 1e-7 * np.maximum(1.0, np.abs(table).max(axis=1, keepdims=True))
    return names, table, atol + 1e-6 * np.abs(table)

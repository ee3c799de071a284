"""Flax discovery from one ``jax.make_jaxpr`` trace of the forward: layers are the module tree's parameters as
the forward uses them (a kernel in ``dot_general`` / ``conv_general_dilated``, an embedding table in
``gather``, a norm's scale and bias elementwise), activations are the elementwise functions between layers
(named by their values, :mod:`._acts`), residual adds are adds of two values computed from different layers.

Each traced value carries a tag saying how it depends on the input: ``Const`` (not at all), ``P`` (a parameter
leaf, reshaped or cast), ``V`` (an elementwise function of one shadow node's value: pure when only reshaped),
``M`` (computed from a node by something not read as an activation: reductions, products of two branches) and
``U`` (inside a composite module: an LSTM cell, attention). Sub-jaxprs (``jit``, ``custom_jvp``/``custom_vjp``
calls such as ``jax.nn.relu``, ``checkpoint``, ``scan``) are walked with the caller's tags."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from jax.extend import core

from ..frameworks._shadow import activation_module
from ._acts import classify
from ._inventory import Inventory
from ._model import Ctx, dense_like, embed, norm
from ._units import Unsupported, attention, conv_transpose, lstm

Lazy = Callable[[], Any]


@dataclass(eq=False)
class Const:
    value: Lazy


@dataclass(eq=False)
class P:
    leaf: int
    value: Lazy


@dataclass(eq=False)
class V:
    node: int
    shape: tuple[int, ...]
    fn: Callable[[Any], Any] | None = None  # None: the node's values, only moved (reshape, transpose, ...)
    prev: V | None = None  # the value this one was computed from (``relu(x)`` for ``relu(x) ** 2``)


@dataclass(eq=False)
class M:
    node: int
    ops: frozenset[str]


@dataclass(eq=False)
class U:
    unit: str


Tag = Const | P | V | M | U

STRUCTURAL = {"reshape", "broadcast_in_dim", "transpose", "squeeze", "expand_dims", "slice", "dynamic_slice",
              "pad", "rev", "copy", "copy_p", "convert_element_type", "reduce_precision", "stop_gradient",
              "concatenate", "optimization_barrier", "sharding_constraint"}
ELEMENTWISE = {"add", "add_any", "sub", "mul", "div", "max", "min", "neg", "exp", "exp2", "log", "log1p",
               "expm1", "tanh", "logistic", "erf", "erfc", "integer_pow", "pow", "sqrt", "rsqrt", "cbrt",
               "abs", "sign", "select_n", "ge", "gt", "le", "lt", "eq", "ne", "square", "clamp", "sin", "cos",
               "atan", "sinh", "cosh", "asinh", "atanh", "floor", "ceil", "round", "is_finite", "and", "or",
               "not"}
_SUB = ("jaxpr", "call_jaxpr", "fun_jaxpr")  # jit / checkpoint / scan; custom_jvp/vjp and closed calls
_POOLING = {"reduce_window_sum", "reduce_window_max", "reduce_window", "cumsum"}


@dataclass
class Tracer:
    ctx: Ctx
    inv: Inventory
    layers: dict[str, int] = field(default_factory=dict)  # module / composite path -> its shadow node
    owner: dict[int, str] = field(default_factory=dict)  # shadow node -> module path (its bias add)
    made: dict[int, int] = field(default_factory=dict)  # id(V) -> the node of its activation
    keep: list[Any] = field(default_factory=list)  # the tags in ``made`` (their ids stay theirs)
    used: set[int] = field(default_factory=set)  # leaves the forward reads as initlab understands

    # ---- walking ------------------------------------------------------------------------------------------
    def walk(self, jaxpr: Any, consts: Sequence[Tag], ins: Sequence[Tag]) -> list[Tag]:
        env: dict[Any, Tag] = {}

        def read(v: Any) -> Tag:
            return Const(lambda: v.val) if isinstance(v, core.Literal) else env[v]

        for var, tag in zip([*jaxpr.constvars, *jaxpr.invars], [*consts, *ins], strict=True):
            env[var] = _fit(tag, var)
        for eqn in jaxpr.eqns:
            outs = self.eqn(eqn, [read(v) for v in eqn.invars])
            for var, tag in zip(eqn.outvars, outs, strict=True):
                env[var] = _fit(tag, var)
        return [read(v) for v in jaxpr.outvars]

    def eqn(self, e: Any, ins: list[Tag]) -> list[Tag]:
        n = len(e.outvars)
        if all(isinstance(t, Const) for t in ins):
            return [Const(v) for v in _const(e, ins)]
        sub = next((e.params[k] for k in _SUB if k in e.params), None)
        if e.primitive.name in ("while", "cond"):
            return [self._mixed(ins, e.primitive.name)] * n
        if sub is not None and e.primitive.name == "scan":
            return self._scan(e, ins)
        if sub is not None:
            jaxpr, consts = (sub.jaxpr, sub.consts) if hasattr(sub, "consts") else (sub, [])
            return self.walk(jaxpr, [Const(_constant(c)) for c in consts], ins)
        params = [i for i, t in enumerate(ins) if isinstance(t, P)]
        if params:
            return self._with_param(e, ins, params)
        unit = next((t for t in ins if isinstance(t, U)), None)
        if unit is not None:
            return [unit] * n
        name = e.primitive.name
        if name in STRUCTURAL or (name in ELEMENTWISE and _integer(e)):  # index arithmetic moves values
            return [self._structural(e, ins)] * n
        if name in ELEMENTWISE:
            return [self._elementwise(e, ins)]
        return [self._mixed(ins, name)] * n

    def _scan(self, e: Any, ins: list[Tag]) -> list[Tag]:
        body = e.params["jaxpr"]
        flat = [V(self.node(t), t.shape) if isinstance(t, V) else t for t in ins]
        outs = self.walk(body.jaxpr, [Const(_constant(c)) for c in body.consts], flat)
        # a recurrent cell's loop ends its unit: what leaves the loop is the cell's output
        return [V(self.node(t), ()) if isinstance(t, V | U) else t for t in outs]

    # ---- what a value is ----------------------------------------------------------------------------------
    def node(self, t: Tag, consumer: str = "") -> int:
        """The shadow node a value stands for; an elementwise function becomes its activation node (a layer
        ``consumer`` is told of what it cannot read)."""
        if isinstance(t, V):
            return t.node if t.fn is None else self._activation(t, consumer)
        if isinstance(t, M):
            if consumer and not (t.ops & _POOLING and t.ops <= _POOLING | {"div", "mul", "add"}):
                self.ctx.notes.append(f"{consumer}: its input comes through {', '.join(sorted(t.ops))}, not "
                                      "read as an activation (planned as linear)")
            return t.node
        if isinstance(t, U):
            return self.layers.get(t.unit, 0)
        return 0  # not computed from the input (positions, constants): planned as fed by the input

    def _activation(self, t: V, consumer: str) -> int:
        """The activation ``t`` is, or the longest start of it that is one (``relu(x) ** 2`` read by a norm's
        statistics is ``relu``): each elementwise value is named by its values on a grid."""
        if id(t) in self.made:
            return self.made[id(t)]
        cur: V | None = t
        got = None
        while cur is not None and cur.fn is not None:
            got = classify(cur.fn, cur.shape)
            if got is not None and (cur is t or got[0] != "linear"):
                break
            cur = cur.prev
        node = t.node
        if cur is None or cur.fn is None or got is None:
            if consumer:
                self.ctx.notes.append(f"{consumer}: its input is an elementwise function of "
                                      f"{self.owner.get(t.node, 'the input')} initlab does not know, planned "
                                      "as linear (use a jax.nn activation for initlab to read it)")
        elif got[0] != "linear":
            node = self.made.get(id(cur)) or self.ctx.builder.act(activation_module(*got), t.node)
            self.made[id(cur)] = node
            self.keep.append(cur)
            if cur is not t and consumer:
                self.ctx.notes.append(f"{consumer}: its input read as {got[0]} of "
                                      f"{self.owner.get(t.node, 'the input')} (the rest planned as linear)")
        self.made[id(t)] = node
        self.keep.append(t)
        return node

    def _mixed(self, ins: list[Tag], op: str) -> Tag:
        live = [t for t in ins if not isinstance(t, Const | P)]
        ops = frozenset({op}).union(*(t.ops for t in live if isinstance(t, M)))
        return M(max(self.node(t) for t in live), ops)

    def _structural(self, e: Any, ins: list[Tag]) -> Tag:
        live = [t for t in ins if not isinstance(t, Const)]
        nodes = {self.node(t) for t in live}
        if any(isinstance(t, M) for t in live) or len(nodes) > 1:
            return self._mixed(ins, e.primitive.name)
        return V(nodes.pop(), tuple(e.outvars[0].aval.shape))

    def _elementwise(self, e: Any, ins: list[Tag]) -> Tag:
        live = [(i, t) for i, t in enumerate(ins) if not isinstance(t, Const)]
        if any(isinstance(t, M) for _, t in live):
            return self._mixed(ins, e.primitive.name)
        vs = [(i, t) for i, t in live if isinstance(t, V)]
        if len({t.node for _, t in vs}) > 1 or len({t.shape for _, t in vs}) > 1:
            nodes = [self.node(t) for _, t in vs]
            if e.primitive.name in ("add", "add_any", "sub") and len(vs) == 2 and nodes[0] != nodes[1]:
                return V(self.ctx.builder.add(nodes), tuple(e.outvars[0].aval.shape))  # a residual add
            return M(max(nodes), frozenset({e.primitive.name}))
        prev = next((t for _, t in vs if t.fn is not None), vs[0][1])
        return V(prev.node, prev.shape, _compose(e, ins), prev)

    # ---- parameters: layers, biases, norms, composite modules ---------------------------------------------
    def _with_param(self, e: Any, ins: list[Tag], params: list[int]) -> list[Tag]:
        name, n = e.primitive.name, len(e.outvars)
        first = ins[params[0]]
        assert isinstance(first, P)
        leaf = self.inv.leaves[first.leaf]
        live = [t for t in ins if not isinstance(t, Const | P)]
        unit = self.inv.unit_of(leaf.module)
        if unit is not None and (live or name not in STRUCTURAL):
            return self._unit(e, unit, leaf.module, live)
        if not live:  # a parameter reshaped, cast or combined with constants (or other parameters)
            if name not in STRUCTURAL:
                self.ctx.notes.append(f"{leaf.path}: {name} of it is read as the parameter itself")
            return [P(first.leaf, v) for v in _const(e, ins)]
        mod = self.inv.modules[leaf.module]
        shape = tuple(e.outvars[0].aval.shape)
        if len(params) == 1 and ((name in ("dot_general", "conv_general_dilated") and leaf.name == "kernel")
                                 or (name == "gather" and leaf.name == "embedding" and params[0] == 0)):
            return [V(self._layer(mod, live[0], e), shape)]
        src = live[0]
        if name in ("add", "sub") and leaf.name == "bias" and isinstance(src, V) and src.fn is None \
                and self.owner.get(src.node) == mod.path:
            return [V(src.node, shape)]  # the layer's own bias
        if name in ELEMENTWISE and len(params) == 1 and not {"kernel", "embedding"} & set(mod.leaves):
            return [V(self._layer(mod, src, e), shape)]  # a norm's scale or bias
        self.ctx.notes.append(f"{leaf.path}: used by {name} in a way initlab does not read")
        return [self._mixed(ins, name)] * n

    def _layer(self, mod: Any, src: Tag, e: Any) -> int:
        prim = e.primitive.name
        if mod.path in self.layers:
            if prim in ("dot_general", "conv_general_dilated", "gather"):
                self.ctx.notes.append(f"{mod.path}: called more than once, planned at its first call")
            return self.layers[mod.path]
        norm_like = prim in ELEMENTWISE  # its input's normalization statistics are the norm's own
        start = self.node(src, "" if norm_like else mod.path)
        try:
            node = self._make(mod, start, e)
        except Unsupported as err:
            self.ctx.skipped.append(f"{mod.path} ({err})")
            node = start
        self.layers[mod.path] = node
        if node != start:
            self.owner[node] = mod.path
        return node

    def _make(self, mod: Any, src: int, e: Any) -> int:
        prim, kind = e.primitive.name, mod.kind
        if prim == "gather":
            return embed(self.ctx, kind, mod.path, mod.leaves, src)
        if prim in ELEMENTWISE:
            return norm(self.ctx, kind, mod.path, mod.leaves, src)
        ndim = len(mod.leaves["kernel"][0]().shape)
        if prim == "dot_general" and ndim != 2:
            raise Unsupported(f"a {kind} with a {ndim}-d kernel")
        if prim == "conv_general_dilated":  # a Linen tree says no class: a dilated input is a transposed conv
            if kind.startswith("ConvTranspose") or any(d > 1 for d in e.params["lhs_dilation"]):
                return conv_transpose(self.ctx, kind, mod.path, mod.leaves, src,
                                      tuple(int(d) for d in e.params["lhs_dilation"]))
            return dense_like(self.ctx, kind, mod.path, mod.leaves, src, int(e.params["feature_group_count"]))
        return dense_like(self.ctx, kind, mod.path, mod.leaves, src)

    def _unit(self, e: Any, unit: str, module: str, live: Sequence[Tag]) -> list[Tag]:
        n, kind = len(e.outvars), self.inv.units[unit]
        if unit not in self.layers:
            src = next((t for t in live if not isinstance(t, U)), None)
            if src is None:
                return [U(unit)] * n
            start = self.node(src, unit or "the model")
            node = self._make_unit(unit, kind, start)
            self.layers[unit] = node
            if node != start:
                self.owner[node] = unit
        out = f"{unit}/out" if unit else "out"
        if kind == "mha" and module == out and self.owner.get(self.layers[unit]) == unit:
            return [V(self.layers[unit], tuple(e.outvars[0].aval.shape))]  # the block's output
        return [U(unit)] * n

    def _make_unit(self, unit: str, kind: str, src: int) -> int:
        try:
            if kind == "lstm":
                return lstm(self.ctx, unit, self.inv.modules, src)
            if kind == "mha":
                return attention(self.ctx, unit, self.inv.modules, src)
            raise Unsupported(f"a {kind}")
        except Unsupported as err:
            self.ctx.skipped.append(f"{unit or 'the model'} ({err})")
            return src

    def untouched(self) -> None:
        """Every parameter leaf the plan does not write is said so (never a silent default)."""
        written = {s.path for s in self.ctx.slots}
        said = [s.split(" (")[0] for s in self.ctx.skipped]
        for leaf in self.inv.leaves:
            if leaf.path not in written and not any(leaf.path.startswith(p + "/") or p == "the model"
                                                    for p in said):
                self.ctx.skipped.append(f"{leaf.path} (not read from the traced forward)")


def _fit(tag: Tag, var: Any) -> Tag:
    """A moved value (reshape, scan slice) is its node's values in the variable's own shape."""
    if isinstance(tag, V) and tag.fn is None and hasattr(var, "aval"):
        shape = tuple(getattr(var.aval, "shape", ()))
        return tag if shape == tag.shape else V(tag.node, shape)
    return tag


def _integer(e: Any) -> bool:
    return any(getattr(getattr(v, "aval", None), "dtype", None) is not None and v.aval.dtype.kind in "iu"
               for v in e.invars)


def _const(e: Any, ins: list[Tag]) -> list[Lazy]:
    @cache
    def values() -> list[Any]:
        out = e.primitive.bind(*[_value(t)() for t in ins], **e.params)
        return list(out) if e.primitive.multiple_results else [out]
    return [_item(values, i) for i in range(len(e.outvars))]


def _constant(value: Any) -> Lazy:
    return lambda: value


def _item(values: Callable[[], list[Any]], i: int) -> Lazy:
    return lambda: values()[i]


def _value(t: Tag) -> Lazy:
    if not isinstance(t, Const | P):
        raise TypeError(f"internal: {t} has no value of its own")
    return t.value


def _compose(e: Any, ins: list[Tag]) -> Callable[[Any], Any]:
    """The elementwise function of the node's values that ``e`` computes (constants as they are)."""
    def fn(x: Any) -> Any:
        args = [(t.fn(x) if t.fn is not None else x) if isinstance(t, V) else _value(t)() for t in ins]
        return e.primitive.bind(*args, **e.params)
    return fn


def discover(ctx: Ctx, inv: Inventory, example: tuple[Any, ...]) -> None:
    """Describe the model in ``ctx.builder`` from one trace of ``inv.forward`` on ``example``."""
    import jax

    closed = jax.make_jaxpr(inv.forward)(inv.values, *example)
    tracer = Tracer(ctx, inv)
    start = ctx.builder.input()
    k = len(inv.leaves)
    ins: list[Tag] = [P(i, _constant(inv.values[i])) for i in range(k)]
    ins += [V(start, tuple(v.aval.shape)) for v in closed.jaxpr.invars[k:]]
    outs = tracer.walk(closed.jaxpr, [Const(_constant(c)) for c in closed.consts], ins)
    for t in outs:
        tracer.node(t)  # an activation after the last layer
    tracer.untouched()

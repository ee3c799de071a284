"""Discovery: the one graph walker of initlab. ``discover(model, example_input) -> ModelGraph``.

Three front ends build the same dataflow graph of :class:`Node` s (execution order, so indices are
topological): ``torch.fx`` symbolic tracing with known layers as leaves (``method="fx"``); when fx fails and
an ``example_input`` is given, one forward pass with module hooks and a ``TorchFunctionMode`` that sees
functional activations (``F.gelu``, ``torch.tanh``, ``x.relu()``), in-place ops, custom modules and raw
``nn.Parameter`` s used through ``F.linear``/``F.conv*``/``@`` (``method="hooks"``); otherwise the modules in
definition order (``method="static"``: no residual information). One analysis then finds, for every weight
layer, the activation that follows it (walking through reshapes, dropout, pooling and norms), the residual
branches (an addition whose inputs are a block input and a branch computed from it, found in the dataflow,
never from class names), tied and parametrized weights, and the parameters no known layer uses
(``unreached``).

Other packages (diagnostics, methods) reuse this graph; :func:`initlab.model.trace.trace_activations`
records every layer's output and the output of its activation during a forward pass.
"""

from __future__ import annotations

import dataclasses
import operator
import weakref
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import fx, nn
from torch.nn.utils import parametrize

from ..catalog import activations as acts
from ..catalog.activations import Activation
from ..catalog.fans import Fans
from ..errors import InitlabValueError, first_line
from . import layers as L
from ._fingerprint import fingerprint
from ._fuse import Fused, elementwise_call, fuse
from ._fuse import Ref as _Ref
from ._fx_tracer import LeafTracer
from ._input_key import InputKey
from ._isolate import kept_buffers, kept_rngs, quiet_forward
from ._layer_types import RAW, standardized_w2
from ._param_rules import attach_expert_layers, param_rule
from ._record import OpRecorder
from ._registry import Kind, LayerType, fix_line, layer_type, tensor_of, types_decided_once
from ._sizes import (
    CONVS,
    EINSUMS,
    MAX_POOL_MODULES,
    RECORDED,
    averaging_filter,
    border_fraction,
    call_sizes,
    constant_value,
    fx_sizes,
    has_sized_calls,
    index_share,
    input_moments,
    max_window,
    mha_keys,
    padded_conv,
    pool_keep,
    random_call,
    random_or_weighted,
    transposed_border_fraction,
    transposed_conv,
)
from ._walk import ELEMENTWISE as ELEMENTWISE  # the walker's public names: ask the graph for them
from ._walk import SCALE as SCALE
from ._walk import SHAPE as SHAPE
from ._walk import Op as Op
from ._walk import Walker as Walker


@dataclass
class Node:
    """One operation of the dataflow graph.

    ``op`` (:data:`Op`): input, const, param, layer (``name`` = layer name), act (``name`` = catalog spec),
    add, mul, cat, softmax, pool, pass (shape-only: view, dropout, max-pool...), block (a composite such as a
    TransformerEncoderLayer), other, output; fused (merged into an activation by :mod:`._fuse`).
    """

    op: Op
    inputs: tuple[int, ...] = ()
    name: str = ""
    act: Activation | None = field(default=None, repr=False)
    # an elementwise call (function name, arguments with tensors as _Ref, keyword arguments): what fusing
    # activations written from primitives reads (:mod:`._fuse`)
    call: tuple[str, tuple[Any, ...], dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    # sizes the recording pass read from the tensors (:mod:`._sizes`): a contraction length, key counts
    size: tuple[float, ...] = field(default=(), repr=False, compare=False)
    # (second moment, mean[, shared part]) of a tensor computed from constants and parameters only
    value: tuple[float, ...] | None = field(default=None, repr=False, compare=False)
    # (second moment, mean) of a float tensor computed from the model's float input and constants alone (a
    # preprocessing inside the forward), as the example showed it: no plan changes it (:mod:`._sizes`)
    measured: tuple[float, float] | None = field(default=None, repr=False, compare=False)


@dataclass
class LayerInfo:
    """A weight layer as discovery found it.

    ``kind`` says how it computes and ``layer_type`` is its registry record (:mod:`._registry`);
    ``params`` maps each parameter's name within the layer (``weight``, ``bias``, ``weight_hh_l0``,
    ``out_proj.weight``...) to its qualified name in the model; ``specs`` gives its role, layout and block
    structure and ``fans`` its fans (per gate block and group). ``activation`` is the catalog spec of the
    nonlinearity that follows (None: linear or unknown), ``activation_fn`` the catalog object.
    """

    name: str
    module: nn.Module | None
    kind: Kind
    params: dict[str, str]
    specs: dict[str, L.ParamSpec] = field(default_factory=dict, repr=False)
    fans: dict[str, Fans] = field(default_factory=dict)
    activation: str | None = None
    activation_fn: Activation | None = field(default=None, repr=False)
    reached: bool = True
    branch: int | None = None
    last_in_branch: bool = False
    calls: int = 0
    node: int | None = None
    order: float = field(default=float("inf"), repr=False)
    # the share of a zero-padded conv's kernel taps that read the example input, not the padding, and of
    # its response to a position-shared input that stays shared (:func:`._sizes.border_fraction`)
    taps_read: float = 1.0
    shared_read: float = 1.0
    # an attention module's key counts on the example (quantiles; none: its average passes values whole)
    keys: tuple[float, ...] = ()
    # an embedding: the chance two positions of a sample look up the same row on the example (None: unread)
    index_shared: float | None = None
    # E[w^2] of the weight the layer uses whatever the plan draws (a weight-standardized conv), or None
    standardized: float | None = None
    # the activation a norm module applies inside (timm's BatchNormAct2d): its output is that activation's
    inner_act: Activation | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.kind = Kind(self.kind)

    @property
    def layer_type(self) -> LayerType:
        t = layer_type(self.module) if self.module is not None else None
        return t if t is not None else RAW

    @property
    def module_type(self) -> str:
        return type(self.module).__name__ if self.module is not None else "Parameter"

    @property
    def weight_local(self) -> str:
        """The name within the layer of its main weight (``weight`` for torch layers)."""
        for local, spec in self.specs.items():
            if spec.role not in _BIAS_ROLES and local in self.params:
                return local
        return "weight"

    @property
    def bias_local(self) -> str:
        """The name within the layer of the main weight's bias (``bias`` for torch layers)."""
        w = self.weight_local
        for local, spec in self.specs.items():
            if spec.role in _BIAS_ROLES and spec.fans_of == w:
                return local
        return "bias"

    @property
    def weight_fans(self) -> Fans | None:
        for local, spec in self.specs.items():
            if spec.role not in _BIAS_ROLES and local in self.fans:
                return self.fans[local]
        return None


_BIAS_ROLES = ("bias", "rnn_bias", "norm_bias")


@dataclass
class Branch:
    """A residual branch: ``out = shortcut(x) + branch(x)``; ``last`` is its last weight layer, ``norms`` its
    normalization layers (the last one is what ``zero_init_residual`` zeroes)."""

    index: int
    layers: list[str]
    last: str | None
    norms: list[str]
    shortcut: list[str]
    node: int | None = None


class GraphError(InitlabValueError):
    """A graph that does not describe the model it is used with (another model, or the model before a
    change)."""


@dataclass
class ModelGraph:
    """What :func:`discover` found. ``layers`` are in forward execution order (unreached ones last).

    The graph refers to its model weakly (``model_ref``): neither a graph nor initlab's graph cache keeps a
    model alive. ``key`` is the model's fingerprint at discovery (see :func:`check_graph`)."""

    model_ref: weakref.ReferenceType[nn.Module] = field(repr=False)
    layers: list[LayerInfo]
    branches: list[Branch]
    unreached: dict[str, str]
    method: str
    nodes: list[Node] = field(default_factory=list, repr=False)
    tied: dict[str, list[str]] = field(default_factory=dict)
    parametrized: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # plans made from this graph, by (scheme, options), for the repeated calls that reuse a cached graph
    plans: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)
    key: Any = field(default=None, repr=False, compare=False)
    # the one walker over ``nodes`` (consumers, transparency), and how many node visits analysis took
    walker: Walker | None = field(default=None, repr=False, compare=False)
    visits: int = field(default=0, repr=False, compare=False)
    fused: dict[int, str] = field(default_factory=dict, repr=False, compare=False)  # act node -> expression
    # discovery ran the model on example_input (hooks' recording pass, fx's sizes pass): no need to again
    ran_example: bool = field(default=False, repr=False, compare=False)

    @property
    def model(self) -> nn.Module:
        model = self.model_ref()
        if model is None:
            raise GraphError("the model this graph describes was deleted (a graph does not keep it alive)")
        return model

    def layer(self, name: str) -> LayerInfo:
        for info in self.layers:
            if info.name == name:
                return info
        raise KeyError(f"no layer named {name!r}; layers: {', '.join(i.name for i in self.layers[:8])}...")

    def __contains__(self, name: object) -> bool:
        return any(info.name == name for info in self.layers)

    @property
    def has_norm(self) -> bool:
        return any(info.kind == "norm" for info in self.layers)

    def param_layer(self) -> dict[str, tuple[LayerInfo, str]]:
        """Qualified parameter name -> (layer, name within the layer)."""
        return {q: (info, local) for info in self.layers for local, q in info.params.items()}


# ---- building the dataflow ---------------------------------------------------------------------------------
class _Builder:
    def __init__(self, model: nn.Module):
        self.model = model
        self.nodes: list[Node] = []
        self.layers: dict[str, LayerInfo] = {}
        self.composites: dict[str, nn.Module] = {}
        self.param_nodes: dict[str, int] = {}
        self.param_uses: dict[str, str] = {}
        self.notes: list[str] = []
        self.ran_example = False  # see ModelGraph.ran_example
        self.averaging: set[int] = set()  # constants holding an averaging filter (:func:`averaging_filter`)

    def add(
        self, op: Op, inputs: tuple[int, ...] = (), name: str = "", act: Activation | None = None
    ) -> int:
        self.nodes.append(Node(op, inputs, name, act))
        return len(self.nodes) - 1

    def param(self, qualname: str) -> int:
        if qualname not in self.param_nodes:
            self.param_nodes[qualname] = self.add("param", (), qualname)
        return self.param_nodes[qualname]

    def _layer(
        self,
        name: str,
        module: nn.Module | None,
        kind: Kind,
        params: dict[str, str],
        specs: dict[str, L.ParamSpec],
    ) -> LayerInfo:
        info = self.layers.get(name)
        if info is None:
            info = LayerInfo(name, module, kind, params, specs)
            self.layers[name] = info
        info.calls += 1
        return info

    def module_call(self, name: str, module: nn.Module, inputs: tuple[int, ...]) -> int:
        kind = L.layer_kind(module)
        if kind is not None:
            idx = self.add("layer", inputs, name)
            info = self._layer(name, module, kind, {}, {})
            if info.node is None:
                info.node = idx
                info.order = idx
            # a norm with its activation inside (timm's BatchNormAct2d, GroupNormAct: ``self.act``)
            inner = getattr(module, "act", None) if kind == "norm" else None
            act = _module_activation(inner) if isinstance(inner, nn.Module) else None
            info.inner_act = act
            return self.add("act", (idx,), L.activation_spec(act), act) if act is not None else idx
        if isinstance(module, L.COMPOSITES):
            self.composites.setdefault(name, module)
            return self.add("block", inputs, name)
        act = _module_activation(module)
        if act is not None:
            return self.add("act", inputs, L.activation_spec(act), act)
        if isinstance(module, L.AVG_POOL_MODULES):
            return self.add("pool", inputs, name)
        if isinstance(module, L.TRANSPARENT_MODULES):
            return self.add("pass", inputs, name)
        return self.add("other", inputs, name)

    def call(self, fname: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
        idx = self._call(fname, args, kwargs)
        if elementwise_call(fname, args, kwargs):
            self.nodes[idx].call = (fname, tuple(args), dict(kwargs))
        return idx

    def _call(self, fname: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int:
        flat = [*_flatten(args), *_flatten(tuple(kwargs.values()))]
        refs = tuple(a.node for a in flat if isinstance(a, _Ref))
        params = [self.nodes[r].name for r in refs if self.nodes[r].op == "param"]
        data = tuple(r for r in refs if self.nodes[r].op != "param")
        if fname in L.TRANSPARENT_NAMES and flat and isinstance(flat[0], _Ref):
            # a shape op moves its first argument; the rest are sizes and indices (ViT's
            # ``cls_token.expand(B, -1, -1)`` read the batch size as its signal: 4, mean 2). A parameter moved
            # is no data: a value computed from parameters alone (``A_log.float()``) is read as it is
            first = flat[0].node
            data = () if self.nodes[first].op == "param" else (first,)
        if not data:  # an embedding table read whole (DETR's object queries): the table is the data
            data = tuple(r for r in refs if self._is_table(self.nodes[r].name))
        if params and fname in L.LAYER_FUNCS:
            raw = self._raw_layer(fname, args, kwargs, data)
            if raw is not None:
                return raw
        for p in params:
            self.param_uses.setdefault(p, fname)
        act = L.function_act(fname, _literal(args), _literal_kw(kwargs))
        if act is not None and len(data) == 1:
            spec_act = acts.activation(act)
            idx = self.add("act", data, spec_act.spec, spec_act)
            return idx
        if fname in L.ADD_NAMES:
            return self.add("add" if len(data) >= 2 else "pass", data, fname)
        if fname in EINSUMS and len(data) == 1 and params and (gain := self._kept_gain(params)) is not None:
            data = (*data, gain)  # contracted with a parameter no rule draws: its values, as a product's
        if fname in L.MUL_NAMES:
            if len(data) == 1 and params and (gain := self._kept_gain(params)) is not None:
                data = (*data, gain)
            return self.add("mul" if len(data) >= 2 else "pass", data, fname)
        if fname in L.CAT_NAMES:
            return self.add("cat", data, fname)
        if fname in L.SOFTMAX_NAMES:
            return self.add("softmax", data, fname)
        if fname in L.AVG_POOL_NAMES:
            return self.add("pool", data, fname)
        if fname in CONVS and not params and (blur := self._blur_input(args, kwargs)) is not None:
            return self.add("pool", (blur,), fname)
        if fname in L.TRANSPARENT_NAMES:
            return self.add("pass", data, fname)
        return self.add("other", data, fname)

    def _blur_input(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> int | None:
        """The input of ``F.conv*(x, weight, ...)`` when the weight is a fixed averaging filter: a blur,
        which keeps the mean as an average pool does (:func:`._sizes.averaging_filter`)."""
        x = args[0] if args else kwargs.get("input")
        w = args[1] if len(args) > 1 else kwargs.get("weight")
        if isinstance(x, _Ref) and isinstance(w, _Ref) and w.node in self.averaging:
            return x.node
        return None

    def _kept_gain(self, params: list[str]) -> int | None:
        """A signal scaled by parameters no layer owns and no rule draws (layer scale, NF-Nets' zero
        ``skipinit_gain``, ReZero's alpha): a constant of their values, which every plan keeps (on meta: the
        rule's default, else no constant). Read as a shape-only op, NF-Nets' residual branches looked whole
        and their streams 10x the measured."""
        value = (1.0, 1.0)
        for q in params:
            owner, _, _ = q.rpartition(".")
            try:
                module, p = self.model.get_submodule(owner), self.model.get_parameter(q)
            except AttributeError:
                return None
            rule = param_rule(q, tuple(p.shape), module)
            v = constant_value(p)
            if v is None and p.device.type == "meta" and rule is not None and rule.meta is not None:
                v = (rule.meta**2, rule.meta)  # no value yet: the default materialize sets (_param_rules)
            if layer_type(module) is not None or (rule is not None and rule.scheme is not None) or v is None:
                return None
            value = (value[0] * v[0], value[1] * v[1])
        node = self.add("const", (), "*".join(params))
        self.nodes[node].value = value
        return node

    def _is_table(self, param: str) -> bool:
        """An embedding layer's weight (by the layer-type registry): read as data, its rows are the plan's,
        not the constructor's values discovery would otherwise record for an op of parameters alone."""
        owner, _, leaf = param.rpartition(".")
        try:
            t = layer_type(self.model.get_submodule(owner))
        except AttributeError:
            return False
        return t is not None and t.kind.embedding and leaf == "weight"

    def _raw_layer(
        self, fname: str, args: tuple[Any, ...], kwargs: Mapping[str, Any], data: tuple[int, ...]
    ) -> int | None:
        kind = L.LAYER_FUNCS[fname]
        names = self._weight_and_bias(fname, kind, args, kwargs)
        if not names:  # a bias beside a weight computed in the forward: reported as untouched, not planned
            return None
        weight = names[0]
        op = kind
        if kind == "matmul":
            # addmm(bias, x, W) is x @ W: the weight is mat2, stored (in, out)
            right = fname == "addmm" or (self._param_is_right(args, kwargs) and fname != "__rmatmul__")
            op = "matmul_in_out" if right else "linear"
        if kind == "embedding":
            specs = {"weight": L.ParamSpec("embedding")}
        elif kind == "conv_transpose":
            stride = _literal(args)[3] if len(args) > 3 else kwargs.get("stride", 1)
            stride = tuple(stride) if isinstance(stride, tuple | list) else (int(stride),)
            groups = _literal(args)[6] if len(args) > 6 else kwargs.get("groups", 1)
            specs = {"weight": L.ParamSpec("weight", "torch_transposed", groups=int(groups), stride=stride)}
        elif kind == "conv":
            groups = _literal(args)[6] if len(args) > 6 else kwargs.get("groups", 1)
            specs = {"weight": L.ParamSpec("weight", groups=int(groups))}
        else:
            specs = {"weight": L.raw_spec(op)}
        params = {"weight": weight}
        if len(names) > 1:
            params["bias"] = names[1]
            specs["bias"] = L.ParamSpec("bias", fans_of="weight")
        idx = self.add("layer", data, weight)
        info = self._layer(weight, None, Kind.RAW, params, specs)
        if info.node is None:
            info.node = idx
            info.order = idx
        return idx

    def _param(self, args: tuple[Any, ...], kwargs: Mapping[str, Any], pos: int, key: str) -> str | None:
        """The parameter passed at ``pos`` (or as ``key``), or None when that argument is not a parameter."""
        arg = args[pos] if len(args) > pos else kwargs.get(key)
        if isinstance(arg, _Ref) and self.nodes[arg.node].op == "param":
            return self.nodes[arg.node].name
        return None

    def _weight_and_bias(self, fname: str, kind: str, args: tuple[Any, ...],
                         kwargs: Mapping[str, Any]) -> list[str]:
        """[weight, bias?] by where the function takes them, so that a bias is never read as the weight
        (Mamba's conv1d passes its weight through a view, its bias directly); [] when the weight argument is
        not a parameter. matmul-like calls take one parameter, on either side."""
        if fname == "addmm":  # addmm(bias, x, weight)
            weight, bias = self._param(args, kwargs, 2, "mat2"), self._param(args, kwargs, 0, "input")
            return [] if weight is None else [weight, *([bias] if bias else [])]
        if kind == "matmul":
            return [name for name in self._ref_params(args, kwargs) if name][:1]
        at = _WEIGHT_BIAS_ARGS.get(kind, _WEIGHT_BIAS_ARGS["conv"])
        weight = self._param(args, kwargs, at[0], "weight")
        bias = self._param(args, kwargs, at[1], "bias") if weight is not None and at[1] else None
        return [] if weight is None else [weight, *([bias] if bias else [])]

    def _param_is_right(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
        """x @ W (the parameter on the right: an (in, out) weight) rather than W @ x."""
        return not self._ref_params(args, kwargs)[0]

    def _ref_params(self, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> list[str | None]:
        """Each tensor argument in order: its parameter name, or None for data."""
        refs = [a for a in (*_flatten(args), *_flatten(tuple(kwargs.values()))) if isinstance(a, _Ref)]
        return [self.nodes[r.node].name if self.nodes[r.node].op == "param" else None for r in refs]


# (weight, bias) positional indices: F.linear/conv*/conv_transpose*/embedding(input, weight, bias, ...),
# F.bilinear(input1, input2, weight, bias)
_WEIGHT_BIAS_ARGS = {"linear": (1, 2), "conv": (1, 2), "conv_transpose": (1, 2), "embedding": (1, 0),
                     "bilinear": (2, 3)}  # 0: no bias


def _inference_fn(module: nn.Module, fn: Any) -> Any:
    """A custom activation module evaluated by the catalog (moment maps, gains) long after discovery: in eval
    mode (stochastic depth in train mode is a random mask, not a function) and with the global RNGs kept."""

    def run(x: Any) -> Any:
        flags = [(m, m.training) for m in module.modules()]
        module.eval()
        try:
            with kept_rngs():
                return fn(x)
        finally:
            for m, flag in flags:
                m.training = flag

    run.runs_module = True  # type: ignore[attr-defined]  # (see runs_modules)
    return run


def runs_modules(graph: ModelGraph) -> bool:
    """Whether planning on ``graph`` evaluates a module of the model (a custom activation module): the caller
    then keeps the global RNGs once around the whole planning, not once per evaluation."""
    return any(n.act is not None and getattr(n.act.fn, "runs_module", False) for n in graph.nodes)


def _flatten(items: tuple[Any, ...]) -> list[Any]:
    out: list[Any] = []
    for x in items:
        if isinstance(x, list | tuple):
            out.extend(_flatten(tuple(x)))
        else:
            out.append(x)
    return out


def _literal(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(None if isinstance(a, _Ref) else a for a in args)


def _literal_kw(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (None if isinstance(v, _Ref) else v) for k, v in kwargs.items()}


# ---- front end 1: torch.fx ---------------------------------------------------------------------------------
def _fx_name(target: Any) -> str:
    # operator.truediv is a division, not the product layers.func_name groups it with: fused activations
    # (x / sqrt(2) inside GELU) need the difference; "div" is classified as a product all the same
    if target in (operator.truediv, operator.itruediv):
        return "div"
    return L.func_name(target)


def _from_fx(model: nn.Module, example_input: Any = None) -> _Builder:
    # Decide the leaves before tracing: classifying a custom module runs it, which must not happen under fx.
    tracer = LeafTracer({id(m) for m in model.modules() if L.is_leaf(m)})
    graph = tracer.trace(model)
    b = _Builder(model)
    param_names = dict(model.named_parameters(remove_duplicate=False))
    ids: dict[fx.Node, int] = {}
    alias: dict[int, int] = {}

    def ref(a: Any) -> Any:
        if isinstance(a, fx.Node):
            i = ids[a]
            return _Ref(alias.get(i, i))
        if isinstance(a, list | tuple):
            return type(a)(ref(x) for x in a)
        if isinstance(a, dict):
            return {k: ref(v) for k, v in a.items()}
        return a

    for n in graph.nodes:
        if n.op == "placeholder":
            ids[n] = b.add("input", (), str(n.target))
        elif n.op == "get_attr":
            target = str(n.target)
            ids[n] = b.param(target) if target in param_names else _buffer_node(b, model, target)
        elif n.op == "call_module":
            module = model.get_submodule(str(n.target))
            inputs = tuple(r.node for r in _flatten(tuple(ref(n.args))) if isinstance(r, _Ref))
            ids[n] = b.module_call(str(n.target), module, inputs)
        elif n.op in ("call_function", "call_method"):
            fname = str(n.target) if n.op == "call_method" else _fx_name(n.target)
            args = ref(n.args)
            ids[n] = b.call(fname, tuple(args), ref(dict(n.kwargs)))
            if n.op == "call_method" and fname.endswith("_") and not fname.endswith("__") and n.args:
                first = ref(n.args[0])
                if isinstance(first, _Ref):
                    alias[first.node] = ids[n]
        elif n.op == "output":
            inputs = tuple(r.node for r in _flatten((ref(n.args),)) if isinstance(r, _Ref))
            ids[n] = b.add("output", inputs)
    if example_input is not None:  # the sizes hooks discovery reads from the recording pass (:mod:`._sizes`)
        with quiet_forward(model):
            sizes = fx_sizes(graph, model, example_input, _fx_call_name, _sized_module, _module_size,
                             fixed=lambda target: not b._is_table(target), literals=tracer.literals)
        b.ran_example = sizes is not None and has_sized_calls(graph, _fx_call_name, model, _sized_module)
        if sizes is None:
            sizes = {}
            b.notes.append("the traced graph did not run on example_input, so attention averages and "
                           "shape-derived scales are predicted as for i.i.d. tokens (var_out may be off "
                           "there); pass the input as the model's forward takes it")
        for n, (size, value, measured) in sizes.items():
            node = b.nodes[alias.get(ids[n], ids[n])]
            node.size, node.value, node.measured = size, value, measured
    return b


def _buffer_node(b: _Builder, model: nn.Module, target: str) -> int:
    """A constant the traced graph reads from the model, with its value's moments when it is a registered
    buffer holding a finite float table: Swin-V2's relative coordinates feed an MLP, which was planned for
    "a zero input" before. No plan writes buffers, so the value read is the value used. (A tensor the forward
    computed outside the graph, which fx made an attribute, ``_tensor_constant0``, stays a constant, as in
    the hooked pass: read, the periods of DINOv3's rotary tables made its attention look sharper than it is,
    and Swin-S3's window mask, added to its logits, its attention: 0.18x. Where such a tensor takes part in
    a preprocessing of the input, the example's moments stand for the result, :class:`._sizes.InputDerived`.)
    """
    node = b.add("const", (), target)
    try:
        value = model.get_buffer(target)
    except AttributeError:
        return node
    b.nodes[node].value = constant_value(value)
    if averaging_filter(value):
        b.averaging.add(node)
    return node


def _module_activation(module: nn.Module) -> Activation | None:
    """The catalog activation an activation module computes (a scalar PReLU as its leaky ReLU)."""
    act = L.module_act(module)
    if act is None and isinstance(module, nn.PReLU) and module.weight.numel() == 1:
        act = acts.activation("leaky_relu", negative_slope=float(module.weight.detach().reshape(())))
    if act is not None and act.name not in acts.activation_names():
        act = dataclasses.replace(act, fn=_inference_fn(module, act.fn))
    return act


_SIZED_MODULES = (*L.AVG_POOL_MODULES, *MAX_POOL_MODULES, nn.MultiheadAttention, nn.Embedding)


def _sized_module(module: nn.Module) -> bool:
    """A module whose sizes discovery reads from the example (:func:`_module_size`)."""
    return padded_conv(module) or transposed_conv(module) or isinstance(module, _SIZED_MODULES)


def _module_size(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
                 ) -> tuple[float, ...]:
    """The share of a zero-padded conv's taps that read the input, of its input's variance an average pool
    keeps, an attention module's key counts, or how often an embedding's positions share a row
    (:mod:`._sizes`)."""
    if isinstance(module, nn.MultiheadAttention):
        return mha_keys(module, args, kwargs)
    if not args:
        return ()
    if isinstance(module, nn.Embedding):
        return index_share(args[0])
    if padded_conv(module):
        return border_fraction(cast(Any, module), args[0])
    if transposed_conv(module):
        return transposed_border_fraction(cast(Any, module), args[0], out)
    if isinstance(module, MAX_POOL_MODULES):
        m = cast(Any, module)
        dims = next(d for d, t in enumerate(MAX_POOL_MODULES, 1) if isinstance(module, t))  # (subclasses too)
        return max_window(args[0], dims, m.kernel_size, m.stride, m.padding, m.dilation)
    return pool_keep(args[0], out)


def _fx_call_name(n: fx.Node) -> str:
    return str(n.target) if n.op == "call_method" else _fx_name(n.target)


# ---- front end 2: one forward pass with hooks and a TorchFunctionMode --------------------------------------
class _Recorder:
    """Builds nodes from the calls :class:`OpRecorder` hands on: ``producer`` maps each tensor seen (by
    ``id``, kept alive in ``keep`` so that ids are not reused) to its node."""

    def __init__(self, builder: _Builder, params: dict[int, str], buffers: set[int] | None = None,
                 sizes: bool = True):
        self.b = builder
        self.params = params
        self.sizes = sizes  # False: no sizes and no computed constants (a plan's inputs; diagnose's not)
        self.buffers = buffers or set()  # registered buffers: their values are read, as fx discovery does
        self.producer: dict[int, int] = {}
        self.fixed: set[int] = set()  # nodes computed from constants alone
        self.data: set[int] = set()  # the float input, and what is computed from it and constants alone
        self.keep: list[Any] = []
        self.mode = OpRecorder(self.on_call)

    def ref(self, a: Any) -> Any:
        if isinstance(a, torch.Tensor):
            key = id(a)
            if key not in self.producer:
                if key in self.params:
                    self.producer[key] = self.b.param(self.params[key])
                else:
                    self.producer[key] = self.b.add("const")
                    if key in self.buffers:
                        self.b.nodes[self.producer[key]].value = constant_value(a)
                        if averaging_filter(a):
                            self.b.averaging.add(self.producer[key])
                self.keep.append(a)
            return _Ref(self.producer[key])
        if isinstance(a, list | tuple):
            return type(a)(self.ref(x) for x in a)
        if isinstance(a, dict):
            return {k: self.ref(v) for k, v in a.items()}
        return a

    def bind(self, out: Any, node: int) -> None:
        for t in _flatten((out,)):
            if isinstance(t, torch.Tensor) and id(t) not in self.params:
                self.producer[id(t)] = node
                self.keep.append(t)

    def on_call(self, fname: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if any(isinstance(t, torch.Tensor) for t in _flatten((out,))):
            node = self.b.call(fname, tuple(self.ref(args)), self.ref(dict(kwargs)))
            fixed = self.sizes and self.read_sizes(node, fname, args, kwargs, out)
            if _several(out):
                self.items(out, node, fixed)
            else:
                self.bind(out, node)

    def read_sizes(self, node: int, fname: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any
                   ) -> bool:
        """What the call averages (:func:`._sizes.call_sizes`) and, when it computes from constants alone,
        its value; whether it does."""
        n = self.b.nodes[node]
        if fname in RECORDED:
            n.size = call_sizes(fname, args, kwargs, out)
        fixed = all(j in self.fixed or self.b.nodes[j].op == "const" or self.b.nodes[j].value is not None
                    for j in n.inputs)
        if fixed:  # of constants alone: its value is the value used (an integer one has no moments, but
            # what is computed from it does: DINOv3's rotary angles from ``arange``)
            self.fixed.add(node)
            n.value = constant_value(out)
        elif not random_call(fname) and not any(id(t) in self.params
                                                for t in _flatten((*args, *kwargs.values()))):
            self.measure(node, out)
        return fixed

    def measure(self, node: int, out: Any) -> None:
        """The example's moments of a value computed from the float input and constants alone
        (:class:`._sizes.InputDerived`; a call or a module the caller has found free of parameters and
        randomness)."""
        ins = self.b.nodes[node].inputs
        if not any(j in self.data for j in ins) or not all(
                j in self.data or j in self.fixed or self.b.nodes[j].op == "const" for j in ins):
            return
        found = input_moments(out)
        if found is not None:
            self.b.nodes[node].measured = found
            self.data.add(node)

    def items(self, out: tuple[Any, ...] | list[Any], node: int, fixed: bool) -> None:
        """Each tensor of a call's tuple (``a, b = x.chunk(2, -1)``) its own ``getitem`` node, as fx has it:
        bound to the call itself, a gated unit's ``silu(a) * b`` read as ``silu(z) * z`` (swish). The items
        of a constant (a rotary table's ``sin, cos = emb.tensor_split(2, -1)``) keep their values."""
        for i, t in enumerate(out):
            if isinstance(t, torch.Tensor):
                item = self.b.call("getitem", (_Ref(node), i), {})
                if self.sizes:
                    self.b.nodes[item].size = call_sizes("getitem", (out, i), {}, t)
                if fixed:
                    self.fixed.add(item)
                    self.b.nodes[item].value = constant_value(t)
                self.bind(t, item)


def _several(out: Any) -> bool:
    """A call's output is a tuple of more than one tensor (each becomes a ``getitem`` node)."""
    return isinstance(out, tuple | list) and sum(isinstance(t, torch.Tensor) for t in out) > 1


def _leaves(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Each leaf module once, under its first name (as ``named_modules`` and fx name it): a layer shared by
    two blocks (CoaT's position encodings), hooked under both, was recorded under its last name, which no
    report row has."""
    seen: set[int] = set()

    def walk(prefix: str, module: nn.Module) -> Iterator[tuple[str, nn.Module]]:
        for name, child in module.named_children():
            q = f"{prefix}.{name}" if prefix else name
            if id(child) in seen:
                continue
            seen.add(id(child))
            if L.is_leaf(child):
                yield q, child
            else:
                yield from walk(q, child)

    yield from walk("", model)


def _from_hooks(model: nn.Module, example_input: Any, sizes: bool = True) -> _Builder:
    b = _Builder(model)
    params = {id(p): n for n, p in model.named_parameters(remove_duplicate=False)}
    rec = _Recorder(b, params, {id(t) for _, t in model.named_buffers()}, sizes)
    handles = []

    def post(name: str) -> Any:
        def hook(module: nn.Module, args: Any, kwargs: Any, out: Any) -> None:
            # sizes first: still inside the module (depth 1), the recorder does not take their arithmetic
            # for the model's
            sized = sizes and rec.mode.depth == 1 and _sized_module(module)
            size = _module_size(module, tuple(args), dict(kwargs), out) if sized else ()
            rec.mode.leave()
            if rec.mode.depth == 0:
                refs = _flatten((rec.ref(args), rec.ref(dict(kwargs))))
                inputs = tuple(r.node for r in refs if isinstance(r, _Ref) and b.nodes[r.node].op != "param")
                node = b.module_call(name, module, inputs)
                b.nodes[node].size = size or b.nodes[node].size
                if sizes and not random_or_weighted(module):
                    rec.measure(node, out)
                rec.bind(out, node)

        return hook

    for name, module in _leaves(model):
        handles.append(module.register_forward_pre_hook(rec.mode.enter, with_kwargs=True))
        handles.append(module.register_forward_hook(post(name), with_kwargs=True))
    args, kwargs = _split_input(example_input)
    try:
        with rec.mode:
            # keyword inputs (a dict example_input, as HF models take) are the model's input as much as
            # positional ones: unmarked, they would read as constants of zero variance
            given = _flatten((*args, *kwargs.values()))
            inputs = [rec.ref(a) for a in given]
            for r, a in zip(inputs, given, strict=True):
                if isinstance(r, _Ref):
                    b.nodes[r.node].op = "input"
                    if a.is_floating_point():
                        rec.data.add(r.node)
            out = model(*args, **kwargs)
            refs = _flatten((rec.ref(out),))
            b.add("output", tuple(r.node for r in refs if isinstance(r, _Ref)))
    finally:
        for h in handles:
            h.remove()
    return b


def _on_meta(example_input: Any) -> bool:
    args, kwargs = _split_input(example_input)
    tensors = _flatten((*args, *kwargs.values()))
    return any(isinstance(t, torch.Tensor) and t.device.type == "meta" for t in tensors)


def _split_input(example_input: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(example_input, Mapping):
        return (), dict(example_input)
    if isinstance(example_input, tuple | list):
        return tuple(example_input), {}
    return (example_input,), {}


def _from_root_leaf(model: nn.Module) -> _Builder:
    b = _Builder(model)
    b.add("output", (b.module_call("", model, (b.add("input"),)),))
    return b


# ---- front end 3: definition order -------------------------------------------------------------------------
def _from_static(model: nn.Module) -> _Builder:
    b = _Builder(model)
    last = b.add("input")
    for name, module in _leaves(model):
        last = b.module_call(name, module, (last,))
    b.add("output", (last,))
    return b


# ---- analysis ----------------------------------------------------------------------------------------------
def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DataParallel/DistributedDataParallel (``.module``) or torch.compile
    (``._orig_mod``)."""
    while True:
        inner = getattr(model, "_orig_mod", None)
        if isinstance(inner, nn.Module):
            model = inner
            continue
        if isinstance(model, nn.DataParallel | nn.parallel.DistributedDataParallel) or (
            type(model).__name__ in ("DistributedDataParallel", "FullyShardedDataParallel")
            and isinstance(getattr(model, "module", None), nn.Module)
        ):
            inner = model.module
            assert isinstance(inner, nn.Module)
            model = inner
            continue
        return model


def _fill_layer(info: LayerInfo, names: set[str], shapes: dict[str, torch.Size]) -> None:
    if info.module is None:
        for local, q in info.params.items():
            fans = _fans_or_none(info.specs[local], tuple(shapes[q]))
            if fans is not None:
                info.fans[local] = fans
        return
    specs = L.param_specs(info.kind, info.module)
    for local, spec in specs.items():
        q = f"{info.name}.{local}" if info.name else local
        if q not in names:
            continue
        info.params[local] = q
        info.specs[local] = spec
        tensor = tensor_of(info.module, local)
        if tensor is not None:
            fans = _fans_or_none(spec, tuple(tensor.shape))
            if fans is not None:
                info.fans[local] = fans


def _fans_or_none(spec: L.ParamSpec, shape: tuple[int, ...]) -> Fans | None:
    try:
        return spec.fans(shape)
    except ValueError:
        return None


def _branches(nodes: list[Node], walker: Walker, weight_layers: set[str]) -> list[Branch]:
    """Residual branches: an addition whose inputs meet at a block input, with more layers on one side (the
    branch) than on the other (the shortcut: at most one layer). Linear in the ops between each addition and
    its block input (:meth:`Walker.meet`)."""
    out: list[Branch] = []
    for i, n in enumerate(nodes):
        if n.op != "add" or len(n.inputs) < 2:
            continue
        met = walker.meet(n.inputs[0], n.inputs[1])
        if met is None or nodes[met[0]].op in ("const", "param"):
            continue
        paths = [[k for k in side if nodes[k].op in ("layer", "block")] for side in met[1:]]
        paths.sort(key=len)
        shortcut, branch = paths
        if not branch or len(shortcut) > 1 or len(shortcut) >= len(branch):
            continue
        names = [nodes[k].name for k in branch]
        weights = [x for x in names if x in weight_layers]
        if not weights and not any(nodes[k].op == "block" for k in branch):
            continue
        norms = [x for x in names if x in walker.norms]
        last = weights[-1] if weights else None
        out.append(Branch(len(out), names, last, norms, [nodes[k].name for k in shortcut], i))
    return out


def _expand_composite(name: str, module: nn.Module, b: _Builder, branches: list[Branch], at: float) -> None:
    """Known structure of torch's Transformer layers (their forward has a fused fast path fx cannot trace)."""
    if isinstance(module, L.TRANSFORMER_LAYERS):
        p = f"{name}." if name else ""
        act = getattr(module, "activation", None)
        act_obj = (
            L.module_act(act)
            if isinstance(act, nn.Module)
            else (acts.activation(act) if callable(act) else None)
        )
        pre = bool(getattr(module, "norm_first", False))
        attn = ["self_attn"] + (["multihead_attn"] if isinstance(module, nn.TransformerDecoderLayer) else [])
        norms = ["norm1", "norm2", "norm3"][: len(attn) + 1]
        blocks = [([a], norms[k]) for k, a in enumerate(attn)] + [(["linear1", "linear2"], norms[-1])]
        for members, norm in blocks:
            order = ([norm] if pre else []) + members + ([] if pre else [norm])
            for part in order:
                kind = L.layer_kind(module.get_submodule(part))
                if kind is None:
                    continue
                info = b._layer(p + part, module.get_submodule(part), kind, {}, {})
                info.order = at + len(b.layers) * 1e-6
                if part == "linear1" and act_obj is not None:
                    info.activation, info.activation_fn = L.activation_spec(act_obj), act_obj
            br = Branch(len(branches), [p + c for c in order], p + members[-1], [p + norm] if pre else [], [])
            branches.append(br)
        return
    for child_name, child in module.named_children():
        q = f"{name}.{child_name}" if name else child_name
        if isinstance(child, L.COMPOSITES):
            _expand_composite(q, child, b, branches, at)
        elif isinstance(child, nn.ModuleList):
            for k, sub in child.named_children():
                _expand_composite(f"{q}.{k}", sub, b, branches, at)
        elif L.layer_kind(child) is not None:
            b._layer(q, child, L.layer_kind(child) or Kind.RAW, {}, {}).order = at + len(b.layers) * 1e-6


def _analyze(b: _Builder, model: nn.Module, method: str) -> ModelGraph:
    named = list(model.named_parameters(remove_duplicate=False))
    names = {n for n, _ in named}
    walker, branches, fused = _attribute(b, method)
    _never_called(b, model, method)
    parametrized = _parametrized(model, names)
    logical = names | set(parametrized)
    shapes = {n: p.shape for n, p in named}
    for info in b.layers.values():
        _fill_layer(info, logical, shapes)
        convs = (Kind.CONV, Kind.CONV_TRANSPOSE)
        if info.node is not None and info.kind in convs and len(b.nodes[info.node].size) == 2:
            info.taps_read, info.shared_read = b.nodes[info.node].size
        elif info.node is not None and info.kind == "attention":
            info.keys = b.nodes[info.node].size
        elif info.node is not None and info.kind == "embedding" and len(b.nodes[info.node].size) == 1:
            info.index_shared = b.nodes[info.node].size[0]
        if info.kind == "conv" and info.module is not None:
            info.standardized = standardized_w2(info.module)
    layers = sorted(b.layers.values(), key=lambda i: i.order)
    for br in branches:
        for lname in br.layers:
            if lname in b.layers and b.layers[lname].branch is None:
                b.layers[lname].branch = br.index
        if br.last in b.layers:
            b.layers[br.last].last_in_branch = True
    tied, unreached = _coverage(b, model, named, layers, parametrized, method)
    graph = ModelGraph(weakref.ref(model), layers, branches, unreached, method, b.nodes, tied, parametrized)
    graph.notes.extend([*b.notes, *fused.notes, *_unmeasured_pools(b)])
    graph.walker = walker
    graph.visits = walker.visits + fused.visits
    graph.fused = fused.composites
    graph.ran_example = b.ran_example
    return graph


def _unmeasured_pools(b: _Builder) -> list[str]:
    """A note naming the average pools whose kept share the example forward could not show (its input the
    same for every sample: a zero-initialized norm before it), predicted from their window."""
    if not b.ran_example:
        return []
    pools = {i for i, n in enumerate(b.nodes) if n.op == "pool" and len(n.size) != 1}
    if not pools:
        return []
    before = [n.name for n in b.nodes if n.op == "layer" and pools & set(n.inputs)]  # the layers they feed
    where = ", ".join(before[:3]) or "the output"
    return [f"{len(pools)} average pool(s) (before {where}) read an input that is the same for every sample "
            "of example_input, so the share of variance they keep is computed from their window as if "
            "the positions varied independently beyond what they share, and the layers after them may be "
            "off: pass an example_input whose samples differ there"]


def _attribute(b: _Builder, method: str) -> tuple[Walker, list[Branch], Fused]:
    """Fuse activations written from primitives, then walk: the activation after each layer, the residual
    branches, the known structure of composite blocks."""
    nodes = b.nodes
    fused = fuse(nodes, lambda k: nodes[k].name or nodes[k].op)
    norm_names = {n for n, info in b.layers.items() if info.kind == "norm"}
    walker = Walker(nodes, norm_names, fused.affine)
    for info in list(b.layers.values()):
        if info.node is not None and info.kind not in ("norm", "rnn"):
            found = walker.activation_after(info.node)
            if found is not None:
                info.activation, info.activation_fn = nodes[found].name, nodes[found].act
    branches: list[Branch] = []
    if method != "static":
        weight_names = {n for n, info in b.layers.items() if info.kind != "norm"}
        branches = _branches(nodes, walker, weight_names)
    block_nodes = {n.name: i for i, n in enumerate(nodes) if n.op == "block"}
    for cname, cmod in b.composites.items():
        _expand_composite(cname, cmod, b, branches, block_nodes.get(cname, len(nodes)))
    return walker, branches, fused


def _never_called(b: _Builder, model: nn.Module, method: str) -> None:
    """Known layers the forward never called (nor any layer above them)."""
    seen = set(b.layers)
    for qname, module in model.named_modules():
        kind = L.layer_kind(module)
        if kind is None or qname in seen:
            continue
        parts = qname.split(".")
        if any(".".join(parts[:k]) in seen for k in range(1, len(parts))):
            continue
        info = b._layer(qname, module, kind, {}, {})
        info.calls = 0
        info.reached = method == "static"


def _parametrized(model: nn.Module, names: set[str]) -> dict[str, list[str]]:
    """Parametrized weights: the logical name stands for its originals."""
    out: dict[str, list[str]] = {}
    for mname, module in model.named_modules():
        if parametrize.is_parametrized(module):
            for tname in module.parametrizations:
                prefix = f"{mname}.parametrizations.{tname}." if mname else f"parametrizations.{tname}."
                out[f"{mname}.{tname}" if mname else tname] = sorted(n for n in names if n.startswith(prefix))
    return out


def _coverage(
    b: _Builder,
    model: nn.Module,
    named: list[tuple[str, nn.Parameter]],
    layers: list[LayerInfo],
    parametrized: dict[str, list[str]],
    method: str,
) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Tied weights, and why each parameter no layer covers is left untouched."""
    first: dict[int, str] = {}
    tied: dict[str, list[str]] = {}
    for n, p in named:
        if id(p) in first:
            tied.setdefault(first[id(p)], []).append(n)
        else:
            first[id(p)] = n
    covered = {q for info in layers for q in info.params.values()}
    for lname, originals in parametrized.items():
        if lname in covered:
            covered.update(originals)
    unreached: dict[str, str] = {}
    owners = dict(model.named_modules())
    for n, p in named:
        if n in covered or (first[id(p)] != n and first[id(p)] in covered):
            continue
        mod = owners.get(n.rpartition(".")[0].split(".parametrizations")[0])
        if n in b.param_uses:
            fix = f"; {fix_line(mod)}" if mod is not None and layer_type(mod) is None else ""
            unreached[n] = f"used by {b.param_uses[n]!r}, not a weight-layer op: left untouched{fix}"
        elif method != "static" and n not in b.param_nodes and not (mod is not None and L.is_leaf(mod)):
            unreached[n] = "never used in the traced forward: left untouched"
        else:
            mtype = type(mod).__name__ if mod is not None else "?"
            unreached[n] = f"unknown module type {mtype}: left untouched; {fix_line(mod or mtype)}"
    for info in layers:
        if not info.reached:
            for q in info.params.values():
                unreached.setdefault(
                    q, "module never called in the traced forward (initialized from its type)"
                )
    return tied, unreached


# The graph cache: model -> (fingerprint, graph). Keys are weak and a graph refers to its model weakly, so a
# cached model is collected as soon as the user drops it.
_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[Any, ModelGraph]] = weakref.WeakKeyDictionary()
# graphs found with an example_input (hooks, or fx given one): model -> (fingerprint, input key, graph,
# whether it has sizes)
_RUN_CACHE: weakref.WeakKeyDictionary[nn.Module, tuple[Any, InputKey, ModelGraph, bool]] = (
    weakref.WeakKeyDictionary())


Walk = tuple[dict[str, nn.Module], dict[str, torch.Tensor]]


def named_tensors(model: nn.Module) -> Walk:
    """Every module and parameter by qualified name, duplicates included, in one walk of the model."""
    modules: dict[str, nn.Module] = {}
    _add_modules(model, "", modules)
    params: dict[str, torch.Tensor] = {
        f"{mname}.{pname}" if mname else pname: p
        for mname, m in modules.items()
        for pname, p in m._parameters.items()
        if p is not None
    }
    return modules, params


def _add_modules(module: nn.Module, prefix: str, out: dict[str, nn.Module]) -> None:
    """``dict(module.named_modules(prefix=prefix, remove_duplicate=False))``, in the same order, without its
    nested generators (whose cost grows with depth: a third of a cached ``init_model`` call's walk)."""
    out[prefix] = module
    for name, sub in module._modules.items():
        if sub is not None:
            _add_modules(sub, f"{prefix}.{name}" if prefix else name, out)


def _fingerprint(model: nn.Module, walk: Walk | None) -> Any:
    modules, params = walk or named_tensors(model)
    return fingerprint(modules, params)


def discover(
    model: nn.Module,
    example_input: Any = None,
    *,
    cache: bool = True,
    walk: Walk | None = None,
    sizes: bool = True,
) -> ModelGraph:
    """Find the weight layers of ``model``, the activation after each, residual branches, tied and
    parametrized weights. ``example_input``: a tensor, a tuple of positional inputs, or a dict of keyword
    inputs; used when fx cannot trace the model (one quiet forward pass, :func:`._isolate.quiet_forward`:
    eval mode but BatchNorm by the batch, without gradients; global RNGs and buffers kept). An fx graph is
    cached per model while everything it depends on stays the same (modules, their attributes, parameters:
    see :mod:`._fingerprint`; ``cache=False`` rebuilds it), a graph found with an ``example_input`` while
    the input is the same tensors, unmodified (:mod:`._input_key`); ``walk``: :func:`named_tensors` of the
    model when the caller has it. ``sizes=False``: the example serves only where fx cannot trace, and no sizes
    are read (what the layers' outputs average, and values computed from constants: a plan needs them, the
    diagnostics do not); such a graph serves no later call that needs them.
    """
    model = unwrap(model)
    key = _fingerprint(model, walk)
    if cache and (example_input is None or not sizes):
        hit = _CACHE.get(model)
        if hit is not None and hit[0] == key:
            return hit[1]
    if cache and example_input is not None:  # a graph found by running the model: for the same input only
        ran = _RUN_CACHE.get(model)
        # a graph without sizes (diagnose's) does not serve a plan
        if ran is not None and ran[0] == key and (ran[3] or not sizes) and ran[1].matches(example_input):
            return ran[2]
    # Classifying a custom module runs it (stochastic depth draws in train mode) and reading a parametrized
    # weight runs its parametrization (spectral norm's power iteration writes _u/_v in train mode).
    with kept_rngs(), kept_buffers(model), types_decided_once():
        graph = _discover(model, example_input, sizes)
    graph.key = key
    # A graph holding the model itself (a root that is one layer) would keep the cache's key alive.
    if not cache or any(info.module is model for info in graph.layers):
        return graph
    if graph.method == "fx" and (example_input is None or not sizes):  # as without an example
        _CACHE[model] = (key, graph)
    elif example_input is not None:
        _RUN_CACHE[model] = (key, InputKey(example_input), graph, sizes)
    return graph


def check_graph(graph: ModelGraph, model: nn.Module, walk: Walk | None = None) -> None:
    """Raise :class:`GraphError` unless ``graph`` was discovered from ``model`` as it is now."""
    if not isinstance(graph, ModelGraph):
        raise GraphError(
            f"graph must be a ModelGraph from initlab.discover(model), got {type(graph).__name__}"
        )
    model = unwrap(model)
    if graph.model_ref() is not model:
        raise GraphError(
            "graph= was discovered from a different model: pass graph=discover(model) for this model, "
            "or leave graph out"
        )
    if graph.key is not None and graph.key != _fingerprint(model, walk):
        raise GraphError(
            "the model changed since graph= was discovered (modules, attributes or parameters): "
            "pass graph=discover(model) again, or leave graph out"
        )


def _discover(model: nn.Module, example_input: Any, sizes: bool = True) -> ModelGraph:
    notes: list[str] = []
    if sizes and _on_meta(example_input):  # no values to read sizes from (the first read failed, and
        sizes = False  # the report said the graph could not run on the input)
        notes.append("example_input is on the meta device: no sizes read from it (attention averages and "
                     "shape-derived scales are predicted as for i.i.d. tokens); pass real values for them")
    b: _Builder | None = None
    method = "fx"
    try:
        b = _from_root_leaf(model) if L.is_leaf(model) else _from_fx(model, example_input if sizes else None)
    except Exception as exc:  # fx fails on data-dependent control flow, unsupported ops...
        notes.append(
            f"torch.fx could not trace the model ({first_line(exc)[:160]})"
        )
    if b is None and example_input is not None:
        b = _run_hooks(model, example_input, sizes)
        method = "hooks"
    if b is None:
        b = _from_static(model)
        method = "static"
        notes.append(
            "no example_input: layers in definition order, activations from the next module, "
            "no residual branches"
        )
    graph = _analyze(b, model, method)
    graph.notes.extend(notes)
    attach_expert_layers(graph)  # registry pass: fused MoE expert tensors become per-expert weight layers
    return graph


def _run_hooks(model: nn.Module, example_input: Any, sizes: bool = True) -> _Builder:
    with quiet_forward(model):
        b = _from_hooks(model, example_input, sizes)
    b.ran_example = True
    return b


def run_forward(model: nn.Module, example_input: Any) -> Any:
    """One quiet forward pass (:func:`._isolate.quiet_forward`)."""
    args, kwargs = _split_input(example_input)
    with quiet_forward(model):
        return model(*args, **kwargs)

"""Planning: from a :class:`~.graph.ModelGraph`, a scheme and rules to one :class:`Assignment` per parameter.

A plan is pure data (draws from the catalog, per gate block where a weight stacks blocks) and is made from
shapes alone, so it works on meta-device models; :func:`apply_plan` draws it into real tensors (also after a
later ``materialize``). Schemes come from a *chooser*: :class:`ProfileChooser` maps each parameter's role to
the rule of a framework profile (``torch:default``, ``keras:default``...) or of one catalog scheme applied
with the layer's fans and following activation; the "auto" scheme (:mod:`.auto`) is another chooser."""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn

from ..catalog import draws as d
from ..catalog import get
from ..catalog.fans import Fans, compute_fans, framework_fans
from ..catalog.initializers import Context, Initializer
from ..catalog.profiles import Profile, profile, scheme_profile
from ..catalog.registry import Scheme
from ..errors import InitlabValueError
from ._isolate import kept_buffers, kept_rngs
from ._param_rules import ParamRule, param_rule
from ._steps import SetRow, SetSlice, Step, as_steps
from .graph import LayerInfo, ModelGraph
from .layers import Kind, ParamSpec
from .report import InitReport, Row

SchemeLike = str | Initializer | Mapping[str, Any]
KEEP = "keep"


# ---- plan data ---------------------------------------------------------------------------------------------
@dataclass
class Assignment:
    """How to fill one parameter: ``draws`` per block along dim 0 (one draw: the whole tensor), then ``post``
    steps (typed, :mod:`._steps`; legacy tuples such as ``("row", index, value)`` are converted): a padding
    row, a forget-gate slice, a residual scale, fixed row norms or sums, a centred bias, a looks-linear
    layout."""

    name: str
    owner: str
    attr: str
    shape: tuple[int, ...]
    draws: tuple[d.Draw, ...]
    post: tuple[Step, ...] = ()
    parametrized: bool = False

    def __post_init__(self) -> None:
        self.post = as_steps(self.post)


@dataclass
class Plan:
    assignments: list[Assignment] = field(default_factory=list)
    reset_stats: list[str] = field(default_factory=list)


@dataclass
class Choice:
    """What a chooser picks for one parameter."""

    scheme: Initializer | None  # None: keep the current values
    label: str
    rule: str
    fans: Fans | None = None
    blocks: int = 1
    note: str = ""
    post: tuple[Step | tuple[Any, ...], ...] = ()  # typed steps (legacy tuples accepted)
    draws: tuple[d.Draw, ...] | None = None  # a chooser may give draws directly (auto)


class Chooser(Protocol):
    def choose(self, layer: LayerInfo, local: str, spec: ParamSpec, shape: tuple[int, ...]) -> Choice: ...


# ---- rules -------------------------------------------------------------------------------------------------
@dataclass
class Rule:
    """One override: ``match`` is a module type, a glob on qualified parameter/module names, or a predicate
    ``f(param_name, module) -> bool``; ``scheme`` a catalog scheme or ``"keep"``."""

    match: type | str | Callable[[str, nn.Module | None], bool]
    scheme: SchemeLike
    label: str
    init: Initializer | None = None

    def matches(self, param: str, layer_name: str, module: nn.Module | None) -> bool:
        if isinstance(self.match, type):
            return module is not None and isinstance(module, self.match)
        if isinstance(self.match, str):
            return fnmatch.fnmatchcase(param, self.match) or (
                bool(layer_name) and fnmatch.fnmatchcase(layer_name, self.match)
            )
        return bool(self.match(param, module))


def normalize_rules(rules: Any) -> list[Rule]:
    """Rules as a mapping or a sequence of (match, scheme) pairs; schemes are resolved (unknown names
    raise)."""
    if rules is None:
        return []
    items: Iterable[tuple[Any, Any]] = rules.items() if isinstance(rules, Mapping) else rules
    out = []
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise InitlabValueError(f"a rule is a (match, scheme) pair, got {item!r}")
        match, scheme = item
        if not (isinstance(match, type | str) or callable(match)):
            raise InitlabValueError(
                f"a rule matches a module type, a name glob or a predicate, not {match!r}")
        label = (
            match.__name__
            if isinstance(match, type)
            else match
            if isinstance(match, str)
            else getattr(match, "__name__", "predicate")
        )
        init = None if scheme == KEEP else _resolve_scheme(scheme, f"rule {label!r}")
        out.append(Rule(match, scheme, f"rule {label}", init))
    return out


def _resolve_scheme(scheme: SchemeLike, where: str) -> Initializer:
    try:
        return get(scheme)
    except (ValueError, TypeError) as exc:
        raise InitlabValueError(f"{where}: {exc}") from None


def scheme_label(init: Initializer) -> str:
    return str(init) if isinstance(init, Scheme) else init.to_config().get("name", type(init).__name__)


# ---- the profile chooser -----------------------------------------------------------------------------------
class ProfileChooser:
    """A framework profile, or one catalog scheme for every weight (biases 0, norms 1/0, embeddings N(0, 1),
    recurrent weights orthogonal per gate block, LSTM forget-gate bias 1)."""

    def __init__(self, scheme: SchemeLike, graph: ModelGraph):
        self.graph = graph
        self.custom: Initializer | None = None
        if isinstance(scheme, str) and profile(scheme) is not None:
            self.profile: Profile = profile(scheme)  # type: ignore[assignment]
            self.name = scheme
        else:
            self.custom = _resolve_scheme(scheme, "scheme")
            self.name = scheme_label(self.custom)
            self.profile = Profile(self.name, weight=self.name, rnn_recurrent="orthogonal", forget_bias=1.0)
            self.profile = _with_embedding(self.profile, scheme_profile(self.name).embedding)
        self.torch_default = self.name == "torch:default"
        weights = [i for i in graph.layers if i.kind.weight]
        self.head = weights[-1].name if weights and self.profile.head else None
        self.n_layer = max(1, math.ceil(len(graph.branches) / 2))
        self._cache: dict[str, Initializer] = {}
        # nn.Transformer re-draws every >1-D parameter with xavier_uniform_ after building its layers
        self.transformers = [n for n, m in graph.model.named_modules() if isinstance(m, nn.Transformer)]

    def _init(self, rule: str) -> Initializer:
        if rule == self.name and self.custom is not None:
            return self.custom
        if rule not in self._cache:
            params = {"n_layer": self.n_layer} if rule.split("(")[0] == "gpt2_residual" else {}
            self._cache[rule] = _resolve_scheme(rule, f"profile {self.name}")
            if params:
                self._cache[rule] = get(rule, **params)
        return self._cache[rule]

    def role(self, layer: LayerInfo, local: str, spec: ParamSpec) -> str:
        role = spec.role
        if layer.name == self.head and role == "weight":
            return "head"
        if layer.last_in_branch and self.profile.residual_out and role in ("weight", "attention_out"):
            return "residual_out"
        if layer.kind == "attention" and role == "bias":
            return "zeros_bias"
        if role == "bias" and type(layer.module).__name__ == "NonDynamicallyQuantizableLinear":
            return "zeros_bias"  # MultiheadAttention's out_proj, seen on its own: torch zeroes its bias
        return role

    def named(self, q: str) -> Choice | None:
        """A profile's rule by parameter name (ViT tokens and position embeddings)."""
        for glob, rule in self.profile.named:
            if fnmatch.fnmatchcase(q, glob):
                return Choice(self._init(rule), rule, f"{self.name}:{glob.lstrip('*')}")
        return None

    def choose_unowned(self, q: str, module: nn.Module | None, shape: tuple[int, ...]) -> Choice | None:
        """A parameter no layer owns: a named rule, or PReLU's slope; None leaves it untouched."""
        found = self.named(q)
        if found is None and isinstance(module, nn.PReLU) and q.rpartition(".")[2] == "weight":
            rule = self.profile.prelu
            return Choice(self._init(rule), rule, f"{self.name}:prelu")
        return found

    def _fix_init(self, q: str, rule: str) -> str:
        """timm's fix_init_weight: the block's attn.proj and mlp.fc2 weights divided by sqrt(2 (i + 1))."""
        hit = re.search(r"(?:^|\.)blocks\.(\d+)\.(?:attn\.proj|mlp\.fc2)\.weight$", q)
        if not (self.profile.fix_init and hit and rule == "vit_trunc_normal"):
            return rule
        s = math.sqrt(2.0 * (int(hit.group(1)) + 1))
        return f"truncated_normal_abs(0, {0.02 / s!r}, {-2 / s!r}, {2 / s!r})"

    def choose(self, layer: LayerInfo, local: str, spec: ParamSpec, shape: tuple[int, ...]) -> Choice:
        q = f"{layer.name}.{local}" if layer.name else local
        found = self.named(q)
        if found is not None:
            return found
        role = self.role(layer, local, spec)
        rule = "zeros" if role == "zeros_bias" else self._fix_init(q, self.profile.rule(role))
        if self.profile.conv and layer.kind in ("conv", "conv_transpose") and role in ("weight", "bias"):
            rule = self.profile.conv
        if role == "rnn_bias" and not self.torch_default and rule == self.profile.bias:
            rule = self.profile.rnn_bias
        fans = layer.fans.get(spec.fans_of or local)
        blocks = spec.blocks
        post: tuple[Step, ...] = ()
        if self.torch_default and len(shape) > 1 and self._in_transformer(layer):
            xavier = self._init("torch:xavier_uniform")
            return Choice(xavier, "torch:xavier_uniform", f"{self.name}:nn.Transformer",
                          compute_fans(shape, "torch"), 1)
        native = self._native_fans(layer, local, spec) if self.profile.fans != "initlab" else None
        if native is not None:
            fans, blocks = native, 1
        elif self.torch_default and role == "attention_in":
            fans, blocks = spec.__class__(spec.role).fans(shape), 1
        if role == "rnn_bias" and self.profile.forget_bias is not None:
            post = _forget_bias(layer, local, shape, self.profile.forget_bias)
        return Choice(
            self._init(rule),
            rule,
            f"{self.name}:{role.replace('zeros_bias', 'bias')}",
            fans,
            blocks,
            post=post,
        )

    def _in_transformer(self, layer: LayerInfo) -> bool:
        return any(layer.name.startswith(f"{t}.") or not t for t in self.transformers)

    def _native_fans(self, layer: LayerInfo, local: str, spec: ParamSpec) -> Fans | None:
        """The fans the profile's framework computes for this parameter's weight (its own layer's kernel
        shape), or None to keep initlab's exact fans. torch: stored shape, U(+-1/sqrt(H)) for every RNN
        parameter, 1/sqrt(in1) for Bilinear; Keras: whole-kernel fans for RNNs, depthwise as
        DepthwiseConv; Flax: ConvTranspose fan_in = in x k (no stride)."""
        module, fw = layer.module, self.profile.fans
        if module is None:
            return None
        weight = dict(module.named_parameters()).get(spec.fans_of or local)
        if weight is None or weight.dim() < 2:
            return None
        shape = tuple(weight.shape)
        if layer.kind == "rnn":
            if fw == "torch":
                h = int(getattr(module, "hidden_size", shape[-1]))
                return Fans(h, h)
            return compute_fans(shape, "torch") if fw == "keras" else None
        if layer.kind == "bilinear" and fw == "torch":
            return Fans(shape[1], shape[1])
        if layer.kind not in ("linear", "conv", "conv_transpose"):
            return None
        wspec = layer.specs.get(spec.fans_of or local, spec)
        groups = int(getattr(module, "groups", 1))
        depthwise = layer.kind == "conv" and 1 < groups == int(getattr(module, "in_channels", 0))
        return framework_fans(fw, shape, wspec.layout, groups=groups, depthwise=depthwise)  # type: ignore

    def finish(self, report: InitReport) -> None:
        """Predicted output variance of every weight layer and of the model, by propagating the plan."""
        predict_variances(self.graph, report)


def predict_variances(graph: ModelGraph, report: InitReport) -> None:
    from .propagate import evaluate, explain_missing

    rows: dict[str, tuple[float | None, float | None]] = {}
    for r in report.rows:
        for name in (r.name, *r.tied):
            rows[name] = (r.mean, r.std)
    blocks = {}  # a parameter whose stacked blocks are drawn apart (an attention's q/k/v for three inputs)
    for a in report.plan.assignments if report.plan is not None else ():
        if len(a.draws) > 1 and len(set(a.draws)) > 1:
            shape = (a.shape[0] // len(a.draws), *a.shape[1:])
            blocks[a.name] = [stats_of(draw, shape)[:2] for draw in a.draws]
    params = dict(graph.model.named_parameters())

    def current(name: str) -> float | None:
        t = params.get(name)
        if t is None or t.device.type == "meta" or not t.numel():
            return None
        return float(t.detach().double().square().mean())

    var, out = evaluate(graph, rows, current, blocks)
    main = {info.name: next(iter(info.params.values()), None) for info in graph.layers}
    for r in report.rows:
        if r.layer in var and main.get(r.layer) == r.name and r.status == "init":
            r.var_out = var[r.layer]
    explain_missing(graph, report.rows)
    report.output_var = out


def _with_embedding(p: Profile, embedding: str) -> Profile:
    from dataclasses import replace

    return replace(p, embedding=embedding)


def _forget_bias(layer: LayerInfo, local: str, shape: tuple[int, ...], value: float) -> tuple[Any, ...]:
    module = layer.module
    mode = getattr(module, "mode", None) or type(module).__name__
    if "LSTM" not in mode or len(shape) != 1 or shape[0] % 4:
        return ()
    h = shape[0] // 4
    return (SetSlice(h, 2 * h, value if "_ih" in local or local == "bias" else 0.0),)


# ---- building ----------------------------------------------------------------------------------------------
def stats_of(draw: d.Draw, shape: Sequence[int]) -> tuple[float | None, float | None, float | None]:
    """(mean, std, bound) of the entries a draw produces for ``shape``."""
    if isinstance(draw, d.Uniform):
        return draw.mean, draw.std, max(abs(draw.low), abs(draw.high))
    if isinstance(draw, d.TruncatedNormal):
        lo, hi = draw.bounds
        return draw.mean, draw.std, max(abs(lo), abs(hi))
    if isinstance(draw, d.Constant | d.Normal):
        return draw.mean, draw.std, None
    n = math.prod(shape) or 1
    if isinstance(draw, d.Orthogonal):
        rows = shape[0] if draw.flatten == "torch" else math.prod(shape[:-1])
        cols = n // max(rows, 1)
        return 0.0, abs(draw.gain) / math.sqrt(max(rows, cols, 1)), None
    if isinstance(draw, d.DeltaOrthogonal):
        rows, cols = (shape[-1], shape[-2]) if draw.channels_last else (shape[0], shape[1])
        return 0.0, abs(draw.gain) * math.sqrt(min(rows, cols) / n), None
    if isinstance(draw, d.Eye | d.Dirac):
        k = min(shape[0], shape[1]) if len(shape) > 1 else 1
        return None, abs(draw.gain) * math.sqrt(k / n), None
    if isinstance(draw, d.Sparse):
        return 0.0, draw.std * math.sqrt(1 - math.ceil(draw.sparsity * shape[0]) / max(shape[0], 1)), None
    return None, None, None


def resolve_choice(
    choice: Choice, layer: LayerInfo, spec: ParamSpec, shape: tuple[int, ...], name: str
) -> tuple[tuple[d.Draw, ...], str]:
    """Draws (one per block) for a choice, and a note when the scheme had to be adapted to the weight."""
    if choice.draws is not None:
        return choice.draws, choice.note
    assert choice.scheme is not None
    blocks = choice.blocks if choice.blocks > 1 and shape and shape[0] % choice.blocks == 0 else 1
    block_shape = (shape[0] // blocks, *shape[1:]) if blocks > 1 else shape
    ctx = Context(spec.layout, choice.fans, spec.groups, 1, spec.stride, layer.activation_fn)
    note = choice.note
    try:
        draw = choice.scheme.resolve(block_shape, ctx)
    except ValueError as exc:
        base = choice.label.split("(")[0]
        if base.endswith("delta_orthogonal") and len(block_shape) == 2:
            gain = getattr(choice.scheme, "params", {}).get("gain", 1.0)
            draw, note = d.Orthogonal(float(gain)), "delta_orthogonal on a 2-D weight: orthogonal"
        elif base.endswith("dirac") and len(block_shape) == 2:
            draw, note = (
                d.Eye(float(getattr(choice.scheme, "params", {}).get("gain", 1.0))),
                "dirac on 2-D: eye",
            )
        else:
            raise InitlabValueError(
                f"{name} {tuple(shape)} ({layer.module_type}): {choice.label}: {exc}") from None
    return (draw,) * blocks, note


def build_plan(
    graph: ModelGraph,
    chooser: Chooser,
    rules: list[Rule],
    scheme_name: str,
    params: Mapping[str, torch.Tensor] | None = None,
) -> tuple[Plan, InitReport]:
    """One assignment and one report row per distinct parameter (tied weights once). ``params``: the
    model's parameters by qualified name, duplicates included, when the caller has them."""
    planner = _Planner(graph, chooser, rules, scheme_name, params)
    owner_of = graph.param_layer()
    order = [q for info in graph.layers for q in info.params.values()]
    order += [n for n in graph.unreached if n not in owner_of]
    for q in order:
        planner.param(q)
    return planner.finish()


class _Planner:
    """``build_plan``'s state: the plan and report so far, which rules matched, which rows are done."""

    def __init__(self, graph: ModelGraph, chooser: Chooser, rules: list[Rule], scheme_name: str,
                 params: Mapping[str, torch.Tensor] | None) -> None:
        self.graph, self.chooser, self.rules = graph, chooser, rules
        self.model = graph.model
        self.plan = Plan()
        self.report = InitReport(scheme_name, method=graph.method, graph=graph, plan=self.plan)
        self.report.notes.extend(graph.notes)
        self.tensors = params if params is not None else dict(
            self.model.named_parameters(remove_duplicate=False))
        self.aliases = {a: canon for canon, al in graph.tied.items() for a in al}
        self.done: dict[str, Row] = {}
        self.used = [False] * len(rules)
        self.owner_of = graph.param_layer()

    def param(self, q: str) -> None:
        canon = self.aliases.get(q, q)
        if canon in self.done or q in self.done:
            self._tied(q, self.done.get(canon) or self.done[q])
            return
        tensor: torch.Tensor | None = self.tensors.get(q)
        originals = self.graph.parametrized.get(q, [])
        if tensor is None and originals:
            tensor = _logical_tensor(self.model, q)
            if tensor is None:  # its parametrization raised when read: say so instead of skipping silently
                self.report.warn(f"{q}: its parametrized value could not be computed, so it is left "
                                 f"untouched; fix the parametrization or add a rule {{{q!r}: 'keep'}}")
        if tensor is None:
            return
        shape = tuple(tensor.shape)
        info, local, spec, row = self._row(q, shape)
        self.done[canon] = row
        self.report.rows.append(row)
        choice = self._choice(q, info, local, spec, shape, row)
        if choice is None:
            return
        if choice.scheme is None and choice.draws is None:
            row.status, row.scheme, row.rule = "kept", KEEP, choice.rule
            return
        self._assign(q, info, local, spec, shape, row, choice, bool(originals))

    def _tied(self, q: str, row: Row) -> None:
        """A second name of a tensor already planned: listed on its row; a rule matching it is reported."""
        if q == row.name or q in row.tied:
            return
        row.tied.append(q)
        alias = self.owner_of.get(q)
        for k, rule in enumerate(self.rules):
            if rule.matches(q, alias[0].name if alias else "", alias[0].module if alias else None):
                self.used[k] = True
                self.report.warn(f"{q} is tied to {row.name}: initialized once, by {row.rule} "
                                 f"({rule.label} also matches it)")
                break

    def _row(self, q: str, shape: tuple[int, ...]) -> tuple[LayerInfo | None, str, ParamSpec, Row]:
        found = self.owner_of.get(q)
        if found is None:
            row = Row(q, type(_owner(self.model, q)).__name__, shape, "", "")
            return None, q, ParamSpec("weight"), row
        info, local = found
        spec = info.specs[local]
        row = Row(q, info.module_type, shape, "", "", layer=info.name, activation=info.activation)
        fans = info.fans.get(spec.fans_of or local)
        if fans is not None:
            row.fan_in, row.fan_out = fans.fan_in, fans.fan_out
        return info, local, spec, row

    def _rule(self, q: str, info: LayerInfo | None) -> Rule | None:
        """The first user rule matching ``q`` (every matching rule counts as used)."""
        hit = None
        module = info.module if info else _owner(self.model, q)
        for k, rule in enumerate(self.rules):
            if rule.matches(q, info.name if info else q.rpartition(".")[0], module):
                self.used[k] = True
                hit = hit or rule
        return hit

    def _choice(self, q: str, info: LayerInfo | None, local: str, spec: ParamSpec, shape: tuple[int, ...],
                row: Row) -> Choice | None:
        """User rule, else the chooser (for a layer's parameter), else a rule for parameters no layer owns
        (the profile's by name, then the architecture's: _param_rules); None: kept or untouched."""
        rule_hit = self._rule(q, info)
        if rule_hit is None and info is not None:
            return self.chooser.choose(info, local, spec, shape)
        if rule_hit is None:
            unowned = getattr(self.chooser, "choose_unowned", None)
            choice = unowned(q, _owner(self.model, q), shape) if unowned is not None else None
            if choice is not None:  # profile rules by name, PReLU
                return choice
            fixed = param_rule(q, shape, _owner(self.model, q))
            if fixed is None:
                row.status, row.scheme, row.rule = "untouched", "-", "-"
                row.note = self.graph.unreached.get(q, "")
                return None
            rule_hit = _fixed_rule(q, fixed, _on_meta(self.model, q))
        if rule_hit.init is None:
            row.status, row.scheme, row.rule = "kept", KEEP, rule_hit.label
            return None
        fans = info.fans.get(spec.fans_of or local) if info else None
        return Choice(rule_hit.init, scheme_label(rule_hit.init), rule_hit.label, fans, spec.blocks)

    def _assign(self, q: str, info: LayerInfo | None, local: str, spec: ParamSpec, shape: tuple[int, ...],
                row: Row, choice: Choice, parametrized: bool) -> None:
        layer = info or LayerInfo(q, None, Kind.RAW, {local: q}, {local: spec})
        draws, note = resolve_choice(choice, layer, spec, shape, q)
        notes = [note] if note else []
        post = as_steps(choice.post)
        if info is not None and info.kind.embedding and local == "weight":
            pad = getattr(info.module, "padding_idx", None)
            if pad is not None:
                post = (*post, SetRow(int(pad), 0.0))
                notes.append(f"padding row {pad} = 0")
        if info is not None and not info.reached:
            notes.append("layer not reached by the traced forward: planned for a unit input")
        block_shape = (shape[0] // len(draws), *shape[1:]) if shape else shape
        row.mean, row.std, row.bound = stats_of(draws[0], block_shape)
        row.scheme, row.rule, row.note = choice.label, choice.rule, "; ".join(notes)
        owner, attr = _split_owner(q, info)
        self.plan.assignments.append(Assignment(q, owner, attr, shape, draws, post, parametrized))

    def finish(self) -> tuple[Plan, InitReport]:
        for k, rule in enumerate(self.rules):
            if not self.used[k]:
                raise InitlabValueError(
                    f"{rule.label} matches no parameter of the model; parameters look like "
                                 f"{', '.join(list(self.tensors)[:4])}")
        for info in self.graph.layers:
            if info.kind is Kind.NORM and hasattr(info.module, "reset_running_stats"):
                self.plan.reset_stats.append(info.name)
        if self.plan.reset_stats:
            self.report.notes.append(
                f"running statistics reset in {len(self.plan.reset_stats)} normalization layer(s)")
        for name, reason in self.graph.unreached.items():
            if name in self.done and self.done[name].status == "untouched":
                self.report.warn(f"{name}: {reason}")
        return self.plan, self.report


def _split_owner(q: str, info: LayerInfo | None) -> tuple[str, str]:
    """(qualified module that holds the tensor, attribute name)."""
    if info is not None and info.module is not None and info.name and q.startswith(info.name + "."):
        local = q[len(info.name) + 1 :]
        sub, _, attr = local.rpartition(".")
        return (f"{info.name}.{sub}" if sub else info.name), attr
    owner, _, attr = q.rpartition(".")
    return owner, attr


def _fixed_rule(q: str, fixed: ParamRule, on_meta: bool) -> Rule:
    """An architecture's rule for ``q``; one that keeps the constructor's value sets its default on meta."""
    if fixed.scheme is None and on_meta and fixed.meta is not None:
        scheme = f"constant({fixed.meta!r})"
        label = f"{fixed.label.partition(':')[0]}: {fixed.meta:g}, the constructor's (meta: no value to keep)"
        return Rule(q, scheme, label, _resolve_scheme(scheme, label))
    init = None if fixed.scheme is None else _resolve_scheme(fixed.scheme, fixed.label)
    return Rule(q, fixed.scheme or KEEP, fixed.label, init)


def _on_meta(model: nn.Module, q: str) -> bool:
    t = _logical_tensor(model, q)
    return t is not None and t.device.type == "meta"


def _owner(model: nn.Module, q: str) -> nn.Module | None:
    owner = q.rpartition(".")[0].split(".parametrizations")[0]
    try:
        return model.get_submodule(owner) if owner else model
    except AttributeError:
        return None


def _logical_tensor(model: nn.Module, q: str) -> torch.Tensor | None:
    owner, _, attr = q.rpartition(".")
    module = model.get_submodule(owner) if owner else model
    try:  # reading a parametrized weight runs its forward (spectral norm's power iteration): keep its state
        with torch.no_grad(), kept_rngs(), kept_buffers(module):
            value = getattr(module, attr)
    except Exception:
        return None
    return value if isinstance(value, torch.Tensor) else None


# ---- applying (the one applier lives in ._apply; these names stay importable from here) -------------------
from ._apply import (  # noqa: E402
    Fill,
    Prepared,
    apply_plan,  # noqa: F401 (re-exported: initlab.model.apply_plan)
    commit_plan,
    looks_linear_block,
    prepare_plan,
    write_looks_linear_,
)

# Assignment, Plan and apply_plan are listed once, in initlab.model.__all__ (their documented path).
__all__ = ["Choice", "Fill", "Prepared", "Rule", "build_plan", "commit_plan", "looks_linear_block",
           "prepare_plan", "write_looks_linear_"]

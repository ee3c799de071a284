"""Residual-aware rules: Fixup, SkipInit/ReZero, zero-init residual norm gamma, T-Fixup, DeepNorm, GPT-2.

Every rule works on the residual branches :func:`initlab.model.discover` finds in the traced dataflow (an
addition whose inputs are a block input and a branch computed from it), never on class names. The init rules
are plan transforms (:func:`register_transforms`, found by ``init_model`` by name): each edits a base scheme's
plan (typed ``Scale`` steps, zeroed or redrawn parameters, learnable scalars as a structural step), so they
have a real dry run, both generators, ``materialize`` and ``init_sharded``. :func:`fixup` and
:func:`skipinit` are opt-in module transforms that add learnable scalars (parameters registered on the
layers plus forward hooks) and report exactly what they added.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..catalog import draws as d
from ..errors import InitlabValueError
from ..model import Branch, InitReport, LayerInfo, ModelGraph, ModelState, discover, init_model
from ..model._transforms import AddScalar, PlanEdit, register_plan_transform
from ..model.api import check_example_input
from ._sweep import model_device, primary, replace_primary

WEIGHT_KINDS = ("linear", "conv", "conv_transpose", "hf_conv1d", "attention", "bilinear", "raw")
SCALARS = ("fixup_bias_in", "fixup_scale", "fixup_bias_out", "skipinit_alpha")


class ResidualError(InitlabValueError):
    """A residual rule cannot be applied to this model; the model was not changed."""


# ---- graph queries -----------------------------------------------------------------------------------------
def branch_layers(graph: ModelGraph, branch: Branch) -> list[LayerInfo]:
    """The weight layers that belong to ``branch`` itself (innermost branch wins), in forward order."""
    out = [graph.layer(n) for n in branch.layers if n in graph]
    return [i for i in out if i.kind in WEIGHT_KINDS and i.branch == branch.index]


def residual_branches(graph: ModelGraph, rule: str) -> list[Branch]:
    if graph.method == "static":
        raise ResidualError(f"{rule} needs the residual branches, and discovery could not trace the model: "
                            "pass example_input so that it can run it once")
    branches = [b for b in graph.branches if branch_layers(graph, b)]
    if not branches:
        raise ResidualError(f"{rule}: no residual branch found (an addition of a block input and a branch of "
                            "weight layers computed from it); this rule is for residual networks")
    return branches


def classifier(graph: ModelGraph) -> LayerInfo | None:
    """The output layer: the last reached weight layer, when it lies outside every residual branch."""
    reached = [i for i in graph.layers if i.reached and i.kind in WEIGHT_KINDS]
    if not reached or reached[-1].branch is not None:
        return None
    return reached[-1]


# ---- Fixup -------------------------------------------------------------------------------------------------
@dataclass
class FixupPlan:
    branches: int
    layers_per_branch: list[int]
    scales: dict[str, float]
    zeroed: list[str]


def _weight_names(edit: PlanEdit, info: LayerInfo) -> list[str]:
    return [q for local, q in info.params.items()
            if "weight" in local.rsplit(".", 1)[-1] and len(edit.shape(q) or ()) >= 2]


def _output_names(info: LayerInfo) -> list[str]:
    """The parameters that, set to zero, make the layer output zero."""
    keys = ("out_proj.weight", "out_proj.bias") if info.kind == "attention" else ("weight", "bias")
    return [info.params[k] for k in keys if k in info.params]


def fixup_layout(graph: ModelGraph, edit: PlanEdit) -> FixupPlan:
    """Zhang et al. 2019, from the graph alone: inside each of the L branches (m weight layers) every layer
    but the last scaled by L^(-1/(2m-2)); the last layer of every branch and the classifier zeroed."""
    branches = residual_branches(graph, "Fixup")
    out = FixupPlan(len(branches), [], {}, [])
    for branch in branches:
        layers = branch_layers(graph, branch)
        m = len(layers)
        out.layers_per_branch.append(m)
        factor = out.branches ** (-1.0 / (2 * m - 2)) if m > 1 else 1.0
        for info in layers[:-1]:
            out.scales.update({q: factor for q in _weight_names(edit, info)})
        out.zeroed += _output_names(layers[-1])
    head = classifier(graph)
    if head is not None:
        out.zeroed += _output_names(head)
    return out


def _fixup_edit(edit: PlanEdit, options: dict[str, Any]) -> None:
    graph = edit.graph
    layout = fixup_layout(graph, edit)
    for q, factor in layout.scales.items():
        edit.scale(q, factor, f"he_normal x L^(-1/(2m-2)) = {factor:.4g} (L={layout.branches})")
    head = classifier(graph)
    for q in layout.zeroed:
        last = head is not None and q in _output_names(head)
        why = "classifier" if last else "last layer of a residual branch"
        edit.zero(q, f"fixup: {why}")
    if graph.has_norm:
        edit.report.warn("Fixup is meant for networks without normalization layers; this one has some")
    edit.report.notes.append(f"Fixup: {layout.branches} residual branches, weight layers per branch "
                             f"{sorted(set(layout.layers_per_branch))}, {len(layout.zeroed)} tensors zeroed")
    edit.report.notes.append("the scalar multipliers and biases are a module transform: initlab.fixup(model)")


@torch.no_grad()
def fixup_init(model: nn.Module, graph: ModelGraph,
               generator: torch.Generator) -> tuple[InitReport, FixupPlan]:
    """Zhang et al. 2019: He init, weight layers inside each of the L branches (m layers) scaled by
    L^(-1/(2m-2)), the last layer of every branch and the classifier set to zero (``init_model(model,
    "fixup")``, with torch's generator)."""
    report = init_model(model, "fixup", graph=graph, generator=generator)
    return report, _layout_of(report)


def _layout_of(report: InitReport) -> FixupPlan:
    from ..model._transforms import PlanEdit as Edit

    return fixup_layout(report.graph, Edit(report.graph, report.plan, report.copy(), "fixup"))


# ---- module transforms (learnable scalars) ---------------------------------------------------------------
@dataclass
class TransformReport:
    """What a transform added: ``added`` maps each new parameter's qualified name to its initial value."""

    rule: str
    branches: int
    added: dict[str, float] = field(default_factory=dict)
    hooks: int = 0
    init: InitReport | None = None
    plan: FixupPlan | None = None
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.rule}: {self.branches} residual branches, {len(self.added)} scalar parameters added "
                 f"({self.hooks} forward hooks)"]
        lines += [f"  + {name} = {value:g}" for name, value in self.added.items()]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def _pre_bias(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return (args[0] + module.fixup_bias_in, *args[1:])


def _post_scalars(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
    out = primary(output)
    params = module._parameters
    for key in ("skipinit_alpha", "fixup_scale"):
        scale = params.get(key)
        if scale is not None:
            out = out * scale
    bias = params.get("fixup_bias_out")
    if bias is not None:
        out = out + bias
    return replace_primary(output, out)


class _Transformer:
    """Adds scalars and hooks; undoes everything if anything fails."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.added: dict[str, float] = {}
        self.params: list[tuple[nn.Module, str]] = []
        self.handles: list[Any] = []
        self.posted: set[int] = set()

    def scalar(self, info: LayerInfo, attr: str, value: float) -> None:
        module = self._module(info)
        ref = next(iter(module.parameters()), None)
        dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
        device = ref.device if ref is not None else torch.device("cpu")
        module.register_parameter(attr, nn.Parameter(torch.full((), value, dtype=dtype, device=device)))
        self.params.append((module, attr))
        self.added[f"{info.name}.{attr}" if info.name else attr] = value
        if attr == "fixup_bias_in":
            self.handles.append(module.register_forward_pre_hook(_pre_bias))
        elif id(module) not in self.posted:
            self.posted.add(id(module))
            self.handles.append(module.register_forward_hook(_post_scalars))

    def _module(self, info: LayerInfo) -> nn.Module:
        if info.module is None:
            raise ResidualError(f"{info.name!r} is a raw parameter used functionally: there is no module to "
                                "attach a scalar to")
        return info.module

    def undo(self) -> None:
        for h in self.handles:
            h.remove()
        for module, attr in self.params:
            del module._parameters[attr]


def _check_untransformed(model: nn.Module) -> None:
    for name, module in model.named_modules():
        present = [a for a in SCALARS if a in module._parameters]
        if present:
            raise ResidualError(f"{name or 'the model'} already has {present[0]!r}: the transform was "
                                "applied before")


def _transform(model: nn.Module, example_input: Any, rule: str,
               body: Callable[[ModelGraph, _Transformer], TransformReport]) -> TransformReport:
    _check_untransformed(model)
    check_example_input(model, example_input)
    graph = discover(model, example_input)
    residual_branches(graph, rule)
    snapshot = ModelState.capture(model)
    tr = _Transformer(model)
    try:
        report = body(graph, tr)
    except BaseException:
        tr.undo()
        snapshot.restore(model)
        raise
    report.added, report.hooks = tr.added, len(tr.handles)
    return report


def fixup(model: nn.Module, example_input: Any = None, *, seed: int | None = None,
          generator: torch.Generator | None = None, init: bool = True, biases: bool = True,
          multipliers: bool = True) -> TransformReport:
    """Fixup as a module transform: the Fixup init (``init=True``) plus, per residual branch, a scalar
    multiplier (1) on its output and scalar biases (0) before every weight layer, after every inner layer
    that has no bias of its own (i.e. before its activation), and after the multiplier; and a scalar bias (0)
    before the classifier. The scalars are parameters registered on the layers (``fixup_scale``,
    ``fixup_bias_in``, ``fixup_bias_out``: they are in ``state_dict`` and ``parameters()``), applied by
    forward hooks. Returns what was added. Raises :class:`ResidualError` (model unchanged) for a model without
    residual branches or one transformed before.
    """
    from ..backends.torch_backend import make_generator

    def body(graph: ModelGraph, tr: _Transformer) -> TransformReport:
        report = TransformReport("fixup", len(residual_branches(graph, "Fixup")))
        if init:
            g = generator if generator is not None else make_generator(model_device(model), seed)
            report.init, report.plan = fixup_init(model, graph, g)
        for branch in residual_branches(graph, "Fixup"):
            layers = branch_layers(graph, branch)
            for info in layers:
                if biases and info.kind != "attention":
                    tr.scalar(info, "fixup_bias_in", 0.0)
                if biases and info is not layers[-1] and "bias" not in info.params:
                    tr.scalar(info, "fixup_bias_out", 0.0)
            if multipliers:
                tr.scalar(layers[-1], "fixup_scale", 1.0)
            if biases:
                tr.scalar(layers[-1], "fixup_bias_out", 0.0)
        head = classifier(graph)
        if head is not None and biases and head.kind != "attention":
            tr.scalar(head, "fixup_bias_in", 0.0)
        return report

    return _transform(model, example_input, "Fixup", body)


def skipinit(model: nn.Module, example_input: Any = None, *, alpha: float | None = 0.0) -> TransformReport:
    """SkipInit (De & Smith 2020) / ReZero (Bachlechner et al. 2020): a learnable scalar ``skipinit_alpha`` on
    the output of every residual branch, x + alpha * f(x). ``alpha=0`` (ReZero, and SkipInit's default) starts
    every block as the identity; ``alpha=None`` uses 1/sqrt(number of branches). The scalar sits on the
    branch's last module (a norm layer if the branch ends with one). Weights are not changed.
    """

    def body(graph: ModelGraph, tr: _Transformer) -> TransformReport:
        branches = residual_branches(graph, "SkipInit")
        value = 1.0 / math.sqrt(len(branches)) if alpha is None else float(alpha)
        if not math.isfinite(value):
            raise ResidualError(f"alpha must be finite, got {alpha}")
        report = TransformReport("rezero" if value == 0 else "skipinit", len(branches))
        for branch in branches:
            last = graph.layer(branch.layers[-1]) if branch.layers[-1] in graph else None
            if last is None or last.module is None:
                last = branch_layers(graph, branch)[-1]
            target = last
            tr.scalar(target, "skipinit_alpha", value)
        return report

    return _transform(model, example_input, "SkipInit", body)


# ---- norm gamma, transformer scalings --------------------------------------------------------------------
def _zero_residual_norm_edit(edit: PlanEdit, options: dict[str, Any]) -> None:
    """Goyal et al. 2017: the base init, then gamma = 0 for the last normalization layer of each residual
    branch when it is the branch's last module (so every block starts as the identity)."""
    graph = edit.graph
    zeroed = 0
    for branch in residual_branches(graph, "zero-init residual norm"):
        if not branch.norms or branch.layers[-1] != branch.norms[-1]:
            edit.report.notes.append(f"branch {branch.index} ({branch.last}) does not end with a norm layer: "
                                     "unchanged")
            continue
        info = graph.layer(branch.norms[-1])
        if "weight" not in info.params:
            edit.report.notes.append(f"{info.name} has no affine scale: unchanged")
            continue
        edit.zero(info.params["weight"], "zero-init residual gamma (Goyal et al. 2017)")
        zeroed += 1
    if not zeroed:
        raise ResidualError("no residual branch ends with a normalization layer that has a scale (gamma)")


QK_NAMES = ("q_proj", "k_proj", "query", "key", "wq", "wk", "to_q", "to_k")


def _value_side(edit: PlanEdit, info: LayerInfo,
                qk_names: Sequence[str]) -> list[tuple[str, tuple[int, int] | None]]:
    """The weights T-Fixup/DeepNorm scale (name, rows or None for all): everything in a branch except
    attention queries and keys."""
    if info.kind == "attention":
        out: list[tuple[str, tuple[int, int] | None]] = []
        if "in_proj_weight" in info.params:
            shape = edit.shape(info.params["in_proj_weight"]) or (0,)
            out.append((info.params["in_proj_weight"], (2 * shape[0] // 3, shape[0])))
        elif "v_proj_weight" in info.params:
            out.append((info.params["v_proj_weight"], None))
        out.append((info.params["out_proj.weight"], None))
        return out
    leaf = info.name.rsplit(".", 1)[-1]
    return [] if leaf in qk_names else [(q, None) for q in _weight_names(edit, info)]


def _scale_transformer(edit: PlanEdit, rule: str, base: str, factor: float, qk_names: Sequence[str]) -> None:
    for branch in residual_branches(edit.graph, rule):
        for info in branch_layers(edit.graph, branch):
            for q, rows in _value_side(edit, info, qk_names):
                edit.scale(q, factor, f"{base} x {factor:.4g}" + (" (v block)" if rows else ""), rows)


def _t_fixup_edit(edit: PlanEdit, options: dict[str, Any]) -> None:
    """T-Fixup (Huang et al. 2020): Xavier everywhere, embeddings N(0, d^-1/2); inside every branch the value
    and output projections and the MLP weights scaled by 0.67 N^(-1/4) (encoder; N = number of attention
    branches) or (9N)^(-1/4) (``decoder=True``, which also scales the embeddings)."""
    decoder = bool(options["decoder"])
    n = _attention_layers(edit.graph, "T-Fixup")
    factor = (9 * n) ** -0.25 if decoder else 0.67 * n ** -0.25
    _scale_transformer(edit, "t_fixup", "glorot_uniform", factor, options["qk_names"])
    for info in edit.graph.layers:
        if info.kind != "embedding":
            continue
        for q in _weight_names(edit, info):
            shape = edit.shape(q) or (1,)
            edit.redraw(q, d.Normal(0.0, shape[-1] ** -0.5), "t_fixup", "N(0, d^-1/2)")
            if decoder:
                edit.scale(q, factor, f"N(0, d^-1/2) x {factor:.4g}")
    edit.report.notes.append(f"T-Fixup: N = {n} attention layers, scale {factor:.4g}; remove LayerNorm and "
                             "warmup")


def _deepnorm_edit(edit: PlanEdit, options: dict[str, Any]) -> None:
    """DeepNet (Wang et al. 2022), encoder-only or decoder-only: Xavier normal, with the MLP, value and
    output projections inside every branch scaled by beta = (8N)^(-1/4). The residual itself must become
    LN(alpha * x + f(x)) with alpha = (2N)^(1/4): that is architecture, reported as ``alpha`` in the notes."""
    n = _attention_layers(edit.graph, "DeepNorm")
    beta, alpha = (8 * n) ** -0.25, (2 * n) ** 0.25
    _scale_transformer(edit, "deepnorm", "glorot_normal", beta, options["qk_names"])
    edit.report.notes.append(f"DeepNorm: N = {n} layers, beta = {beta:.4g}; use "
                             f"x = LN({alpha:.4g} * x + f(x)) "
                             "in the residual (alpha is architecture, not init)")


def _gpt2_edit(edit: PlanEdit, options: dict[str, Any]) -> None:
    residual_branches(edit.graph, "GPT-2 residual scaling")
    edit.report.notes.append("GPT-2: N(0, 0.02) everywhere, the last layer of every residual branch "
                             "N(0, 0.02 / sqrt(2 n_layer)) with 2 n_layer = the residual branches found")


def _skipinit_edit(alpha: float | None) -> Callable[[PlanEdit, dict[str, Any]], None]:
    def edit_fn(edit: PlanEdit, options: dict[str, Any]) -> None:
        graph = edit.graph
        branches = residual_branches(graph, "SkipInit")
        value = 1.0 / math.sqrt(len(branches)) if alpha is None else float(alpha)
        for branch in branches:
            last = graph.layer(branch.layers[-1]) if branch.layers[-1] in graph else None
            if last is None or last.module is None:
                last = branch_layers(graph, branch)[-1]
            if last.module is None:
                raise ResidualError(f"{last.name!r} is a raw parameter used functionally: there is no module "
                                    "to attach a scalar to")
            edit.add_scalar(AddScalar(last.name, "skipinit_alpha", value, _post_scalars))

    return edit_fn


def _attention_layers(graph: ModelGraph, rule: str) -> int:
    branches = residual_branches(graph, rule)
    with_attention = {i.branch for i in graph.layers if i.kind == "attention" and i.branch is not None}
    n = len(with_attention) if with_attention else math.ceil(len(branches) / 2)
    return max(1, n)


def register_transforms() -> None:
    """The residual rules as plan transforms of ``init_model`` (called by name on first use)."""
    reg = register_plan_transform
    reg("fixup", _fixup_edit, base="he_normal", overwrite=True)
    reg("t_fixup", _t_fixup_edit, base="glorot_uniform", defaults={"decoder": False, "qk_names": QK_NAMES},
        overwrite=True)
    reg("deepnorm", _deepnorm_edit, base="glorot_normal", defaults={"qk_names": QK_NAMES}, overwrite=True)
    reg("gpt2", _gpt2_edit, base="hf:gpt2", overwrite=True)
    reg("zero_residual_norm", _zero_residual_norm_edit, defaults={"base": "auto"}, overwrite=True)
    reg("skipinit", _skipinit_edit(None), defaults={"base": "auto"}, overwrite=True)
    reg("rezero", _skipinit_edit(0.0), defaults={"base": "auto"}, overwrite=True)

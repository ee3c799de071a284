"""Residual-aware rules: Fixup, SkipInit/ReZero, zero-init residual norm gamma, T-Fixup, DeepNorm, GPT-2.

Every rule works on the residual branches :func:`initlab.model.discover` finds in the traced dataflow (an
addition whose inputs are a block input and a branch computed from it), never on class names. The init rules
are ``init_model`` schemes (registered in :mod:`.schemes`); :func:`fixup` and :func:`skipinit` are opt-in
module transforms that add learnable scalars (parameters registered on the layers plus forward hooks) and
report exactly what they added.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..model import Branch, InitReport, LayerInfo, ModelGraph, ModelState, discover, init_model
from ..model.report import Row
from ._sweep import model_device, primary, replace_primary

WEIGHT_KINDS = ("linear", "conv", "conv_transpose", "hf_conv1d", "attention", "bilinear", "raw")
SCALARS = ("fixup_bias_in", "fixup_scale", "fixup_bias_out", "skipinit_alpha")


class ResidualError(ValueError):
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


def _tensor(model: nn.Module, qualified: str) -> torch.Tensor:
    return model.get_parameter(qualified)


def _weights(model: nn.Module, info: LayerInfo) -> list[tuple[str, torch.Tensor]]:
    return [(q, _tensor(model, q)) for local, q in info.params.items()
            if "weight" in local.rsplit(".", 1)[-1] and _tensor(model, q).dim() >= 2]


def _output_params(model: nn.Module, info: LayerInfo) -> list[tuple[str, torch.Tensor]]:
    """The parameters that, set to zero, make the layer output zero."""
    keys = ("out_proj.weight", "out_proj.bias") if info.kind == "attention" else ("weight", "bias")
    return [(info.params[k], _tensor(model, info.params[k])) for k in keys if k in info.params]


def _set_row(report: InitReport, name: str, scheme: str, note: str, factor: float | None) -> None:
    for row in report.rows:
        if row.name == name or name in row.tied:
            row.scheme, row.note = scheme, note
            if factor is not None and row.std is not None:
                row.std *= factor
                row.bound = None if row.bound is None else row.bound * factor
                row.var_out = None
            return
    report.rows.append(Row(name, "", (), scheme, "residual", note=note, std=0.0 if factor == 0 else None))


# ---- Fixup -------------------------------------------------------------------------------------------------
@dataclass
class FixupPlan:
    branches: int
    layers_per_branch: list[int]
    scales: dict[str, float]
    zeroed: list[str]


@torch.no_grad()
def fixup_init(model: nn.Module, graph: ModelGraph,
               generator: torch.Generator) -> tuple[InitReport, FixupPlan]:
    """Zhang et al. 2019: He init, weight layers inside each of the L branches (m layers) scaled by
    L^(-1/(2m-2)), the last layer of every branch and the classifier set to zero."""
    branches = residual_branches(graph, "Fixup")
    report = init_model(model, "he_normal", graph=graph, generator=generator)
    report.scheme = "fixup"
    count = len(branches)
    plan = FixupPlan(count, [], {}, [])
    for branch in branches:
        layers = branch_layers(graph, branch)
        plan.layers_per_branch.append(len(layers))
        m = len(layers)
        factor = count ** (-1.0 / (2 * m - 2)) if m > 1 else 1.0
        for info in layers[:-1]:
            for q, w in _weights(model, info):
                w.mul_(factor)
                plan.scales[q] = factor
                _set_row(report, q, "fixup", f"he_normal x L^(-1/(2m-2)) = {factor:.4g} (L={count}, m={m})",
                         factor)
        _zero(model, layers[-1], report, plan, "last layer of a residual branch")
    head = classifier(graph)
    if head is not None:
        _zero(model, head, report, plan, "classifier")
    if graph.has_norm:
        report.warn("Fixup is meant for networks without normalization layers; this one has some")
    report.notes.append(f"Fixup: {count} residual branches, weight layers per branch "
                        f"{sorted(set(plan.layers_per_branch))}, {len(plan.zeroed)} tensors zeroed")
    return report, plan


def _zero(model: nn.Module, info: LayerInfo, report: InitReport, plan: FixupPlan, why: str) -> None:
    for q, p in _output_params(model, info):
        p.zero_()
        plan.zeroed.append(q)
        _set_row(report, q, "zeros", f"fixup: {why}", 0.0)


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
@torch.no_grad()
def zero_residual_norm(model: nn.Module, graph: ModelGraph, generator: torch.Generator,
                       base: str = "auto") -> InitReport:
    """Goyal et al. 2017: the base init, then gamma = 0 for the last normalization layer of each residual
    branch when it is the branch's last module (so every block starts as the identity)."""
    branches = residual_branches(graph, "zero-init residual norm")
    report = init_model(model, base, graph=graph, generator=generator)
    report.scheme = "zero_residual_norm"
    zeroed = 0
    for branch in branches:
        if not branch.norms or branch.layers[-1] != branch.norms[-1]:
            report.notes.append(f"branch {branch.index} ({branch.last}) does not end with a norm layer: "
                                "unchanged")
            continue
        info = graph.layer(branch.norms[-1])
        if "weight" not in info.params:
            report.notes.append(f"{info.name} has no affine scale: unchanged")
            continue
        _tensor(model, info.params["weight"]).zero_()
        _set_row(report, info.params["weight"], "zeros", "zero-init residual gamma (Goyal et al. 2017)", 0.0)
        zeroed += 1
    if not zeroed:
        raise ResidualError("no residual branch ends with a normalization layer that has a scale (gamma)")
    return report


QK_NAMES = ("q_proj", "k_proj", "query", "key", "wq", "wk", "to_q", "to_k")


def _value_side(model: nn.Module, info: LayerInfo, qk_names: Sequence[str]) -> list[tuple[str, torch.Tensor]]:
    """The weights T-Fixup/DeepNorm scale: everything in a branch except attention queries and keys."""
    if info.kind == "attention":
        out = []
        if "in_proj_weight" in info.params:
            w = _tensor(model, info.params["in_proj_weight"])
            out.append((info.params["in_proj_weight"] + "[v]", w[2 * w.shape[0] // 3:]))
        elif "v_proj_weight" in info.params:
            out.append((info.params["v_proj_weight"], _tensor(model, info.params["v_proj_weight"])))
        out.append((info.params["out_proj.weight"], _tensor(model, info.params["out_proj.weight"])))
        return out
    leaf = info.name.rsplit(".", 1)[-1]
    return [] if leaf in qk_names else _weights(model, info)


@torch.no_grad()
def _scale_transformer(model: nn.Module, graph: ModelGraph, generator: torch.Generator, rule: str,
                       base: str, factor: float, embed: float | None, qk_names: Sequence[str]) -> InitReport:
    branches = residual_branches(graph, rule)
    report = init_model(model, base, graph=graph, generator=generator)
    report.scheme = rule
    for branch in branches:
        for info in branch_layers(graph, branch):
            for q, w in _value_side(model, info, qk_names):
                w.mul_(factor)
                part = q.endswith("[v]")  # only the value block of a packed in-projection: std is mixed
                _set_row(report, q.removesuffix("[v]"), rule, f"{base} x {factor:.4g}" + (" (v block)" if part
                         else ""), None if part else factor)
    if embed is not None:
        for info in graph.layers:
            if info.kind == "embedding":
                for q, w in _weights(model, info):
                    w.mul_(embed)
                    _set_row(report, q, rule, f"embedding x {embed:.4g}", None)
    return report


@torch.no_grad()
def t_fixup(model: nn.Module, graph: ModelGraph, generator: torch.Generator, *, decoder: bool = False,
            qk_names: Sequence[str] = QK_NAMES) -> InitReport:
    """T-Fixup (Huang et al. 2020): Xavier everywhere, embeddings N(0, d^-1/2); inside every branch the value
    and output projections and the MLP weights scaled by 0.67 N^(-1/4) (encoder; N = number of attention
    branches) or (9N)^(-1/4) (``decoder=True``, which also scales the embeddings)."""
    n = _attention_layers(graph, "T-Fixup")
    factor = (9 * n) ** -0.25 if decoder else 0.67 * n ** -0.25
    report = _scale_transformer(model, graph, generator, "t_fixup", "glorot_uniform", factor, None, qk_names)
    for info in graph.layers:
        if info.kind == "embedding":
            for q, w in _weights(model, info):
                w.normal_(0.0, w.shape[-1] ** -0.5, generator=generator).mul_(factor if decoder else 1.0)
                label = f"N(0, d^-1/2){' x ' + format(factor, '.4g') if decoder else ''}"
                _set_row(report, q, "t_fixup", label, None)
    report.notes.append(f"T-Fixup: N = {n} attention layers, scale {factor:.4g}; remove LayerNorm and warmup")
    return report


@torch.no_grad()
def deepnorm(model: nn.Module, graph: ModelGraph, generator: torch.Generator, *,
             qk_names: Sequence[str] = QK_NAMES) -> InitReport:
    """DeepNet (Wang et al. 2022), encoder-only or decoder-only: Xavier normal, with the MLP, value and
    output projections inside every branch scaled by beta = (8N)^(-1/4). The residual itself must become
    LN(alpha * x + f(x)) with alpha = (2N)^(1/4): that is architecture, reported as ``alpha`` in the notes."""
    n = _attention_layers(graph, "DeepNorm")
    beta, alpha = (8 * n) ** -0.25, (2 * n) ** 0.25
    report = _scale_transformer(model, graph, generator, "deepnorm", "glorot_normal", beta, None, qk_names)
    report.notes.append(f"DeepNorm: N = {n} layers, beta = {beta:.4g}; use x = LN({alpha:.4g} * x + f(x)) "
                        "in the residual (alpha is architecture, not init)")
    return report


def _attention_layers(graph: ModelGraph, rule: str) -> int:
    branches = residual_branches(graph, rule)
    with_attention = {i.branch for i in graph.layers if i.kind == "attention" and i.branch is not None}
    n = len(with_attention) if with_attention else math.ceil(len(branches) / 2)
    return max(1, n)

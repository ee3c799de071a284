"""Parameters no layer owns, initialized as their architectures' authors do, each rule named in the report.

Two kinds of rule, by parameter name and shape:

- **fixed rules** (:func:`param_rule`): the same whatever the scheme, because the authors' value does not
  depend on a fan: ``cls_token``/``dist_token``/register tokens and ``pos_embed`` trunc_normal(std .02)
  (HF ViT, timm CaiT/DeiT's distillation token/BEiT; timm's VisionTransformer draws its tokens N(0, 1e-6),
  too small where a token meets a norm with no position embedding added),
  relative-position bias tables trunc_normal(.02) (Swin, BEiT), layer-scale gamma kept at its constructor
  value (timm ``LayerScale(init_values)``, HF ConvNeXt/DINOv2: the value *is* the method, 1e-6 or 1e-5),
  NF-Nets' SkipInit gain (0) and weight-standardized convs' gains (1) kept.
- **fused MoE expert weights** (:func:`attach_expert_layers`): a 3-D parameter ``(E, out, in)`` of a module
  named like ``*Experts`` (HF Mixtral, Qwen2-MoE) is E weight matrices used through ``F.linear(x, W[e])``:
  it becomes a weight layer with fans per expert, so "auto" and every catalog scheme size it like a Linear.

Anything else stays "untouched" with the one-line fix in the report (``rules=`` or ``register_layer``)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

from torch import nn

from ._registry import Kind, ParamSpec


@dataclass(frozen=True)
class ParamRule:
    label: str  # named in the report's rule column
    scheme: str | None  # a catalog scheme; None keeps the constructor's value
    names: tuple[str, ...]  # globs on the parameter's own name (the last dotted component)
    ndim: tuple[int, ...] = ()  # allowed numbers of dimensions (empty: any)
    owners: tuple[str, ...] = ()  # and, for ``owned_names``, globs on the owner module's class name
    owned_names: tuple[str, ...] = ()  # names that match only inside such an owner (a bare ``gamma``)
    # a kept parameter's value where the constructor's cannot be read (built on meta): the architecture's
    # default; None: no default holds across models (layer scale's 1e-5, 1e-6, 0.1...), zero-filled, noted
    meta: float | None = None

    def matches(self, name: str, shape: tuple[int, ...], owner: str = "") -> bool:
        leaf = name.rpartition(".")[2]
        if self.ndim and len(shape) not in self.ndim:
            return False
        if any(fnmatch.fnmatchcase(leaf, g) for g in self.names):
            return True
        return leaf in self.owned_names and any(fnmatch.fnmatchcase(owner, g) for g in self.owners)


FIXED_RULES: tuple[ParamRule, ...] = (
    ParamRule(
        # timm's VisionTransformer draws N(0, 1e-6); a token that meets a LayerNorm with no position embedding
        # added (CaiT's class attention, register tokens) then sits at the norm's epsilon: CaiT's whole class
        # path, and its logits, started at ~1e-6
        "tokens trunc_normal(.02)",
        "timm:trunc_normal(std=0.02)",
        ("cls_token", "dist_token", "reg_token", "reg_tokens", "register_tokens"),
        (2, 3),
    ),
    ParamRule(
        "timm:pos_embed trunc_normal(.02)",
        "timm:trunc_normal(std=0.02)",
        ("pos_embed", "pos_embedding", "position_embeddings", "absolute_pos_embed"),
        (2, 3, 4),
    ),
    ParamRule(
        "swin:relative_position_bias_table trunc_normal(.02)",
        "timm:trunc_normal(std=0.02)",
        ("relative_position_bias_table",),
        (2,),
    ),
    ParamRule(
        "layer-scale gamma: constructor value kept",
        None,
        ("gamma_1", "gamma_2", "layer_scale*", "lambda1", "lambda2", "ls_gamma"),
        (1, 3, 4),  # (C,), or (C, 1, 1) broadcast over a conv map
        # a bare ``gamma`` is layer scale only in timm's LayerScale*/ConvNeXt-style blocks (elsewhere: a norm)
        owners=("*LayerScale*", "ConvNeXtBlock", "*ConvNextLayer*"),
        owned_names=("gamma",),
    ),
    ParamRule(
        # SkipInit (De & Smith 2020), NF-Nets' residual branches: ``out.mul_(skipinit_gain)``, 0 at
        # construction, so every block starts as the identity; the value is the method
        "SkipInit gain: constructor value kept",
        None,
        ("skipinit_gain",),
        meta=0.0,
    ),
    ParamRule(
        # NF-Nets (Brock et al. 2021): the filter's gain after weight standardization, 1 at construction
        "weight-standardized conv gain: constructor value kept",
        None,
        (),
        (2, 3, 4, 5),
        owners=("*StdConv*",),
        owned_names=("gain",),
        meta=1.0,  # zero-filled on meta, every conv's output was zero: a dead network
    ),
)


def param_rule(name: str, shape: tuple[int, ...], owner: nn.Module | None = None) -> ParamRule | None:
    """The fixed rule for a parameter no layer owns (``owner``: the module holding it), or None."""
    cls = type(owner).__name__ if owner is not None else ""
    return next((r for r in FIXED_RULES if r.matches(name, shape, cls)), None)


EXPERT_SPEC = ParamSpec("weight", "torch", batched=True)


def is_expert_weight(name: str, shape: tuple[int, ...], owner: nn.Module | None) -> bool:
    """A fused ``(E, out, in)`` expert tensor: 3-D, in a module whose class says it holds experts."""
    if len(shape) != 3 or shape[0] < 2:
        return False
    cls = type(owner).__name__.lower() if owner is not None else ""
    return "expert" in cls or ".experts." in f".{name}"


def attach_expert_layers(graph: object) -> None:
    """Turn fused expert tensors the walk left unreached into weight layers with per-expert fans."""
    from .graph import LayerInfo, ModelGraph

    assert isinstance(graph, ModelGraph)
    params = dict(graph.model.named_parameters())
    modules = dict(graph.model.named_modules())
    for q in list(graph.unreached):
        p = params.get(q)
        shape = tuple(p.shape) if p is not None else ()
        if p is None or not is_expert_weight(q, shape, modules.get(q.rpartition(".")[0])):
            continue
        fans = EXPERT_SPEC.fans(shape)
        info = LayerInfo(q, None, Kind.RAW, {"weight": q}, {"weight": EXPERT_SPEC})
        if fans is not None:
            info.fans["weight"] = fans
        graph.layers.append(info)
        del graph.unreached[q]
        graph.notes.append(
            f"{q}: fused expert weights {shape} (E, out, in), fans per expert (rule moe_experts)"
        )

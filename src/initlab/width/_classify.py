"""Which parameters scale with width, and how: Tensor Programs V, Table 3.

A dimension is *infinite* (scales with width) when it differs from the same parameter's dimension in the base
model. From a weight's fans at both widths: fan_out scales only -> ``input`` (input weights, embeddings),
fan_in and fan_out -> ``hidden``, fan_in only -> ``output`` (readout); a 1-D parameter (bias, norm gain)
whose size scales -> ``vector``; nothing scales -> ``fixed``. Only shapes are read (module types give the
layout), so it works on meta, DTensor/FSDP2-sharded and reloaded models, and nothing is stored on tensors.

Tied weights (an embedding reused as the readout): one tensor cannot have the init and learning rate of both
an input and an output weight. As the ``mup`` package does (``MuSharedReadout``), it is classed ``input``
and the readout's 1/width_mult moves into the forward (:mod:`._forward`): the readout module is listed in
:attr:`Classification.readouts`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

from ..errors import InitlabTypeError, InitlabValueError
from ..model.graph import unwrap
from ..model.layers import ParamSpec, layer_kind, param_specs

Kind = Literal["input", "hidden", "output", "vector", "fixed"]
KINDS: tuple[Kind, ...] = ("input", "hidden", "output", "vector", "fixed")
BaseLike = nn.Module | Mapping[str, Sequence[int]]


@dataclass(frozen=True)
class ParamClass:
    """One parameter's μP class. ``fan_in``/``fan_out`` at the model's width, ``base_fan_*`` at the base's;
    for a bias the fans are those of its weight (its init scale follows that fan_in)."""

    name: str
    kind: Kind
    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    fan_in: float
    fan_out: float
    base_fan_in: float
    base_fan_out: float
    tied: tuple[str, ...] = ()

    @property
    def mult_in(self) -> float:
        """fan_in / base fan_in (``width_mult`` of a hidden or output weight)."""
        return self.fan_in / self.base_fan_in

    @property
    def mult_out(self) -> float:
        return self.fan_out / self.base_fan_out


@dataclass
class Classification:
    """Every distinct parameter's class; ``readouts``: module name -> the multiplier (1/width_mult) its
    input needs in the forward (tied readouts)."""

    params: dict[str, ParamClass] = field(default_factory=dict)
    readouts: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> ParamClass:
        if name in self.params:
            return self.params[name]
        for c in self.params.values():
            if name in c.tied:
                return c
        raise KeyError(f"no parameter {name!r} in the classification")

    def of(self, kind: Kind) -> list[str]:
        return [n for n, c in self.params.items() if c.kind == kind]

    def summary(self) -> str:
        return ", ".join(f"{len(self.of(k))} {k}" for k in KINDS if self.of(k))


def base_shapes(base: BaseLike) -> dict[str, tuple[int, ...]]:
    """Parameter name -> shape of the base (a module, typically built on meta, or a dict)."""
    if isinstance(base, nn.Module):
        return {n: tuple(p.shape) for n, p in unwrap(base).named_parameters(remove_duplicate=False)}
    if isinstance(base, Mapping):
        return {str(k): tuple(int(x) for x in v) for k, v in base.items()}
    raise InitlabTypeError(
        "base must be the model at its base width (e.g. `with torch.device('meta'): base = make(64)`) or a "
        f"dict parameter name -> base shape, got {type(base).__name__}"
    )


def _slots(model: nn.Module) -> list[tuple[str, str, nn.Module, str, ParamSpec, torch.Tensor]]:
    """(qualified name, module name, module, local name, spec, tensor) for every parameter slot."""
    out = []
    for mname, module in model.named_modules(remove_duplicate=False):
        kind = layer_kind(module)
        specs = param_specs(kind, module) if kind else {}
        for local, p in module.named_parameters(recurse=False, remove_duplicate=False):
            spec = specs.get(local) or ParamSpec("weight" if p.dim() >= 2 else "bias")
            out.append((f"{mname}.{local}" if mname else local, mname, module, local, spec, p))
    return out


def _fans(spec: ParamSpec, shape: tuple[int, ...]) -> tuple[float, float]:
    if spec.role == "embedding":  # a lookup: one-hot input of size num_embeddings, output the embedding dim
        return float(shape[0]), float(math.prod(shape[1:]))
    fans = spec.fans(shape) if len(shape) >= 2 else None
    if fans is None:
        return 1.0, float(math.prod(shape) or 1)
    return fans.fan_in, fans.fan_out


def _kind(shape: tuple[int, ...], base: tuple[int, ...], fans: tuple[float, ...], spec: ParamSpec) -> Kind:
    if len(shape) < 2 or spec.role in ("norm_weight", "norm_bias"):
        return "vector" if shape != base else "fixed"
    fi, fo, bfi, bfo = fans
    inf_in, inf_out = fi != bfi, fo != bfo
    if inf_in and inf_out:
        return "hidden"
    if inf_in:
        return "output"
    return "input" if inf_out else "fixed"


def _one(q: str, spec: ParamSpec, shape: tuple[int, ...], base: tuple[int, ...],
         sibling: tuple[tuple[int, ...], tuple[int, ...], ParamSpec] | None) -> ParamClass:
    if len(shape) != len(base):
        raise InitlabValueError(f"{q}: shape {shape} and base shape {base} have different ranks")
    if sibling is not None and len(shape) < 2:  # a bias: its scale follows its weight's fan_in
        fi, fo = _fans(sibling[2], sibling[0])
        bfi, bfo = _fans(sibling[2], sibling[1])
    else:
        fi, fo = _fans(spec, shape)
        bfi, bfo = _fans(spec, base)
    return ParamClass(q, _kind(shape, base, (fi, fo, bfi, bfo), spec), shape, base, fi, fo, bfi, bfo)


def classify(model: nn.Module, base: BaseLike) -> Classification:
    """The μP class of every parameter of ``model``, by comparing its shapes with ``base``'s.

    >>> from torch import nn
    >>> def make(w):
    ...     return nn.Sequential(nn.Linear(10, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, 3))
    >>> classify(make(256), make(64)).summary()
    '1 input, 1 hidden, 1 output, 2 vector, 1 fixed'
    """
    model = unwrap(model)
    shapes = base_shapes(base)
    slots = _slots(model)
    missing = [q for q, *_ in slots if q not in shapes]
    if missing:
        raise InitlabValueError(
            f"base has no parameter {missing[0]!r} ({len(missing)} missing): base must be the same "
            f"architecture at the base width; its parameters look like {', '.join(list(shapes)[:3])}"
        )
    by_id: dict[int, list[ParamClass]] = {}
    owners: dict[str, str] = {}
    for q, mname, module, _, spec, p in slots:
        sib = None
        if spec.fans_of and spec.fans_of in dict(module.named_parameters(recurse=False)):
            sq = f"{mname}.{spec.fans_of}" if mname else spec.fans_of
            kind = layer_kind(module)
            sspec = (param_specs(kind, module) if kind else {}).get(spec.fans_of) or ParamSpec("weight")
            sib = (tuple(getattr(module, spec.fans_of).shape), shapes[sq], sspec)
        by_id.setdefault(id(p), []).append(_one(q, spec, tuple(p.shape), shapes[q], sib))
        owners[q] = mname
    out = Classification()
    for group in by_id.values():
        first = group[0]
        kinds = {c.kind for c in group}
        tied = tuple(c.name for c in group[1:])
        if len(kinds) == 1:
            out.params[first.name] = _with(first, first.kind, tied)
            continue
        if kinds != {"input", "output"}:
            raise InitlabValueError(
                f"{first.name} is tied to {', '.join(tied)} with classes {sorted(kinds)}: "
                             "μP has no rule for that; untie them or pass a dict base shape that makes them "
                             "agree")
        emb = next(c for c in group if c.kind == "input")
        out.params[emb.name] = _with(emb, "input", tuple(c.name for c in group if c is not emb))
        for c in group:
            if c.kind == "output":
                out.readouts[owners[c.name]] = 1.0 / c.mult_in
        out.notes.append(
            f"{emb.name} is tied to the readout {', '.join(c.name for c in group if c.kind == 'output')}: "
            "classed input-like (embedding init and learning rate); the readout's 1/width_mult goes into "
            "the forward, as mup's MuSharedReadout does"
        )
    return out


def _with(c: ParamClass, kind: Kind, tied: tuple[str, ...]) -> ParamClass:
    from dataclasses import replace

    return replace(c, kind=kind, tied=tied)

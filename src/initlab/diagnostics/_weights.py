"""Weight statistics of every hooked layer at once, after the backward pass: parameter and gradient norms,
means, effective ranks and symmetry groups.

Each statistic is batched across layers (one fused norm call, one batched eigendecomposition per Gram size,
one screening stack per weight shape): on a small model every tensor operation costs more in dispatch than
in arithmetic, and a transformer holds dozens of weights of one shape. The numbers are those of the
per-tensor functions in :mod:`.stats`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from . import stats
from .records import ParamStats
from .sites import Site

GradLookup = Callable[[torch.Tensor], "torch.Tensor | None"]
Named = Sequence[tuple[str, torch.Tensor]]


@torch.no_grad()
def weight_fields_many(sites: Sequence[Site], grad_of: GradLookup) -> dict[int, dict[str, Any]]:
    """``{id(site.module): fields}`` for each distinct module: ``params`` (norms, gradient norms, means) and,
    for a layer with a weight matrix, ``effective_rank`` and (embeddings aside) ``symmetry``."""
    first = {id(s.module): s for s in reversed(sites)}  # the first site of each module
    named = {key: _named_parameters(site.module) for key, site in first.items()}
    params = _param_stats(named, grad_of)
    fields: dict[int, dict[str, Any]] = {key: {"params": ps} for key, ps in params.items()}
    matrices = {key: wb for key in first if (wb := _weight_and_bias(first[key], named[key])) is not None}
    ranks = stats.effective_ranks([(wb[0], first[key].transposed) for key, wb in matrices.items()])
    for key, rank in zip(matrices, ranks, strict=True):
        fields[key]["effective_rank"] = rank
    rows = [key for key in matrices if first[key].kind != "embedding"]
    found = stats.symmetries([_rows(first[key], *matrices[key], grad_of) for key in rows])
    for key, sym in zip(rows, found, strict=True):
        fields[key]["symmetry"] = sym
    return fields


def _named_parameters(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """``list(module.named_parameters())``; a leaf module's read from its own dict (the generator costs ~20 us
    a layer, a fifth of a small layer's whole statistics)."""
    if module._modules:
        return list(module.named_parameters())
    out: dict[int, tuple[str, torch.Tensor]] = {}
    for name, p in module._parameters.items():
        if p is not None:
            out.setdefault(id(p), (name, p))  # a parameter registered twice: its first name, as torch's
    return list(out.values())


def _param_stats(named: Mapping[int, Named], grad_of: GradLookup) -> dict[int, list[ParamStats]]:
    """Each module's parameters' numbers, a tied parameter (an LM head sharing the embedding) reduced once."""
    tensors = list({id(p): p for ps in named.values() for _, p in ps}.values())
    numbers = {id(p): (norm or 0.0, g, m) for p, norm, g, m in zip(
        tensors, stats.norms(tensors), stats.norms([grad_of(p) for p in tensors]), stats.means(tensors),
        strict=True)}
    return {key: [ParamStats(n, list(p.shape), *numbers[id(p)]) for n, p in ps] for key, ps in named.items()}


def _weight_and_bias(site: Site, named: Named) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """The layer's first matrix-shaped parameter and its bias (None: no weight matrix to analyse)."""
    weight = next((p for _, p in named if p.dim() >= 2), None)
    if weight is None or weight.device.type == "meta":
        return None
    bias_name = "in_proj_bias" if site.kind == "attention" else "bias"
    return weight, dict(named).get(bias_name)


def _rows(site: Site, weight: torch.Tensor, bias: torch.Tensor | None,
          grad_of: GradLookup) -> tuple[stats.UnitRows, stats.GradRows]:
    """Each output unit's incoming weights (and bias), not yet copied out, and a callable for the same rows
    of the gradient (None when the weight or its bias got none): only weights whose units share their
    weights need it."""

    def grad_rows() -> torch.Tensor | None:
        grad_w = grad_of(weight)
        grad_b = grad_of(bias) if bias is not None else None
        if grad_w is None or (bias is not None and grad_b is None):
            return None
        return stats.unit_rows(grad_w, grad_b, site.transposed)

    return stats.UnitRows.of(weight, bias, site.transposed), grad_rows

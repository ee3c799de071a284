"""Hooks that measure each layer's output on the forward pass and its gradient on the backward pass.

Statistics are reduced inside the hooks (nothing is kept alive but a few numbers and a histogram), and the
hooks never change what the model computes. Shared by ``diagnose`` (one pass) and ``monitor`` (every N steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from . import stats
from .profiles import ActivationProfile, profile
from .records import LayerStats, ParamStats
from .sites import Site

GradLookup = Callable[[torch.Tensor], "torch.Tensor | None"]


class _Call:
    """One call of a hooked layer: forward numbers now, gradient numbers when backward reaches it."""

    def __init__(self, site: Site, fields: dict[str, Any]) -> None:
        self.site = site
        self.fields = fields

    def on_grad(self, grad: torch.Tensor) -> None:
        g = grad.detach()
        self.fields["grad_norm"] = stats.norm(g)
        n = g.numel()
        self.fields["grad_rms"] = self.fields["grad_norm"] / math.sqrt(n) if n else math.nan


class Recorder:
    """Forward hooks on every site; ``armed`` switches measuring on and off without removing them."""

    def __init__(self, sites: Sequence[Site], bins: int = 40) -> None:
        self.sites = list(sites)
        self.bins = bins
        self.armed = True
        self.calls: list[_Call] = []
        self._handles: list[Any] = []
        self._profiles: dict[int, ActivationProfile | None] = {
            id(s): (profile(s.activation) if s.activation is not None else None) for s in self.sites
        }

    def __enter__(self) -> Recorder:
        for site in self.sites:
            self._handles.append(site.module.register_forward_hook(self._hook(site)))
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, site: Site) -> Callable[..., None]:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            if not self.armed:
                return
            z = first_tensor(output)
            if z is None or not z.is_floating_point():
                return
            call = _Call(site, forward_fields(z, site, self._profiles[id(site)], self.bins))
            self.calls.append(call)
            if z.requires_grad:
                z.register_hook(call.on_grad)

        return hook

    def layers(self, grad_of: GradLookup) -> list[LayerStats]:
        """The calls recorded since the last ``clear``, in forward order, with weight statistics."""
        weights: dict[int, dict[str, Any]] = {}
        out = []
        seen: dict[str, int] = {}
        for i, call in enumerate(self.calls):
            site = call.site
            if id(site.module) not in weights:
                weights[id(site.module)] = weight_fields(site, grad_of)
            seen[site.name] = seen.get(site.name, 0) + 1
            name = site.name if seen[site.name] == 1 else f"{site.name}#{seen[site.name]}"
            out.append(
                LayerStats(
                    index=i,
                    name=name or type(site.module).__name__,
                    kind=site.kind,
                    activation=site.activation.spec if site.activation else None,
                    **call.fields,
                    **weights[id(site.module)],
                )
            )
        return out

    def clear(self) -> None:
        self.calls = []


def first_tensor(output: Any) -> torch.Tensor | None:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            found = first_tensor(item)
            if found is not None:
                return found
    if isinstance(output, dict):
        return first_tensor(list(output.values()))
    return None


@torch.no_grad()
def forward_fields(z: torch.Tensor, site: Site, prof: ActivationProfile | None, bins: int) -> dict[str, Any]:
    z = z.detach() if z.dtype == torch.float64 else z.detach().float()
    post = prof.fn(z) if prof is not None and prof.spec != "linear" else z
    output = stats.moments(z)
    fields: dict[str, Any] = {
        "shape": list(z.shape),
        "output": output,
        "act": stats.moments(post) if post is not z else output,
        "histogram": stats.histogram(post, bins),
    }
    if z.numel() == 0 or prof is None:
        return fields
    if prof.dead_edge is not None:
        unit_max = stats.unit_max(z, site.unit_dim)
        fields["dead"] = int(torch.count_nonzero(unit_max <= prof.dead_edge)) / unit_max.numel()
    if prof.saturation is not None:
        low, high = prof.saturation
        fields["saturated"] = int(torch.count_nonzero((z < low) | (z > high))) / z.numel()
    return fields


@torch.no_grad()
def weight_fields(site: Site, grad_of: GradLookup) -> dict[str, Any]:
    named = list(site.module.named_parameters())
    params = [
        ParamStats(
            n,
            list(p.shape),
            stats.norm(p) or 0.0,
            stats.norm(grad_of(p)),
            float(p.detach().mean(dtype=torch.float64)) if p.numel() and p.device.type != "meta" else None,
        )
        for n, p in named
    ]
    fields: dict[str, Any] = {"params": params}
    by_name = dict(named)
    weight = next((p for n, p in named if p.dim() >= 2), None)
    if weight is None or weight.device.type == "meta":
        return fields
    bias_name = "in_proj_bias" if site.kind == "attention" else "bias"
    bias = by_name.get(bias_name)
    fields["effective_rank"] = stats.effective_rank(weight, site.transposed)
    if site.kind != "embedding":
        rows = stats.unit_rows(weight, bias, site.transposed)
        grad_w = grad_of(weight)
        grad_b = grad_of(bias) if bias is not None else None
        grad_rows = None
        if grad_w is not None and (bias is None or grad_b is not None):
            grad_rows = stats.unit_rows(grad_w, grad_b, site.transposed)
        fields["symmetry"] = stats.symmetry(rows, grad_rows)
    return fields

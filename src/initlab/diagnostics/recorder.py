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
from torch.autograd.graph import GradientEdge, get_gradient_edge

from . import stats
from ._weights import GradLookup, weight_fields_many
from .profiles import ActivationProfile, profile
from .records import LayerStats
from .sites import Site


class _Call:
    """One call of a hooked layer: forward numbers now, gradient numbers when backward reaches it (through a
    tensor hook, or through ``edge``: the output's place in the graph, whose gradient the caller asks
    ``torch.autograd.grad`` for along with the parameters')."""

    def __init__(self, site: Site, fields: dict[str, Any]) -> None:
        self.site = site
        self.fields = fields
        self.edge: GradientEdge | None = None
        self.entries = 0  # the output's, for the gradient's RMS

    def on_grad(self, grad: torch.Tensor) -> None:
        self.set_grad(stats.norm(grad), grad.numel())

    def set_grad(self, norm: float | None, n: int) -> None:
        self.fields["grad_norm"] = norm
        self.fields["grad_rms"] = norm / math.sqrt(n) if n and norm is not None else math.nan


def _in_backward() -> bool:
    """Whether autograd is running a backward pass: a layer called then is the forward run again
    (activation checkpointing, reversible layers), which a monitor's hooks, armed through the user's own
    ``loss.backward()``, recorded as new calls (``a``, ``b``, ``head``, ``a#2``, ``b#2``)."""
    return _GRAPH_TASK() != -1


_GRAPH_TASK: Callable[[], int] = getattr(torch._C, "_current_graph_task_id", lambda: -1)


class Recorder:
    """Forward hooks on every site; ``armed`` switches measuring on and off without removing them."""

    def __init__(self, sites: Sequence[Site], bins: int = 40, edges: bool = False) -> None:
        self.sites = list(sites)
        self.bins = bins
        self.armed = True
        self._edge_calls: list[_Call] = []  # the calls whose outputs' gradients grad_edges asked for
        self.edges = edges  # outputs' gradients through grad_edges/take_grads, up to EDGE_ENTRIES of them
        self.calls: list[_Call] = []
        self._edge_entries = 0
        self._gradless: dict[int, list[_Call]] = {}  # site -> its calls whose output had no grad (yet)
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
            if _in_backward():
                self._rerun(site, z)
                return
            call = _Call(site, forward_fields(z, site, self._profiles[id(site)], self.bins))
            self.calls.append(call)
            if len(self.calls) % PENDING_CALLS == 0:  # bound the samples kept (a monitor between reads)
                _count_histograms(self.calls[-PENDING_CALLS:])
            if not z.requires_grad:
                self._gradless.setdefault(id(site), []).append(call)
                return
            if self.edges and self._edge_entries + z.numel() <= EDGE_ENTRIES:
                # the edge, not the tensor: an in-place op after this hook (ReLU(inplace=True)) makes z the
                # ReLU's output, while the edge keeps naming the layer's own output, as a tensor hook does
                call.edge, call.entries = get_gradient_edge(z), z.numel()
                self._edge_entries += z.numel()
            else:
                z.register_hook(call.on_grad)

        return hook

    def _rerun(self, site: Site, z: torch.Tensor) -> None:
        """A layer called during a backward pass: the forward run again (activation checkpointing, reversible
        layers), not a new call. Its output's gradient is the one its first run could not give when that ran
        without grad (a reentrant checkpoint): taken for that call when it is the site's only one waiting
        (with more, which rerun is which is not known, and their gradients stay unmeasured)."""
        waiting = self._gradless.get(id(site), [])
        if len(waiting) == 1 and z.requires_grad:
            z.register_hook(waiting.pop().on_grad)

    def grad_edges(self) -> list[GradientEdge]:
        """The outputs whose gradients the caller's ``torch.autograd.grad`` should return, for
        :meth:`take_grads` (one batched norm instead of a Python hook per layer during the backward pass)."""
        self._edge_calls = [c for c in self.calls if c.edge is not None]
        return [c.edge for c in self._edge_calls if c.edge is not None]

    def take_grads(self, grads: Sequence[torch.Tensor | None]) -> None:
        """The gradients of :meth:`grad_edges`, in order (None: the output did not reach the loss)."""
        calls, self._edge_calls = self._edge_calls, []
        for call, grad, norm in zip(calls, grads, stats.norms(grads), strict=True):
            call.edge = None
            if grad is not None:
                call.set_grad(norm, call.entries)
        self._edge_entries = 0

    def layers(self, grad_of: GradLookup) -> list[LayerStats]:
        """The calls recorded since the last ``clear``, in forward order, with weight statistics."""
        _count_histograms(self.calls)
        weights = weight_fields_many([call.site for call in self.calls], grad_of)
        out = []
        seen: dict[str, int] = {}
        for i, call in enumerate(self.calls):
            site = call.site
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
        self._gradless.clear()


EDGE_ENTRIES = 1 << 24  # output entries whose gradients come back together (64 MiB in float32); then hooks
PENDING_CALLS = 256  # histograms counted together: at most 256 samples of 2**16 entries (64 MiB) kept


def _count_histograms(calls: list[_Call]) -> None:
    """The calls' pending histograms counted, all in one batched pass (:func:`stats.histograms`)."""
    pending = [c for c in calls if isinstance(c.fields["histogram"], stats.PendingHistogram)]
    for call, hist in zip(pending, stats.histograms([c.fields["histogram"] for c in pending]), strict=True):
        call.fields["histogram"] = hist


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
    """The layer output's numbers; its histogram may be pending (counted with others by ``layers``). Under
    no_grad, so no ``detach`` (an operation per call)."""
    z = z if z.dtype in (torch.float32, torch.float64) else z.float()
    post = prof.fn(z) if prof is not None and prof.spec != "linear" else z
    counts = _unit_counts(z, site, prof)
    fused = stats.signal_summary(z, post, bins, list(counts.values()))
    if fused is None:  # overflow, underflow or non-finite values: each statistic on its own, safe path
        output = stats.moments(z)
        act = stats.moments(post) if post is not z else output
        hist: stats.Histogram | stats.PendingHistogram = stats.histogram(post, bins)
        values = [float(c) for c in counts.values()]
    else:
        output, act, hist, values = fused
    fields: dict[str, Any] = {"shape": list(z.shape), "output": output, "act": act, "histogram": hist}
    found = dict(zip(counts, values, strict=True))
    if "dead" in found:
        fields["dead"] = found["dead"] / stats.units(z, site.unit_dim)
    if "saturated" in found:
        fields["saturated"] = found["saturated"] / z.numel()
    return fields


def _unit_counts(z: torch.Tensor, site: Site, prof: ActivationProfile | None) -> dict[str, torch.Tensor]:
    """Units never in the activation's active region and saturated entries, as 0-d float64 counts (exact
    below 2**53, and they lift the fused reduction to float64, which holds float32 sums exactly)."""
    counts: dict[str, torch.Tensor] = {}
    if z.numel() == 0 or prof is None:
        return counts
    if prof.dead_edge is not None:
        counts["dead"] = (stats.unit_max(z, site.unit_dim) <= prof.dead_edge).sum(dtype=torch.float64)
    if prof.saturation is not None:
        low, high = prof.saturation
        counts["saturated"] = ((z < low) | (z > high)).sum(dtype=torch.float64)
    return counts


def weight_fields(site: Site, grad_of: GradLookup) -> dict[str, Any]:
    """One layer's weight statistics (:func:`weight_fields_many` batches them over layers)."""
    return weight_fields_many([site], grad_of)[id(site.module)]

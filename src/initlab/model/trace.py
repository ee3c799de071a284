"""Record what flows through a model: every discovered layer's output and the activation applied to it.

``with trace_activations(model, graph) as rec: model(x)`` fills ``rec.pre[layer]`` (the layer's output: the
pre-activation) and ``rec.post[layer]`` (the output of the nonlinearity that follows it, module or functional,
found through shape-only ops and norms), and ``rec.sites`` (every activation applied, by module name or
``"spec@layer"``) and ``rec.norm_inputs`` (the signal entering each normalization layer). Raw parameters used
through ``F.linear``/``@`` count as layers. The last call wins when a layer runs several times; ``calls``
counts them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import layers as L
from ._fuse import Ref, elementwise_call
from ._record import OpRecorder
from .graph import ModelGraph, discover, unwrap


@dataclass
class ActivationTrace:
    pre: dict[str, torch.Tensor] = field(default_factory=dict)
    post: dict[str, torch.Tensor] = field(default_factory=dict)
    sites: dict[str, torch.Tensor] = field(default_factory=dict)
    norm_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)


def _first_tensor(out: Any) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, list | tuple):
        for x in out:
            t = _first_tensor(x)
            if t is not None:
                return t
    return None


class _Tracker:
    """Records tensors from the calls :class:`OpRecorder` hands on and from module hooks."""

    def __init__(self, rec: ActivationTrace, raw: dict[int, str], detach: bool, fused: set[str]):
        self.rec, self.raw, self.detach = rec, raw, detach
        self.source: dict[int, str] = {}  # id(tensor) -> layer whose output it is (through shape-only ops)
        # id(tensor) -> layer whose output it is an elementwise function of; for the layers whose activation
        # discovery fused from primitives (``fused``), the last such tensor is the post-activation
        self.derived: dict[int, str] = {}
        self.fused = fused
        self.keep: list[torch.Tensor] = []
        self.mode = OpRecorder(self.on_call)

    def store(self, table: dict[str, torch.Tensor], key: str, t: torch.Tensor) -> None:
        table[key] = t.detach() if self.detach else t

    def layer_output(self, name: str, out: Any) -> None:
        t = _first_tensor(out)
        if t is None:
            return
        self.store(self.rec.pre, name, t)
        self.rec.calls[name] = self.rec.calls.get(name, 0) + 1
        self.source[id(t)] = name
        self.derived[id(t)] = name
        self.keep.append(t)

    def activation(self, x: Any, out: Any, key: str | None, spec: str) -> None:
        t_in, t_out = _first_tensor(x), _first_tensor(out)
        if t_in is None or t_out is None:
            return
        layer = self.source.get(id(t_in))
        if layer is not None:
            self.store(self.rec.post, layer, t_out)
        self.store(self.rec.sites, key or f"{spec}@{layer}", t_out)

    def passthrough(self, x: Any, out: Any) -> None:
        t_in, t_out = _first_tensor(x), _first_tensor(out)
        if t_in is not None and t_out is not None and id(t_in) in self.source:
            self.source[id(t_out)] = self.derived[id(t_out)] = self.source[id(t_in)]
            self.keep.append(t_out)

    def on_call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        if name in L.LAYER_FUNCS and self.raw:
            for a in (*args, *kwargs.values()):
                if isinstance(a, torch.Tensor) and id(a) in self.raw:
                    self.layer_output(self.raw[id(a)], out)
                    break
        spec = L.function_act(name, args, kwargs)
        if spec is not None and args:
            self.activation(args[0], out, None, spec)
        elif name in L.TRANSPARENT_NAMES and args:
            self.passthrough(args[0], out)
        if spec is not None or elementwise_call(name, _as_refs(args), kwargs):
            self.elementwise(args, kwargs, out)

    def elementwise(self, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        owners = {self.derived.get(id(a)) for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)}
        t_out = _first_tensor(out)
        if len(owners) != 1 or t_out is None:
            return
        layer = owners.pop()
        if layer is not None:
            self.derived[id(t_out)] = layer
            self.keep.append(t_out)
            if layer in self.fused:
                self.store(self.rec.post, layer, t_out)


def _as_refs(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(Ref(0) if isinstance(a, torch.Tensor) else a for a in args)


def _fused_layers(graph: ModelGraph) -> set[str]:
    """Layers whose activation discovery fused from elementwise primitives (``z * torch.sigmoid(z)``)."""
    walker, fused = graph.walker, graph.fused
    if walker is None or not fused:
        return set()
    return {i.name for i in graph.layers if i.node is not None and walker.activation_after(i.node) in fused}


@contextlib.contextmanager
def trace_activations(
    model: nn.Module, graph: ModelGraph | None = None, *, detach: bool = True
) -> Iterator[ActivationTrace]:
    """Record pre- and post-activation tensors of every layer of ``graph`` during the forward passes run
    inside the block. ``detach=False`` keeps them in the autograd graph (e.g. to ``retain_grad()``)."""
    model = unwrap(model)
    graph = graph or discover(model)
    rec = ActivationTrace()
    params = dict(model.named_parameters(remove_duplicate=False))
    raw = {
        id(params[info.params["weight"]]): info.name
        for info in graph.layers
        if info.module is None and info.params.get("weight") in params
    }
    tracker = _Tracker(rec, raw, detach, _fused_layers(graph))
    handles: list[Any] = []
    norm_or_pass = (*L.NORMS, *L.TRANSPARENT_MODULES)
    modules: dict[str, nn.Module] = dict(model.named_modules())
    kinds = {info.name: info.kind for info in graph.layers}
    for mname, module in modules.items():
        if mname in kinds and kinds[mname] != "norm":
            handles.append(module.register_forward_hook(lambda m, a, o, n=mname: tracker.layer_output(n, o)))
        elif isinstance(module, norm_or_pass):
            handles.append(module.register_forward_hook(lambda m, a, o: tracker.passthrough(a, o)))
            if isinstance(module, L.NORMS):
                handles.append(
                    module.register_forward_hook(
                        lambda m, a, o, n=mname: tracker.store(rec.norm_inputs, n, a[0]) if a else None
                    )
                )
        else:
            act = L.module_act(module)
            if act is not None:
                handles.append(
                    module.register_forward_hook(
                        lambda m, a, o, n=mname, s=act.spec: tracker.activation(a, o, n, s)
                    )
                )
    try:
        with tracker.mode:
            yield rec
    finally:
        for h in handles:
            h.remove()

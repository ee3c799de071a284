"""``initlab.keras.init_model``: a built Keras 3 model described as a shadow torch skeleton, planned and drawn
by the shared path, written back in Keras' layout -- all or nothing."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from ..frameworks._shadow import Key, draw_plan, plan_shadow
from ..frameworks._shadow import relabel as _relabel
from ..model import InitReport
from ._layers import HANDLERS, Ctx, _Unsupported


def init_model(model: Any, scheme: Any = "auto", *, seed: int | None = None, dry_run: bool = False,
               key: Key = "order", **options: Any) -> InitReport:
    """Initialize every weight of a built Keras 3 model (Sequential, Functional, or subclassed after it has
    been called once) and say what was done, as :func:`initlab.init_model` does for PyTorch.

    Layers, activations (a layer's ``activation`` or the Activation layer that follows), residual ``Add``
    layers, LSTM/GRU gate blocks, MultiHeadAttention and Embedding are read from the model; the plan is the
    one ``initlab.init_model`` makes for the equivalent torch model, drawn by the counter-based generator
    keyed by layer order (``key="order"``): the same weights as ``initlab.frameworks.init_torch`` for
    ``seed``. Weights of layers initlab does not know are left as they are and listed in
    ``report.warnings``. ``dry_run=True`` changes nothing.
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"initlab.keras.init_model expects a keras.Model, got {type(model).__name__}")
    if not model.built or any(not layer.built for layer in model.layers):
        raise ValueError("the model is not built: call it once on an example batch or model.build(shape) "
                         "first")
    ctx = _discover(model)
    report = plan_shadow(ctx.builder.build(), scheme, seed, **options)
    assert report.seed is not None
    _relabel(report, ctx.labels)
    for name in ctx.skipped:
        report.warn(f"{name}: unknown Keras layer left as it is; give it an initializer such as "
                    "kernel_initializer=initlab.keras.get('he_normal')")
    report.notes.extend(ctx.notes)
    if dry_run:
        return report
    draws = {k: v.numpy() for k, v in draw_plan(report.plan, report.seed, key).items()}
    _write(ctx, draws)
    report.dry_run = False
    return report


def _discover(model: Any) -> Ctx:
    ctx = Ctx()
    graph = getattr(model, "_functional", None) if isinstance(model, keras.Sequential) else model
    functional = isinstance(graph, keras.Model) and hasattr(graph, "_inbound_nodes") and \
        type(graph).__name__ == "Functional"
    if functional:
        _walk_graph(ctx, graph)
    else:
        if not isinstance(model, keras.Sequential):
            ctx.notes.append("subclassed model: layers taken in attribute order (residual adds not seen)")
        node = ctx.builder.input()
        for layer in model.layers:
            node = _layer(ctx, layer, [node])
    return ctx


def _walk_graph(ctx: Ctx, model: Any) -> None:
    nodes: dict[int, int] = {}  # id(keras op) -> shadow node
    for layer in model.operations:
        sources = [t._keras_history.operation for t in layer._inbound_nodes[0].input_tensors] \
            if layer._inbound_nodes else []
        if isinstance(layer, keras.layers.InputLayer) or not sources:
            nodes[id(layer)] = ctx.builder.input() if not ctx.builder.program else 0
            continue
        if len(layer._inbound_nodes) > 1:
            ctx.notes.append(f"{layer.name}: a shared layer, planned at its first call")
        srcs = [nodes[id(s)] for s in sources if id(s) in nodes]
        nodes[id(layer)] = _layer(ctx, layer, srcs)


def _layer(ctx: Ctx, layer: Any, srcs: list[int]) -> int:
    kind = type(layer).__name__
    if kind == "Add":
        return ctx.builder.add(srcs)
    if isinstance(layer, keras.Model):
        ctx.skipped.append(f"{layer.name} (nested model)")
        return srcs[0]
    handler = HANDLERS.get(kind)
    if handler is None:
        if layer.weights:
            ctx.skipped.append(f"{layer.name} ({kind})")
        elif len(srcs) > 1:
            ctx.notes.append(f"{layer.name} ({kind}): merge planned as its first input")
        return srcs[0]
    try:
        return handler(ctx, layer, srcs[0])
    except _Unsupported as exc:
        ctx.skipped.append(f"{layer.name} ({exc})")
        return srcs[0]


def _write(ctx: Ctx, draws: dict[str, np.ndarray]) -> None:
    """Every value is computed and checked first; then assigned, and restored exactly if anything fails."""
    todo = []
    for w in ctx.writes:
        if not all(n in draws for n in w.needs):  # a "keep" rule or an untouched parameter
            continue
        value = w.convert(draws)
        if tuple(value.shape) != tuple(w.variable.shape):
            raise RuntimeError(f"internal: {w.variable.path} planned as {value.shape}, is {w.variable.shape}")
        todo.append((w.variable, value))
    saved = [(v, keras.ops.convert_to_numpy(v.value).copy()) for v, _ in todo]
    try:
        for var, value in todo:
            var.assign(keras.ops.cast(value, var.dtype))
    except BaseException:
        for var, old in saved:
            var.assign(old)
        raise

"""Analytic second-moment propagation through a :class:`~.graph.ModelGraph`, data-free.

Walks the dataflow nodes in execution order carrying, per tensor, the second moment ``q = E[x^2]`` and mean
``mu`` of its entries for a unit-variance input: weight layers scale ``q`` by ``fan_in * E[w^2]`` (plus the
bias), activations map it through the catalog's Gaussian moment map, additions add, concatenations average,
normalization layers reset it to their scale, shape-only ops keep it, average pooling keeps the mean and half
of the rest, softmax-weighted averages keep the value's. A ``LayerRule`` decides each weight layer:
:func:`evaluate` reads the planned draws (the report's predicted variances for any scheme); the "auto" scheme
chooses the scales while walking."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from ..catalog.activations import Activation
from ..catalog.gains import moments
from ._layer_types import frozen_norm_gain
from ._registry import Kind
from .graph import LayerInfo, ModelGraph

POOL_KEEP = 0.5  # share of a zero-mean signal's variance an average pool keeps (spatial correlation unknown)


@dataclass
class Signal:
    q: float = 1.0  # second moment of the entries
    mu: float = 0.0  # mean of the entries


@lru_cache(maxsize=4096)
def _moments_cached(spec: str, q: float) -> tuple[float, float, float]:
    m = moments(spec, q)
    return m.mean, m.second, m.slope2


def act_moments(act: Activation | None, spec: str | None, q: float) -> tuple[float, float, float]:
    """(mean, second moment, E[phi'^2]) of ``phi(z)``, ``z ~ N(0, q)``."""
    q = min(max(q, 1e-12), 1e6)
    if spec is not None:
        try:
            return _moments_cached(spec, round(q, 6))
        except ValueError:
            pass
    if act is None:
        return 0.0, q, 1.0
    m = moments(act, q)
    return m.mean, m.second, m.slope2


LayerRule = Callable[[LayerInfo, list[Signal], int], Signal]


def propagate(
    graph: ModelGraph,
    layer_rule: LayerRule,
    block_rule: Callable[[str, Signal], Signal] | None = None,
    out: dict[int, Signal] | None = None,
) -> dict[int, Signal]:
    """Signal at every node (filled into ``out`` as the walk goes, so rules can look back); ``layer_rule(info,
    inputs, node)`` gives a weight layer's output signal, ``block_rule(name, input)`` a composite's."""
    nodes = graph.nodes
    by_node = {info.node: info for info in graph.layers if info.node is not None}
    first_call = {info.name: info.node for info in graph.layers}
    out = {} if out is None else out
    for i, n in enumerate(nodes):
        ins = [out[j] for j in n.inputs if j in out]
        x = ins[0] if ins else Signal()
        if n.op == "input":
            out[i] = Signal(1.0, 0.0)
        elif n.op in ("const", "param"):
            out[i] = Signal(0.0, 0.0)
        elif n.op == "layer":
            info = by_node.get(i)
            if info is None:  # a repeated call of a shared layer: same scale as its first call
                name = n.name
                info = next((li for li in graph.layers if li.name == name), None)
                if info is None or first_call.get(name) is None:
                    out[i] = x
                    continue
            out[i] = layer_rule(info, ins or [Signal()], i)
        elif n.op == "act":
            mean, second, _ = act_moments(n.act, n.name, x.q - x.mu**2)
            out[i] = Signal(second, mean)
        elif n.op == "add":
            q = sum(s.q for s in ins)
            mu = sum(s.mu for s in ins)
            out[i] = Signal(q + 2 * sum(a.mu * b.mu for k, a in enumerate(ins) for b in ins[k + 1 :]), mu)
        elif n.op == "mul":
            out[i] = Signal(math.prod(s.q for s in ins), math.prod(s.mu for s in ins))
        elif n.op == "cat":
            out[i] = Signal(
                sum(s.q for s in ins) / max(len(ins), 1), sum(s.mu for s in ins) / max(len(ins), 1)
            )
        elif n.op == "softmax":
            out[i] = Signal(x.q, x.mu)
            out[i].q = -1.0  # marker: a probability vector (weights, not a signal)
        elif n.op == "block":
            out[i] = block_rule(n.name, x) if block_rule is not None else Signal(1.0, 0.0)
        elif n.op == "other" and len(ins) >= 2:
            values = [s for s in ins if s.q >= 0]
            out[i] = values[-1] if len(values) < len(ins) else Signal(max(s.q for s in ins), 0.0)
        elif n.op == "pool":
            out[i] = Signal(x.mu**2 + max(x.q - x.mu**2, 0.0) * POOL_KEEP, x.mu)
        else:  # pass, other, output
            out[i] = Signal(abs(x.q), x.mu)
    return out


def output_signal(graph: ModelGraph, signals: dict[int, Signal]) -> Signal | None:
    outs = [i for i, n in enumerate(graph.nodes) if n.op == "output"]
    if not outs or outs[-1] not in signals:
        return None
    node = graph.nodes[outs[-1]]
    if node.inputs and node.inputs[0] in signals:
        return signals[node.inputs[0]]
    return None


def layer_moment(info: LayerInfo, ins: list[Signal], m2: Callable[[str], float]) -> float:
    """Output second moment of a layer for its input signals, given ``E[p^2]`` of each of its parameters by
    local name (the layer's registry type says how it computes)."""
    t, x = info.layer_type, ins[0]
    if info.kind.weight:
        q_in = math.prod(s.q for s in ins[: t.inputs]) if len(ins) >= t.inputs else x.q
        fans = info.weight_fans
        return t.second_moment(q_in, m2(info.weight_local), m2(info.bias_local), fans.fan_in if fans else 1.0)
    if info.kind.embedding:
        return m2("weight")
    if info.kind is Kind.NORM:
        if not t.normalizes:  # a frozen norm: a fixed affine map of its input
            return frozen_norm_gain(info.module) * max(x.q - x.mu**2, 0.0)
        return (m2("weight") if "weight" in info.params else 1.0) + m2("bias")
    if info.kind is Kind.ATTENTION:
        e = float(getattr(info.module, "embed_dim", 1))
        w_in = m2("in_proj_weight") or m2("v_proj_weight")
        return e * m2("out_proj.weight") * e * w_in * x.q
    if info.kind is Kind.RNN:
        return 0.1
    return x.q


def evaluate(
    graph: ModelGraph,
    rows: dict[str, tuple[float | None, float | None]],
    current: Callable[[str], float | None],
) -> tuple[dict[str, float], float | None]:
    """Predicted output second moment of every layer, and of the model output, for planned entries
    ``rows[param] = (mean, std)`` (``current(param)`` gives ``E[w^2]`` of parameters the plan keeps)."""

    def m2(info: LayerInfo, local: str) -> float:
        q = info.params.get(local)
        if q is None:
            return 0.0
        mean, std = rows.get(q, (None, None))
        if std is None:
            value = current(q)
            return 0.0 if value is None else value
        return std * std + (mean or 0.0) ** 2

    var: dict[str, float] = {}

    def rule(info: LayerInfo, ins: list[Signal], node: int) -> Signal:
        q = layer_moment(info, ins, lambda local: m2(info, local))
        var[info.name] = q
        return Signal(q, 0.0)

    signals = propagate(graph, rule, lambda name, x: Signal(max(1.0, x.q), 0.0))
    out = output_signal(graph, signals)
    return var, (out.q if out is not None else None)

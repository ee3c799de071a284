"""Sums and differences of signals that share a part: ``x + a * (f(x) - x)`` (EfficientViM's blocks,
any interpolation between a branch and its input).

The walker takes the operands of a sum as independent. Where they were computed from the same tensor they
are not: ``f(x) - x`` read as its larger operand and ``x + a * (...)`` as ``x`` plus that made EfficientViM's
stream 2.5x its measured size per step. So each signal that is a linear combination of earlier ones carries
them as ``parts``: ``((node, coefficient), ...)`` over *atoms*, the nodes whose signals are not such
combinations (a layer's output, an activation, an input). A weight layer's zero-mean random weights make
its output uncorrelated with its input, and atoms are taken as uncorrelated beyond their means, so

    E[(sum_j a_j s_j)^2] = sum_j a_j^2 Var(s_j) + (sum_j a_j E[s_j])^2.

Pass-through ops carry parts unchanged, a product with a constant scales them, sums and differences add
them. A sum whose operands share no atom keeps the walker's own moments (the same numbers); a difference,
or a sum whose operands share an atom, takes them from its parts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol

from .graph import Node

Parts = tuple[tuple[int, float], ...]

SUBS = frozenset({"sub", "__sub__", "__isub__", "sub_", "subtract"})
RSUBS = frozenset({"__rsub__", "rsub"})  # b - a, the operands recorded as (a, b)
MAX_PARTS = 48  # beyond this a combination becomes its own atom (a deep stream shares little with any one)


class _Moments(Protocol):
    q: float
    mu: float
    c: float
    parts: Parts


def parts_of(j: int, s: _Moments) -> Parts:
    """The atoms node ``j``'s signal is a combination of: its own node when it is one."""
    return s.parts or ((j, 1.0),)


def linear_terms(n: Node, nodes: Sequence[Node],
                 out: Mapping[int, _Moments]) -> list[tuple[int, float]] | None:
    """``[(input node, coefficient)]`` when node ``n`` is a linear map of its inputs' signals, else None."""
    ins = [j for j in n.inputs if j in out]
    if len(ins) != len(n.inputs) or any(out[j].q < 0 for j in ins):  # attention weights: not signals
        return None
    if n.op == "pass" and len(ins) == 1:
        return [(ins[0], 1.0)]
    if n.op == "add" and len(ins) >= 2:
        return [(j, 1.0) for j in ins]
    if n.op == "other" and len(ins) == 2 and n.name in SUBS | RSUBS:
        sign = -1.0 if n.name in RSUBS else 1.0
        return [(ins[0], sign), (ins[1], -sign)]
    if n.op == "mul" and len(ins) == 2:
        const = [k for k, j in enumerate(ins) if nodes[j].value is not None]
        if len(const) == 1:  # a signal times a tensor of constants: scaled by its root mean square
            g = out[ins[const[0]]]
            return [(ins[1 - const[0]], math.copysign(math.sqrt(max(g.q, 0.0)), g.mu))]
    return None


def combine(terms: list[tuple[int, float]], out: Mapping[int, _Moments]) -> tuple[Parts, bool]:
    """The parts of ``sum_k a_k * input_k``, and whether two inputs share an atom."""
    merged: dict[int, float] = {}
    shared = False
    for j, a in terms:
        own = parts_of(j, out[j])
        shared = shared or any(atom in merged for atom, _ in own)
        for atom, coef in own:
            merged[atom] = merged.get(atom, 0.0) + a * coef
    return tuple(merged.items()), shared


def part_moments(parts: Parts, out: Mapping[int, _Moments]) -> tuple[float, float, float]:
    """(second moment, mean, the part positions share) of a combination of uncorrelated atoms."""
    var = sum(a * a * max(out[j].q - out[j].mu ** 2, 0.0) for j, a in parts)
    mean = sum(a * out[j].mu for j, a in parts)
    shared = sum(a * a * max(out[j].c - out[j].mu ** 2, 0.0) for j, a in parts)
    return var + mean * mean, mean, min(shared, var) + mean * mean

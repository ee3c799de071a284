"""Analytic second-moment propagation through a :class:`~.graph.ModelGraph`, data-free.

Walks the dataflow nodes in execution order carrying, per tensor, the second moment ``q = E[x^2]`` and mean
``mu`` of its entries for a unit-variance input: weight layers scale ``q`` by ``fan_in * E[w^2]`` (plus the
bias), activations map it through the catalog's Gaussian moment map, additions add, concatenations average
(weighted by the entries each part brings), normalization layers reset it to their scale (less when its
input is near their eps), shape-only ops keep it, average pooling keeps the mean and half
of the rest, a max pool takes the max of its window's entries, a softmax-weighted average keeps ``E[sum p^2]``
of what differs between tokens and all of what they share (each signal carries that shared part ``c``),
``q @ k^T`` sums the head size's products, and tensors computed from constants and parameters only carry the
moments discovery read from them (:mod:`._sizes`). A ``LayerRule`` decides each weight layer:
:func:`evaluate` reads the planned draws (the report's predicted variances for any scheme); the "auto" scheme
chooses the scales while walking."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import Any, NamedTuple, Protocol

import numpy as np
from scipy import special
from torch import nn

from ..catalog.activations import Activation, activation
from ..catalog.gains import moments
from ._layer_types import (
    RESPONSE_NORM,
    centres_channels,
    centres_features,
    centres_one_entry,
    embedding_gain,
    eps_kept,
    frozen_norm_gain,
    offset_weight,
    per_position,
)
from ._linear import MAX_PARTS, Parts, combine, linear_terms, part_moments
from ._registry import Kind
from ._signs import node_sign, signed_moments
from ._sizes import CROPS, EINSUMS, FOLDS, L2_NORMALIZES, MATMULS, MAX_REDUCES, PADS, SDPAS, SUMS, pool_window
from .graph import GraphError, LayerInfo, ModelGraph, Node
from .layers import DIV_NAMES, TRANSPARENT_NAMES, activation_spec

# values whose columns share at least 5% and 4x more than their rows: the rows averaged are no positions
COLUMNS_SHARED, ROWS_NOT_POSITIONS = 0.05, 4.0
POOL_KEEP = 0.5  # share of a zero-mean signal's variance an average pool keeps, when no example showed it


@dataclass
class Signal:
    q: float = 1.0  # second moment of the entries
    mu: float = 0.0  # mean of the entries
    share: float = 1.0  # softmax probabilities (q = -1): E[sum_j p_j^2], the variance an average keeps
    inv_n: float = 1.0  # softmax probabilities: E[1/n], the share two rows' averages have in common
    c: float = 0.0  # the part of q every token (position) of a sample shares: a mean, a bias, an average
    total: float = 1.0  # softmax probabilities: each row's sum (share and inv_n scale with its square)
    live: float = 1.0  # the share of positions that carry it, the rest a zero pad's (:func:`_live`)
    dead: float = 0.0  # the second moment at those padded positions (an attention's padded rows: not zero)
    parts: Parts = ()  # the earlier signals it is a linear combination of (:mod:`._linear`); () itself
    k: float = 0.0  # the part of q beyond the mean that is the same in every sample (:func:`_constant`)
    sign: int = 0  # +1: every entry >= 0, -1: every entry <= 0, 0: either (:mod:`._signs`)


@lru_cache(maxsize=4096)
def _moments_cached(spec: str, q: float) -> tuple[float, float, float]:
    m = moments(spec, q)
    return m.mean, m.second, m.slope2


def act_moments(act: Activation | None, spec: str | None, q: float) -> tuple[float, float, float]:
    """(mean, second moment, E[phi'^2]) of ``phi(z)``, ``z ~ N(0, q)``: not finite where ``phi`` overflows
    on the quadrature's nodes (an ``exp`` of a signal predicted past 1e6), which the callers check, so
    numpy's overflow warnings stay inside (RWKV's printed four)."""
    q = min(max(q, 1e-12), 1e6)
    with np.errstate(over="ignore", invalid="ignore"):
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


class _Rules(NamedTuple):
    layer: LayerRule
    block: Callable[[str, Signal], Signal] | None
    param: Callable[[str], Signal | None] | None
    by_node: dict[int, LayerInfo]  # the layer each layer node is the first call of
    by_name: dict[str, LayerInfo]  # a shared layer's later calls find its first by name


def propagate(
    graph: ModelGraph,
    layer_rule: LayerRule,
    block_rule: Callable[[str, Signal], Signal] | None = None,
    out: dict[int, Signal] | None = None,
    param_rule: Callable[[str], Signal | None] | None = None,
) -> dict[int, Signal]:
    """Signal at every node (filled into ``out`` as the walk goes, so rules can look back); ``layer_rule(info,
    inputs, node)`` gives a weight layer's output signal, ``block_rule(name, input)`` a composite's,
    ``param_rule(name)`` that of a parameter read as data (None, or no rule: zero)."""
    rules = _Rules(layer_rule, block_rule, param_rule,
                   {info.node: info for info in graph.layers if info.node is not None},
                   {info.name: info for info in reversed(graph.layers)})
    out = {} if out is None else out
    for i, n in enumerate(graph.nodes):
        info = _layer_of(graph, rules, i, n)
        y = _with_parts(graph, n, out, _node_signal(graph, rules, i, n, out, info))
        if n.measured is not None and y.q >= 0.0:
            y = measured(y, *n.measured)
        ins = [out[j] for j in n.inputs if j in out]
        live = _live(n, ins, info)
        dead = _dead(n, ins, y, info) if live < 1.0 else 0.0
        sign = node_sign(graph, n, [out[j].sign if j in out else 0 for j in n.inputs])
        out[i] = y if (y.live, y.dead, y.sign) == (live, dead, sign) else replace(y, live=live, dead=dead,
                                                                                  sign=sign)
    return out


def measured(y: Signal, q: float, mu: float) -> Signal:
    """``y`` with the second moment and mean the example showed for a value computed from the model's input
    and constants alone (:class:`._sizes.InputDerived`); what its positions and samples share scaled with it,
    and a signal of its own (no parts): nothing a plan draws changes it."""
    r = q / y.q if y.q > 0.0 else 0.0  # (propagated as zero: a quotient by a constant it did not read)
    return replace(y, q=q, mu=mu, c=min(max(y.c * r, mu * mu), q), k=min(y.k * r, q), parts=())


SHIFTS = PADS | {"roll"}
_PAD_KINDS = ("Zero", "Constant", "Reflection", "Replication", "Circular")
PAD_MODULES = tuple(getattr(nn, f"{kind}Pad{d}d") for kind in _PAD_KINDS for d in (1, 2, 3))


def _with_parts(graph: ModelGraph, n: Node, out: dict[int, Signal], y: Signal) -> Signal:
    """``y`` with the parts it combines linearly (:mod:`._linear`); a difference, or a sum of operands that
    share a part, takes its moments from them. A shift (a pad that crops the other end, a roll) moves the
    entries to other positions: a part of its own, not the same entries (RWKV mixes each token with the one
    before, ``x m + shift(x) (1 - m)``: read as one part, its key layers were planned for twice their
    input)."""
    if n.op == "pass" and (n.name in SHIFTS or isinstance(_module_of(graph, n), PAD_MODULES)):
        return y
    terms = linear_terms(n, graph.nodes, out) if y.q >= 0 else None
    if terms is None:
        return y
    x = out[terms[0][0]]
    if n.op == "pass" and (y.q != x.q or y.mu != x.mu):  # a dropout's rescale, a max pool: no linear map
        return y
    parts, shared = combine(terms, out)
    if len(parts) > MAX_PARTS:
        return y
    if shared or n.op == "other":
        q, mu, c = part_moments(parts, out)
        return replace(y, q=q, mu=mu, c=c, parts=parts)
    return replace(y, parts=parts)


def _cat_part(graph: ModelGraph, n: Node, out: dict[int, Signal]) -> Signal | None:
    """The signal of the part of a concatenation a slice takes back (XCiT's and CaiT's class token, cut off
    the tokens it was joined to; the column of ones EfficientViT pads its values with, through the products
    that sum it into each query's total weight): the part whose share of the entries and start the slice's
    are; None for any other slice. Read as the whole concatenation, XCiT's class MLP was planned for the
    patch tokens' second moment, 6x its input's."""
    if n.name not in CROPS or len(n.size) != 2 or len(n.inputs) != 1:
        return None
    share, start = n.size
    before = 0.0
    for part_share, signal in _parts_of(graph, n.inputs[0], out) or ():
        if abs(before - start) < 1e-9 and abs(part_share - share) < 1e-9:
            return signal
        before += part_share
    return None


CASTS = frozenset({"float", "to", "contiguous", "type_as", "clone", "double", "half", "bfloat16"})


def _parts_of(graph: ModelGraph, j: int, out: dict[int, Signal], columns: bool = False
              ) -> list[tuple[float, Signal]] | None:
    """``(share of the entries, signal)`` of the parts node ``j`` joins, in order: a concatenation's; a
    constant pad's, of the last dim (:func:`._sizes._constant_pad`), through casts and the matrix products
    that keep its columns apart (``a @ [b1, b2] = [a @ b1, a @ b2]``); None for anything else, and for a
    concatenation when ``columns`` asks for parts of the last dim (which dim it joins is not recorded)."""
    n = graph.nodes[j]
    if n.op == "cat" and not columns and len(n.size) == len(n.inputs) and all(i in out for i in n.inputs):
        return [(entries / sum(n.size), out[i]) for i, entries in zip(n.inputs, n.size, strict=True)]
    if n.op == "pass" and n.name in PADS and len(n.size) == 3 and n.inputs and n.inputs[0] in out:
        f, value, left = n.size
        const = Signal(value * value, value, c=value * value)
        parts = [(left, const), (f, out[n.inputs[0]]), (1.0 - f - left, const)]
        return [(share, signal) for share, signal in parts if share > 1e-12]
    if n.op == "pass" and len(n.inputs) == 1 and (
            n.name in CASTS or isinstance(_module_of(graph, n), nn.Identity | nn.modules.dropout._DropoutNd)):
        return _parts_of(graph, n.inputs[0], out, columns)
    if n.op == "add" and len(n.inputs) == 2 and all(i in out for i in n.inputs):
        return _added_parts(graph, n, out, columns)
    matmul = n.op == "other" and n.name in MATMULS and n.name != "__rmatmul__"
    if matmul and len(n.inputs) == 2 and n.inputs[0] in out:
        right = _parts_of(graph, n.inputs[1], out, columns=True)
        if right is not None:
            return [(share, _product(n.name, n.size, [out[n.inputs[0]], p])) for share, p in right]
    return None


def _added_parts(graph: ModelGraph, n: Node, out: dict[int, Signal], columns: bool
                 ) -> list[tuple[float, Signal]] | None:
    """The parts of a sum one of whose two operands joins parts and the other not: each part plus the other
    operand, which adds alike at every position (a residual branch, a broadcast table). Read as the whole
    sequence, PiT's class token -- its parameter plus the blocks' branches, cut off the patch tokens after
    them -- was planned for the patches' second moment: its pooling fc measured 0.17x."""
    for k in (0, 1):
        parts = _parts_of(graph, n.inputs[k], out, columns)
        if parts is not None and _parts_of(graph, n.inputs[1 - k], out, columns) is None:
            other = out[n.inputs[1 - k]]
            return [(share, _combine("add", [p, other])) for share, p in parts]
    return None


def _layer_of(graph: ModelGraph, rules: _Rules, i: int, n: Node) -> LayerInfo | None:
    """The layer a ``layer`` node calls: its first call, or a repeated call of a shared layer (same scale as
    its first call; None when that one has no node)."""
    if n.op != "layer":
        return None
    info = rules.by_node.get(i)
    if info is None:
        info = rules.by_name.get(n.name)
        if info is None or info.node is None:
            return None
    return info


def _node_signal(graph: ModelGraph, rules: _Rules, i: int, n: Node, out: dict[int, Signal],
                 info: LayerInfo | None) -> Signal:
    ins = [out[j] for j in n.inputs if j in out]
    x = ins[0] if ins else Signal()
    if n.op == "layer":  # (the layer rule keeps what positions share itself)
        if info is None:
            return x
        return _layer(info, rules.layer(info, [entries(s) for s in ins] or [Signal()], i), ins, x)
    if n.value is None and n.op == "pass" and x.q >= 0 and (kept := _dropout_kept(graph, n)) < 1.0:
        return Signal(x.q / kept, x.mu, c=x.c)  # (its mask adds nothing the positions share)
    if n.value is not None and n.op not in ("input", "param", "output"):
        q, mu, *shared = n.value  # computed from constants and parameters: read in discovery
        y = Signal(q, mu, c=shared[0] if shared else 0.0)
    elif n.op == "input":
        y = Signal(1.0, 0.0)
    elif n.op == "param" and rules.param is not None:
        y = rules.param(n.name) or Signal(0.0, 0.0)
    elif n.op in ("const", "param"):
        y = Signal(0.0, 0.0)
    elif n.op == "act":
        y = _activation(n.act, n.name, x)
    elif n.op == "mul" and n.name in DIV_NAMES and (r := _divided(ins) or _quotient(ins, n.size)) is not None:
        return r  # what a quotient's positions share is its own (not the product :func:`_common` takes)
    elif n.op in ("add", "mul", "cat"):
        y = _arithmetic(n, ins)
    elif n.op == "softmax":
        y = _softmax(n.size, x)
    elif n.op == "block":
        y = rules.block(n.name, x) if rules.block is not None else Signal(1.0, 0.0)
    elif n.op == "other" and len(ins) == 1 and (n.name in GLUS or isinstance(_module_of(graph, n), nn.GLU)):
        y = _glu(x)
    elif n.op == "other" and (r := _weighted_sum(graph, n, out) or _named(n, ins)) is not None:
        y = r
    elif n.op == "other" and len(ins) >= 2:
        y = _product(n.name, n.size, ins)
    elif n.op == "pool":
        y = _avg_pool(n.size, x)
    elif n.op == "pass" and (part := _cat_part(graph, n, out)) is not None:
        y = part
    elif n.op == "pass" and n.name in PADS and len(n.size) == 3 and x.q >= 0:  # joined to a constant
        parts = _parts_of(graph, i, out) or [(1.0, x)]
        y = _combine("cat", [p for _, p in parts], tuple(share for share, _ in parts))
    elif n.op == "pass" and x.q >= 0 and (k := _max_pool_window(graph, n)) > 1:
        y = _max_pool(graph.nodes, out, n.inputs[0], k)
    elif n.op == "other" and n.name in MAX_REDUCES and n.size and x.q >= 0 and n.inputs:
        y = _max_pool(graph.nodes, out, n.inputs[0], round(n.size[0]))
    elif n.op == "output" or x.q >= 0:
        y = Signal(abs(x.q), x.mu)
    else:  # pass, other: attention probabilities stay probabilities (dropout, a cast, a head mask)
        y = x
    if n.op in _COMMON_OPS:
        y = _common(n.op, ins, x, y, n.size)
    elif y.q >= 0.0 and y.c < y.mu**2:  # a mean is the same at every position (a max over features)
        y = replace(y, c=min(y.mu**2, y.q))
    if n.value is not None and y.q >= 0.0 and n.op not in ("input", "param", "output"):
        # computed from constants alone: all of it is the same in every sample (a fixed offset: a product
        # with it, summed over the tokens, adds up coherently)
        y = replace(y, k=max(y.q - y.mu**2, 0.0))
    return y


def _live(n: Node, ins: list[Signal], info: LayerInfo | None) -> float:
    """The share of positions that carry the signal; the rest were added by a zero pad (window attention
    on a map its windows do not tile) and stay zero, or a bias, through per-position maps until a slice
    crops them off again. The walker's ``q`` is that of the carrying positions, which the plan is for; a
    hook on a layer in between averages over the padding too (:func:`padded_output`)."""
    if not ins or n.op in ("pool", "input", "const", "param"):
        return 1.0
    x = ins[0]
    if n.op == "pass" and n.name in PADS and len(n.size) == 1:
        return x.live * n.size[0]
    if n.op == "pass" and n.name in CROPS and n.size and x.live < 1.0:  # the slice that takes the pad off
        return 1.0 if abs(n.size[0] - x.live) <= 0.02 * x.live else x.live
    if n.op == "layer":
        return x.live if info is not None and per_position(info.kind, info.module) else 1.0
    if n.op == "add":
        return max(s.live for s in ins)
    if n.op == "cat":
        return sum(a * s.live for a, s in zip(_cat_weights(ins, n.size), ins, strict=True))
    return min(s.live for s in ins)


def _dead(n: Node, ins: list[Signal], y: Signal, info: LayerInfo | None) -> float:
    """The second moment at the padded positions (:func:`_live`): zero from the pad until an attention's
    padded rows average the values (:func:`_averaged` sets it), then carried through per-position maps."""
    if y.dead > 0.0 or not ins or (n.op == "pass" and n.name in PADS):
        return y.dead
    x = ins[0]
    if n.op == "layer" and info is not None:
        return _dead_through(info, x, y.q)
    if n.op == "act" and x.dead > 0.0:
        return _activation(n.act, n.name, Signal(x.dead)).q
    if n.op == "add":
        return sum(s.dead for s in ins)
    return x.dead if len(ins) == 1 else 0.0


def _dead_through(info: LayerInfo, x: Signal, q: float) -> float:
    """A per-position layer's output at the padded positions, for its output ``q`` at the carrying ones:
    a norm makes a nonzero input unit as it does the rest; a weight layer scales it by the same gain
    (biases planned zero)."""
    if x.dead <= 0.0 or x.q <= 0.0:
        return 0.0
    return q if info.kind is Kind.NORM else x.dead * q / x.q


def padded_output(info: LayerInfo, ins: list[Signal], q: float) -> float:
    """What a hook on a layer sees of its output ``q`` at the carrying positions when the layer maps each
    position on its own and a zero pad added the others: their share of ``q``, and the rest of what the
    padded positions hold (zero, or an attention's average there, :func:`_dead`); else ``q``."""
    x = ins[0] if ins else Signal()
    if x.live >= 1.0 or not per_position(info.kind, info.module):
        return q
    return x.live * q + (1.0 - x.live) * _dead_through(info, x, q)


def _arithmetic(n: Node, ins: list[Signal]) -> Signal:
    """A sum, product, quotient or concatenation: of attention weights (:func:`_weights_op`), else of
    signals (:func:`_combine`)."""
    if n.op in ("add", "mul") and (w := _weights_op(n.op, n.name, ins)) is not None:
        return w
    return _combine(n.op, ins, n.size)


GLUS = frozenset({"glu"})
_SIGMOID = activation("sigmoid")


def _glu(x: Signal) -> Signal:
    """``a * sigmoid(b)``, ``a`` and ``b`` the two halves of ``x``'s channels (independent: different output
    channels of the layer before): ``E[a^2] E[sigmoid(b)^2]``. Passed through whole, a conformer's depthwise
    conv after its GLU measured 0.28x its plan."""
    gate = _activation(_SIGMOID, "sigmoid", Signal(x.q, x.mu))
    return Signal(x.q * gate.q, x.mu * gate.mu, c=max(x.c, x.mu**2) * gate.mu**2)


def _named(n: Node, ins: list[Signal]) -> Signal | None:
    """An ``other`` op with a rule of its own: a fill shaped like its input, a sum, an L2 normalization, a
    fold (None: none, or discovery read no size for it)."""
    x = ins[0] if ins else Signal()
    if n.name in _FILLS:
        return _FILLS[n.name]
    if n.name in SELECTS and len(ins) >= 2:  # (a parameter source is no input: then it is not known here)
        return ins[SELECTS[n.name]]
    if n.name in SUMS and len(n.size) in (2, 3) and len(ins) == 1:
        return _summed(n.size, x)
    if n.name in L2_NORMALIZES and n.size and len(ins) == 1 and x.q > 0:
        s2 = 1.0 / (n.size[0] * x.q)  # unit-norm vectors of n entries: E[x^2] = 1/n (XCiT's q and k)
        return Signal(x.q * s2, x.mu * math.sqrt(s2), c=x.c * s2, k=x.k * s2)
    if n.name in FOLDS and n.size and ins:
        return _fold(n.size[0], x)
    return None


def _layer(info: LayerInfo, y: Signal, ins: list[Signal], x: Signal) -> Signal:
    """A layer's output ``y`` with the part its positions share: the input's share of it, except that a norm
    with per-channel batch statistics takes out what every position of every sample shares (a ReLU's mean
    through a conv: kept, ResNets' SE inputs seemed 90% shared), and a padded conv on a small map keeps less
    of it shared (VGG's max pools took their windows as equal)."""
    if info.kind is Kind.ATTENTION and y.c > 0:  # the rule's own: an attention average shares more
        return y
    own = min(y.c, y.q) if info.kind.weight else 0.0  # the rule's: its bias, at every position alike
    c = own + (y.q - own) * _shared_fraction(info, x) * info.shared_read
    # what is the same in every sample: the bias, and the input's (its mean too, unless the filters drop it)
    k_in = x.k + (x.mu**2 if info.kind.weight and info.standardized is None else 0.0)
    k = own + (y.q - own) * min(k_in / x.q, 1.0) * info.shared_read if x.q > 1e-300 else own
    y = Signal(y.q, y.mu, y.share, y.inv_n, min(max(c, y.mu**2), y.q), k=min(k, y.q))
    if centres_channels(info.module):
        y = Signal(y.q, y.mu, y.share, y.inv_n, y.mu**2)
    if info.index_shared is not None:  # an embedding's rows looked up at several positions of a sample
        y = Signal(y.q, y.mu, y.share, y.inv_n, y.mu**2 + max(y.q - y.mu**2, 0.0) * info.index_shared)
    return y


def _shared_fraction(info: LayerInfo, x: Signal) -> float:
    """The share of a linear layer's input-driven output that its positions share: the input's, except that
    a weight-standardized conv's zero-mean filters, and a LayerNorm's centring of each position's features,
    drop the mean every channel has alike (what each channel has of its own, a bias before it, stays: NF-Nets'
    SE inputs are 75% per-channel constants). Kept through its LayerNorm, the mean of NesT's max pool (84% of
    its output) was read as values every token shares, which attention passes whole: proj measured 0.3x."""
    mu2 = x.mu**2 if info.standardized is not None or centres_features(info.module) else 0.0
    if x.q - mu2 <= 1e-300 or x.c <= mu2:
        return 0.0
    return min((x.c - mu2) / (x.q - mu2), 1.0)


def _avg_pool(size: tuple[float, ...], x: Signal) -> Signal:
    """An average keeps the mean whole and a share of the rest: the share measured on the example
    (:func:`._sizes.pool_keep`: across samples, so what the positions of a sample share is in it); if the
    example could not show it, what the positions share whole plus 1/(entries averaged) of the rest, or
    without a size :data:`POOL_KEEP` of it."""
    c = max(x.c, x.mu**2)
    if len(size) == 2:
        return Signal(c + max(x.q - c, 0.0) * size[0], x.mu, c=c, k=min(x.k, x.q))
    if size:  # a share of the variance across samples: what is the same in every sample is kept whole
        k = min(x.k, max(x.q - x.mu**2, 0.0))
        q = x.mu**2 + k + max(x.q - x.mu**2 - k, 0.0) * size[0]
        return Signal(q, x.mu, c=min(c, q), k=k)
    return Signal(c + max(x.q - c, 0.0) * POOL_KEEP, x.mu, c=c, k=min(x.k, x.q))


def _combine(op: str, ins: list[Signal], size: tuple[float, ...] = ()) -> Signal:
    """A sum (cross terms of the means), a product, or a concatenation of signals: their average weighted
    by the entries each contributes (``size``, read on the example; equal weights without it). Equal
    weights took CrossViT's one fused class token as half of its 197 tokens, and its attention's values
    as shared by all of them: proj measured 0.06x its plan."""
    if op == "add":
        cross = sum(a.mu * b.mu for k, a in enumerate(ins) for b in ins[k + 1 :])
        return Signal(sum(s.q for s in ins) + 2 * cross, sum(s.mu for s in ins))
    if op == "mul":
        return Signal(math.prod(s.q for s in ins), math.prod(s.mu for s in ins))
    w = _cat_weights(ins, size)
    return Signal(sum(a * s.q for a, s in zip(w, ins, strict=True)),
                  sum(a * s.mu for a, s in zip(w, ins, strict=True)))


def _weighted_sum(graph: ModelGraph, n: Node, out: dict[int, Signal]) -> Signal | None:
    """``sum_j p_j v_j`` over the keys a softmax spread ``p`` over: an attention average written as a product
    and a sum (MobileViT-v2's linear attention pools its keys so). Read as a sum of products by the share
    the example showed, under the constructor's near-uniform weights, HF MobileViT-v2's output projection
    measured 3.5-4.9x its plan. None for any other sum."""
    product = graph.nodes[n.inputs[0]] if n.name in SUMS and len(n.inputs) == 1 and n.size else None
    if product is None or product.op != "mul" or len(product.inputs) != 2:
        return None
    signals = [out.get(j) for j in product.inputs]
    weights = [j for j, s in zip(product.inputs, signals, strict=True) if s is not None and s.q < 0]
    values = [s for s in signals if s is not None and s.q >= 0]
    if len(weights) != 1 or len(values) != 1:
        return None
    source = graph.nodes[weights[0]]
    while source.op == "pass" and len(source.inputs) == 1:  # dropout, a cast, a view
        source = graph.nodes[source.inputs[0]]
    keys = source.size if source.op == "softmax" else ()
    if not keys or any(abs(k - n.size[0]) > 0.5 for k in keys):
        return None
    return _averaged(values[0], out[weights[0]])


def _summed(size: tuple[float, ...], x: Signal) -> Signal:
    """A sum of ``n`` entries: ``n`` times their average (:func:`_avg_pool`, by the share of the variance
    across samples its mean keeps on the example, what every sample has kept whole: SwiftFormer's sum over
    its tokens), or without that share independent beyond their mean; attention weights summed over each row
    give the rows' total, the same in every row (the divisor of ConViT's ``attn /= attn.sum(-1)``); weights
    summed another way are no weights (their entries' signal)."""
    n, last = size[:2]
    if x.q < 0 and last:
        return Signal(x.total**2, x.total, c=x.total**2)
    x = entries(x)
    if len(size) == 3:  # the share its mean keeps, read on the example (:func:`._sizes._summed`)
        m = _avg_pool(size[2:], x)
        return Signal(n * n * m.q, n * m.mu, c=n * n * m.c, k=n * n * m.k)
    q = n * max(x.q - x.mu**2, 0.0) + (n * x.mu) ** 2
    return Signal(q, n * x.mu, c=min(n * max(x.c - x.mu**2, 0.0) + (n * x.mu) ** 2, q))


def _divided(ins: list[Signal]) -> Signal | None:
    """``a / b`` for a divisor every position shares (a scale computed in the forward: DeBERTa's
    ``k / sqrt(head_size)``, read as a product its logits were 256x too large); None otherwise."""
    if len(ins) != 2 or ins[0].q < 0 or ins[1].q < 0:
        return None
    a, b = ins
    if b.mu == 0.0 or not _shared(b):
        return None
    return Signal(a.q / b.mu**2, a.mu / b.mu, c=a.c / b.mu**2)


def _quotient(ins: list[Signal], size: tuple[float, ...]) -> Signal | None:
    """``a / b`` for a divisor that varies, by the gain read on the example (:func:`._sizes.quotient_gain`):
    ``E[(a/b)^2] = rho q_a / q_b``, the mean its measured share, what the positions share the numerator's
    share; without it (no example, a one-entry divisor) ``rho`` 1, exact for a divisor that is the same
    everywhere. (Read as a product, EfficientViT's linear attention, a weighted average of its values
    divided by each query's total weight, was planned for 4096x its values: proj drew 2e-5x.)"""
    if len(ins) != 2 or not (ins[0].q > 0 and ins[1].q > 0):
        return None
    a, b = ins
    rho, share = size if len(size) == 2 else (1.0, None)
    q = rho * a.q / b.q
    mu = share * math.sqrt(q) if share is not None else a.mu * b.mu / b.q
    return Signal(q, mu, c=min(max(q * min(a.c / a.q, 1.0), mu * mu), q))


def _shared(s: Signal) -> bool:
    """Whether (nearly) all of ``s`` is the same at every position: a scale, a gate, a row's total."""
    return s.c >= 0.999 * s.q


def _fold(n: float, x: Signal) -> Signal:
    """``F.fold`` sums ``n`` patch entries into each output entry: what every position shares adds up
    coherently, the rest as independent terms (VOLO's outlook attention: read as its largest input, the
    output size, proj drew 0.0005x its plan)."""
    c = max(x.c, x.mu**2)
    return Signal(n * max(x.q - c, 0.0) + n * n * c, n * x.mu, c=n * n * c)


def _cat_weights(ins: list[Signal], size: tuple[float, ...]) -> list[float]:
    if len(size) == len(ins) and sum(size) > 0:
        return [n / sum(size) for n in size]
    return [1.0 / max(len(ins), 1)] * len(ins)


# a fixed value shaped like the input (DETR's decoder queries start as zeros_like(the query table))
_FILLS = {"zeros_like": Signal(0.0, 0.0), "new_zeros": Signal(0.0, 0.0), "ones_like": Signal(1.0, 1.0),
          "new_ones": Signal(1.0, 1.0)}
# entries picked from one operand (the source, at this position) by indices (the other): read as the largest
# input, Funnel's position encodings gathered by relative position took the indices' second moment (1025 for
# 0.5), and EnCodec's codebook lookup (a buffer of zeros before training) its codes' (40 for 0)
SELECTS = {"gather": 0, "index_select": 0, "take": 0, "take_along_dim": 0, "embedding": 1}


def entries(s: Signal) -> Signal:
    """A layer reads softmax probabilities (CaiT's talking heads mix them across heads) as the signal of their
    entries: mean E[1/n], second moment E[sum_j p_j^2] / n, all of the mean shared by every token. (Read as
    the marker q = -1, a layer was planned for a 1e-12 input: CaiT's proj_w drew std 3.5e5.)"""
    if s.q >= 0:
        return s
    a = s.total or 1.0  # share and inv_n hold a^2: the entries' mean is a E[1/n]
    return Signal(s.share * s.inv_n / (a * a), s.inv_n / a, c=(s.inv_n / a) ** 2)


def _softmax(keys: tuple[float, ...], x: Signal) -> Signal:
    """Marker q = -1: a probability vector (weights, not a signal), with what an average by it keeps; over
    keys of which a zero pad added some (``x.live < 1``), of the keys that carry values (:func:`_padded`)."""
    s2 = max(x.q - max(x.c, x.mu**2), 0.0)  # what varies across the keys: a shared part cancels
    if x.live < 1.0 and keys:
        return _padded(keys, s2, x.live)
    inv_n = sum(1.0 / max(k, 1.0) for k in keys) / len(keys) if keys else 1.0
    return Signal(-1.0, 0.0, attention_share(keys, s2), inv_n)


def _padded(keys: tuple[float, ...], s2: float, live: float) -> Signal:
    """Softmax weights over ``n`` keys of which the share ``live`` have logits ``N(0, s2)`` and the rest,
    a zero pad's, logit 0 and value 0. A carrying row keeps ``E[sum_live p^2]`` of what varies across the
    values and ``(E[sum_live p])^2`` (the row sum ``total``) of what they share; a padded row (a zero query)
    averages them all alike, ``n_live / n^2`` and ``live^2`` (``dead``: :func:`_averaged`). Measured on
    SAM-B's first windowed block (16 of 196 keys carry): ``E[sum_live p^2]`` 0.00255, predicted 0.0028."""
    pairs = [_share(int(n), round(min(s2, 16.0), 2), max(1, round(n * live))) for n in keys]
    share, total = (sum(v) / len(pairs) for v in zip(*pairs, strict=True))
    n_live = sum(max(1.0, round(k * live)) for k in keys) / len(keys)
    per_dead = sum(max(1.0, round(k * live)) / max(k, 1.0) ** 2 for k in keys) / len(keys)
    return Signal(-1.0, 0.0, share, total * total / n_live, total=total, live=live, dead=per_dead)


_COMMON_OPS = frozenset({"layer", "act", "add", "mul", "cat", "block", "pass", "output"})


def _common(op: str, ins: list[Signal], x: Signal, y: Signal, size: tuple[float, ...] = ()) -> Signal:
    """``y`` with the part of its second moment that all tokens of a sample share (``c``): a linear map or
    a norm keeps the input's share of it, an activation also makes its mean shared, a sum adds the shared
    parts, a product multiplies them, a concatenation averages them as it averages ``q``."""
    if y.q < 0:
        return y
    if op in ("add", "mul", "cat"):
        cs = [max(s.c, s.mu**2) for s in ins if s.q >= 0]
        if not cs:
            return y
        if op == "cat" and len(cs) == len(ins):
            c = sum(a * cc for a, cc in zip(_cat_weights(ins, size), cs, strict=True))
        else:
            c = sum(cs) if op == "add" else math.prod(cs) if op == "mul" else sum(cs) / len(cs)
    elif op == "act":
        var = x.q - x.mu**2
        rho = min(max((x.c - x.mu**2) / var, 0.0), 1.0) if var > 1e-12 else 1.0
        c = y.mu**2 + max(y.q - y.mu**2, 0.0) * rho
    else:  # layer, block, pass: the input's shared fraction (a max pool's rule knows more: its own)
        c = y.q * min(x.c / x.q, 1.0) if x.q > 1e-300 and x.c > 0 else 0.0
        c = max(c, y.c) if op == "pass" else c
    return Signal(y.q, y.mu, y.share, y.inv_n, min(max(c, y.mu**2), y.q), k=_constant(op, ins, x, y, size))


def _constant(op: str, ins: list[Signal], x: Signal, y: Signal, size: tuple[float, ...]) -> float:
    """``k``: the part of ``y``'s second moment beyond its mean that is the same in every sample, each
    channel's own constant (a bias, a mean through a weight layer's rows): an average pool keeps it whole,
    which the share of the variance across samples it keeps, measured on the example with the constructor's
    zero biases, leaves out (NF-Nets' SE inputs are 75% such constants: their fc1 measured 40x the plan).
    Sums add it, activations and shape-only ops pass its share of the variance, a product of independent
    signals multiplies what each entry has in every sample (SwiftFormer's query direction, common to its
    samples, and weights computed from it: their sum over the tokens adds it coherently), anything else drops
    it."""
    if op == "add":
        return min(sum(s.k for s in ins if s.q >= 0), y.q)
    if op == "mul" and len(ins) >= 2 and all(s.q >= 0 for s in ins):
        fixed = math.prod(s.mu**2 + s.k for s in ins) - math.prod(s.mu**2 for s in ins)
        return min(max(fixed, 0.0), max(y.q - y.mu**2, 0.0))
    if op == "cat" and ins and all(s.q >= 0 for s in ins):
        return sum(a * s.k for a, s in zip(_cat_weights(ins, size), ins, strict=True))
    var = x.q - x.mu**2
    if op == "act" and var > 1e-12:
        return max(y.q - y.mu**2, 0.0) * min(x.k / var, 1.0)
    if op == "pass" and y.q == x.q:
        return x.k
    return 0.0


_HERMITE = np.polynomial.hermite_e.hermegauss(80)


def _activation(act: Activation | None, spec: str, x: Signal) -> Signal:
    """``phi`` of a Gaussian signal: the catalog's moment map when its mean is negligible, else integrated
    about the mean (a ReLU after a max pool or a residual sum of positive values keeps more than half)."""
    var = max(x.q - x.mu**2, 0.0)
    if act is not None and (signed := signed_moments(act, x.mu, var, x.sign)) is not None:
        return Signal(signed[1], signed[0])  # z of one sign (exp of a decay): not a Gaussian about its mean
    if act is None or x.mu * x.mu <= 1e-3 * max(x.q, 1e-12):
        mean, second, _ = act_moments(act, spec, var)
        return Signal(second, mean)
    z, w = _HERMITE
    with np.errstate(all="ignore"):
        y = np.asarray(act(x.mu + math.sqrt(var) * z), dtype=np.float64)
    if y.shape != z.shape or not np.isfinite(y).all():
        mean, second, _ = act_moments(act, spec, var)
        return Signal(second, mean)
    w = w / w.sum()
    return Signal(float((w * y * y).sum()), float((w * y).sum()))


def _module_of(graph: ModelGraph, n: Any) -> nn.Module | None:
    """The module a ``pass`` node of a module call ran (None for a function call)."""
    if n.name in TRANSPARENT_NAMES or not n.name:
        return None
    try:
        return graph.model.get_submodule(n.name)
    except (AttributeError, GraphError):
        return None


def _max_pool_window(graph: ModelGraph, n: Any) -> int:
    """Entries per window of a max pool: those its windows cover on the example's map
    (:func:`._sizes.max_window`), or its kernel's."""
    if n.size:
        return max(1, round(n.size[0]))
    module = _module_of(graph, n)
    if isinstance(module, nn.MaxPool1d | nn.MaxPool2d | nn.MaxPool3d):
        dims = 1 if isinstance(module, nn.MaxPool1d) else 2 if isinstance(module, nn.MaxPool2d) else 3
        return pool_window(module.kernel_size, dims)
    return 1


def _dropout_kept(graph: ModelGraph, n: Any) -> float:
    """``1 - p`` of a dropout module in training mode (the mode the model is in now), else 1: the entries it
    keeps are divided by it, so E[x^2] becomes E[x^2] / (1 - p), the mean unchanged (Hendrycks & Gimpel 2016
    scale the next layer for it)."""
    module = _module_of(graph, n)
    if isinstance(module, nn.Dropout | nn.Dropout1d | nn.Dropout2d | nn.Dropout3d) and module.training:
        return 1.0 - float(module.p) if 0.0 < module.p < 1.0 else 1.0
    return 1.0


def _max_pool(nodes: list[Any], out: dict[int, Signal], j: int, k: int) -> Signal:
    """The max of ``k`` entries that share the part ``c`` of their signal a sample's positions share (a
    conv's response to its input's mean) and are independent in the rest: of ``phi(z)`` when an increasing
    activation ``phi`` feeds the pool (ReLU, max-pool: ``phi(max z)``), else of a Gaussian of the input's."""
    x = out[j]
    while nodes[j].op == "pass" and nodes[j].inputs:
        j = nodes[j].inputs[0]
    src = nodes[j]
    act, z = (src.act, out[src.inputs[0]]) if (
        src.op == "act" and src.act is not None and src.inputs and src.inputs[0] in out
    ) else (None, x)
    shared = min(max(z.c - z.mu**2, 0.0), max(z.q - z.mu**2, 0.0))
    q, mu = _max_moments(act, k, max(z.q - z.mu**2 - shared, 1e-12), z.mu, shared)
    # what the entries share passes the max whole, beside its mean (Hiera's pooled queries and shortcut: read
    # as the mean alone, a LayerNorm after them took out nearly all the tokens share, proj measured 3.5x)
    return Signal(q, mu, c=min(q, mu * mu + shared))


_Z = np.linspace(-9.0, 9.0, 3601)
_SHARED = np.polynomial.hermite_e.hermegauss(24)


def _max_moments(
    act: Activation | None, k: int, var: float, mu: float, shared: float = 0.0
) -> tuple[float, float]:
    """(second moment, mean) of ``phi(mu + s + sd * max of k standard normals)``, ``s ~ N(0, shared)`` the
    part every entry shares; ``phi`` must be increasing (checked on the grid; otherwise the identity)."""
    density = k * np.exp(-0.5 * _Z**2) / math.sqrt(2 * math.pi) * special.ndtr(_Z) ** (k - 1)
    density /= density.sum()
    h, hw = _SHARED if shared > 0 else (np.zeros(1), np.ones(1))
    y = mu + math.sqrt(shared) * h[:, None] + math.sqrt(var) * _Z[None, :]
    if act is not None:
        with np.errstate(all="ignore"):
            fy = np.asarray(act(y), dtype=np.float64)
        if fy.shape == y.shape and np.isfinite(fy).all() and bool(np.all(np.diff(fy, axis=1) >= -1e-9)):
            y = fy
    p = (hw / hw.sum())[:, None] * density[None, :]
    return float((p * y * y).sum()), float((p * y).sum())


def _product(fname: str, size: tuple[float, ...], ins: list[Signal]) -> Signal:
    """An op of several activations: a softmax-weighted average of values (or a fused attention's) keeps the
    values' mean and ``E[sum p^2]`` of their variance (independent tokens); a matrix product of two
    zero-mean activations sums ``K`` products (``q @ k^T``); anything else: the largest input's second
    moment."""
    if fname in ADDCMUL and len(ins) == 3 and all(s.q >= 0 for s in ins):
        return _addcmul(*ins)
    weights = [s for s in ins if s.q < 0]
    values = [s for s in ins if s.q >= 0]
    if fname in SDPAS and len(size) >= 2 and len(values) >= 3 and not weights:
        q, k, _ = values[:3]  # fused softmax(q @ k^T * scale) @ v: the part every key shares cancels
        logits = Signal(size[0] * q.q * max(k.q - k.c, 0.0), 0.0, live=k.live)
        weights, values = [_softmax(size[1:], logits)], values[2:3]
    if weights and values:
        return _averaged(values[-1], weights[0], size[1:3] if fname in MATMULS and len(size) == 3 else ())
    if (fname in MATMULS or fname in EINSUMS) and size and len(ins) == 2 and all(s.q > 0 for s in ins):
        a, b = ins  # q @ k^T: the part of k shared by every key is the same in every logit of a row
        # K products: a's entries independent beyond their mean, b's rows sharing what the example showed
        # (EfficientViT's k^T v: every row sums the same values)
        n, rows = size[0], (size[1] if len(size) > 1 else 0.0)
        mean = n * a.mu * b.mu
        m2 = n * a.q * b.q + n * (n - 1) * a.mu**2 * (b.mu**2 + rows * max(b.q - b.mu**2, 0.0))
        return Signal(m2, mean, c=min(max(n * a.q * b.c, mean * mean), m2))
    big = max(ins, key=lambda s: s.q)
    return Signal(big.q, 0.0, c=big.c)


ADDCMUL = ("addcmul", "addcmul_")


def _addcmul(a: Signal, b: Signal, c: Signal) -> Signal:
    """``a + b * c`` of independent signals (ConvNeXt-V2's response norm ``x + addcmul(bias, gamma, x * n)``
    with its gamma and bias at zero: the identity; read as its largest input, fc2 was planned 3x too big)."""
    q = a.q + b.q * c.q + 2.0 * a.mu * b.mu * c.mu
    return Signal(q, a.mu + b.mu * c.mu, c=min(max(a.c, a.mu**2) + b.q * c.c, q))


def _averaged(v: Signal, p: Signal, along: tuple[float, ...] = ()) -> Signal:
    """Values ``v`` averaged by softmax weights ``p`` in each row: what they share passes whole (times the
    rows' sum, 1 for a softmax). What the walker carries as shared is what the positions share; where the
    example shows the values' columns sharing clearly more than the rows averaged (``along``,
    :func:`._sizes._shared_along`: XCiT averages channels, its tokens run along the columns), the rows are
    no positions: they keep only the share the example showed them having in common, and what the output's
    positions share is what each channel's positions shared, averaged over the channels."""
    shared = max(v.c, v.mu**2)
    rows, columns = along if len(along) == 2 else (1.0, 0.0)
    across = columns >= COLUMNS_SHARED and columns > ROWS_NOT_POSITIONS * rows
    if across:
        shared = min(shared, max(rows * v.q, v.mu**2))
    c = shared * p.total**2
    rest = max(v.q - shared, 0.0)
    dead = shared * p.live**2 + rest * p.dead if p.live < 1.0 else 0.0  # padded rows
    q = c + rest * p.share
    if not across:
        return Signal(q, v.mu * p.total, c=c + rest * p.inv_n, dead=dead)
    # (read as the rows' share, an XCiT block's output was carried as shared by all its tokens, the stream's
    # shared part grew block by block, and its class attention was planned for it: 0.3x)
    return Signal(q, v.mu * p.total, c=min(c + max(v.c - shared, 0.0) * p.share, q), dead=dead)


def _weights_op(op: str, fname: str, ins: list[Signal]) -> Signal | None:
    """Softmax weights through a linear map that keeps them weights (None: not one): scaled by a value
    every position shares (ConViT's gate ``sigmoid(g) * softmax(...)``), divided by one (its ``attn /=
    attn.sum(-1)``), or summed with other weights (the gate's two mixed softmaxes, independent rows: each
    pair adds ``2 a b E[1/n]`` to ``E[sum_j w_j^2]``); times values that vary, the product of their
    entries. Read as a product of signals, the mix lost its share and ConViT's proj was planned for values
    passing whole (std 0.006, 0.01x its plan)."""
    weights = [s for s in ins if s.q < 0]
    if op == "add":
        if len(weights) != len(ins) or len(ins) < 2:
            return None
        roots = [math.sqrt(w.inv_n) for w in weights]
        cross = sum(a * b for k, a in enumerate(roots) for b in roots[k + 1 :])
        return Signal(-1.0, 0.0, sum(w.share for w in weights) + 2.0 * cross, sum(roots) ** 2,
                      total=sum(w.total for w in weights))
    if len(weights) != 1 or len(ins) != 2 or (fname in DIV_NAMES and ins[0].q >= 0):
        return None
    w, s = weights[0], next(s for s in ins if s.q >= 0)
    if fname not in DIV_NAMES and not _shared(s):  # values weighted entry by entry (ResNeSt's split
        e = entries(w)  # attention, summed over its radix next): a product of signals, no longer weights
        return Signal(e.q * s.q, e.mu * s.mu, c=e.c * s.c)
    if s.mu == 0.0 or not _shared(s):
        return None
    f = 1.0 / s.mu if fname in DIV_NAMES else s.mu
    return Signal(-1.0, 0.0, w.share * f * f, w.inv_n * f * f, total=w.total * f)


def attention_values(keys: tuple[float, ...], q: Signal, k: Signal, v: Signal,
                     gains: tuple[float, float, float]) -> Signal:
    """The values ``nn.MultiheadAttention`` passes to ``out_proj``, for its query, key and value inputs, its
    key counts and ``gains`` = fan_in E[w^2] of its q/k/v projections: the logits ``q . k / sqrt(head_dim)``
    vary across keys as ``q.q (k.q - k.c)`` (the part every key shares cancels), and each row averages the
    values by their softmax. No key counts: the values pass whole."""
    gq, gk, gv = gains
    values = Signal(gv * v.q, 0.0, c=gv * max(v.c, v.mu**2))
    logits = Signal(gq * q.q * gk * max(k.q - max(k.c, k.mu**2), 0.0), 0.0)
    return _averaged(values, _softmax(keys, logits))


class ParamMoment(Protocol):
    """``E[p^2]`` of a layer's parameter by local name; of one of its stacked blocks with ``block``."""

    def __call__(self, local: str, block: int | None = None) -> float: ...


MHA_PROJECTIONS = ("q_proj_weight", "k_proj_weight", "v_proj_weight")  # kdim/vdim set apart from embed_dim


def mha_inputs(ins: list[Signal]) -> tuple[Signal, Signal, Signal]:
    """``nn.MultiheadAttention(query, key, value)``'s input signals: a pooling head's query is a learned
    probe, its keys and values the tokens (SigLIP's head: its packed projection planned for the probe drew
    std 1.0 for the values too, whose output measured 1200x the plan)."""
    k = ins[1] if len(ins) > 1 else ins[0]
    return ins[0], k, ins[2] if len(ins) > 2 else k


def mha_fans(module: nn.Module | None) -> tuple[float, float, float]:
    """Fan-ins of ``nn.MultiheadAttention``'s q, k and v projections (``kdim``/``vdim`` when set apart)."""
    e = float(getattr(module, "embed_dim", 1))
    return e, float(getattr(module, "kdim", e)), float(getattr(module, "vdim", e))


def mha_values(info: LayerInfo, ins: list[Signal], m2: ParamMoment) -> Signal:
    """:func:`attention_values` of an ``nn.MultiheadAttention`` layer for ``E[w^2]`` of its parameters."""
    if "in_proj_weight" in info.params:
        w = [m2("in_proj_weight", b) for b in range(3)]
    else:
        w = [m2(n) for n in MHA_PROJECTIONS]
    fq, fk, fv = mha_fans(info.module)
    return attention_values(info.keys, *mha_inputs(ins), (fq * w[0], fk * w[1], fv * w[2]))


def attention_share(keys: tuple[float, ...], s2: float) -> float:
    """``E[sum_j p_j^2]`` of ``p = softmax(l)`` over ``n`` keys with i.i.d. ``l ~ N(0, s2)``, averaged over
    the rows' key counts ``keys`` (none recorded: 1, the value passes whole)."""
    if not keys:
        return 1.0
    return sum(_share(int(n), round(min(s2, 16.0), 2))[0] for n in keys) / len(keys)


@lru_cache(maxsize=1024)
def _share(n: int, s2: float, live: int | None = None) -> tuple[float, float]:
    """``(E[sum_j p_j^2], E[sum_j p_j])`` over the first ``live`` of ``n`` keys (all: None), those with
    i.i.d. logits ``N(0, s2)``, the rest logit 0 (a zero pad's keys, :func:`_padded`)."""
    # a fixed-seed local generator (no global RNG), 2^12 logits (a few % standard error: the targets are
    # factors), or the large-n limit e^{s2} / n (every key carrying)
    k = n if live is None else min(live, n)
    if n <= 1:
        return 1.0, 1.0
    if n > 1 << 13:
        return min(1.0, math.exp(s2) / n), 1.0
    logits = np.zeros((max(8, (1 << 12) // n), n))
    logits[:, :k] = np.random.default_rng(0).standard_normal((logits.shape[0], k)) * math.sqrt(s2)
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return float(np.square(p[:, :k]).sum(axis=1).mean()), float(p[:, :k].sum(axis=1).mean())


def output_signal(graph: ModelGraph, signals: dict[int, Signal]) -> Signal | None:
    outs = [i for i, n in enumerate(graph.nodes) if n.op == "output"]
    if not outs or outs[-1] not in signals:
        return None
    node = graph.nodes[outs[-1]]
    if node.inputs and node.inputs[0] in signals:
        return signals[node.inputs[0]]
    return None


def module_output(info: LayerInfo, q: float) -> float:
    """What the layer's module outputs for its own output ``q`` (a zero-mean signal): a norm with its
    activation inside (timm's BatchNormAct2d with hard-swish) outputs that activation of it, as a hook on
    the module sees (it measured a third of the unit variance reported before)."""
    if info.inner_act is None:
        return q
    return act_moments(info.inner_act, activation_spec(info.inner_act), q)[1]


def fan_in_read(info: LayerInfo) -> float:
    """The products each output entry sums: the fan-in, times the share of a zero-padded conv's taps that
    read the input at the example's size (``LayerInfo.taps_read``)."""
    fans = info.weight_fans
    return (fans.fan_in if fans is not None else 1.0) * info.taps_read


def layer_moment(info: LayerInfo, ins: list[Signal], m2: ParamMoment) -> float:
    """Output second moment of a layer for its input signals, given ``E[p^2]`` of each of its parameters by
    local name (the layer's registry type says how it computes)."""
    t, x = info.layer_type, ins[0]
    if info.kind.weight:
        q_in = math.prod(s.q for s in ins[: t.inputs]) if len(ins) >= t.inputs else x.q
        if info.standardized is not None:  # zero-mean filters: the input's mean drops out with the scale
            return t.second_moment(max(x.q - x.mu**2, 0.0), info.standardized, m2(info.bias_local),
                                   fan_in_read(info))
        return t.second_moment(q_in, m2(info.weight_local), m2(info.bias_local), fan_in_read(info))
    if info.kind.embedding:
        return m2("weight") * embedding_gain(info.module) ** 2
    if info.kind is Kind.NORM:
        if t is RESPONSE_NORM:  # x + w x N(x) + b, N(x) about 1
            return (1.0 + m2("weight")) * x.q + m2("bias")
        if not t.normalizes:  # a frozen norm: a fixed affine map of its input
            return frozen_norm_gain(info.module) * max(x.q - x.mu**2, 0.0)
        if centres_one_entry(info.module):
            return m2("bias")
        kept = eps_kept(info.module, x.q)
        if offset_weight(info.specs):  # x * (1 + w): E[(1 + w)^2], w's mean left out
            return (1.0 + m2("weight")) * kept + m2("bias")
        return (m2("weight") if "weight" in info.params else 1.0) * kept + m2("bias")
    if info.kind is Kind.ATTENTION:
        return mha_fans(info.module)[0] * m2("out_proj.weight") * mha_values(info, ins, m2).q
    if info.kind is Kind.RNN:
        return 0.1
    return x.q


def evaluate(
    graph: ModelGraph,
    rows: dict[str, tuple[float | None, float | None]],
    current: Callable[[str], float | None],
    blocks: Mapping[str, Sequence[tuple[float | None, float | None]]] | None = None,
) -> tuple[dict[str, float], float | None]:
    """Predicted output second moment of every layer, and of the model output, for planned entries
    ``rows[param] = (mean, std)`` (``current(param)`` gives ``E[w^2]`` of parameters the plan keeps);
    ``blocks[param]``: the ``(mean, std)`` of each stacked block of a parameter drawn block by block."""
    per_block = blocks or {}

    def moment(mean: float | None, std: float) -> float:
        return std * std + (mean or 0.0) ** 2

    def m2(info: LayerInfo, local: str, block: int | None = None) -> float:
        q = info.params.get(local)
        if q is None:
            return 0.0
        if q in per_block:  # blocks drawn apart: the one asked for, or their average (equal sizes)
            stats = [moment(mean, std or 0.0) for mean, std in per_block[q]]
            return stats[block] if block is not None else sum(stats) / len(stats)
        mean, std = rows.get(q, (None, None))
        if std is None:
            value = current(q)
            return 0.0 if value is None else value
        return moment(mean, std)

    var: dict[str, float] = {}

    def rule(info: LayerInfo, ins: list[Signal], node: int) -> Signal:
        moments = partial(m2, info)
        q = layer_moment(info, ins, moments)
        var[info.name] = module_output(info, padded_output(info, ins, q))
        if info.kind is Kind.ATTENTION and ins:  # its average makes what the tokens share most of it
            v = mha_values(info, ins, moments)
            return Signal(q, 0.0, c=q * min(v.c / v.q, 1.0) if v.q > 0 else 0.0)
        return Signal(q, 0.0, c=m2(info, info.bias_local) if info.kind.weight else 0.0)  # c: the bias's

    def read(q: str) -> Signal | None:  # a parameter read as data (an embedding table): its planned value
        mean, std = rows.get(q, (None, None))
        value = current(q) if std is None else std * std + (mean or 0.0) ** 2
        return None if value is None else Signal(value, mean or 0.0)

    signals = propagate(graph, rule, lambda name, x: Signal(max(1.0, x.q), 0.0), param_rule=read)
    out = output_signal(graph, signals)
    return var, (out.q if out is not None else None)


def explain_missing(graph: ModelGraph, rows: list[Any]) -> None:
    """Say on each planned layer's main row why it has no predicted output second moment (never a silent
    None): the forward pass did not reach the layer, or the propagation has no node for it."""
    infos = {info.name: info for info in graph.layers}
    for r in rows:
        info = infos.get(r.layer)
        if info is None or r.status != "init" or r.var_out is not None or "not predicted" in r.note:
            continue
        if next(iter(info.params.values()), None) != r.name:
            continue
        why = ("not predicted: the example forward pass did not reach this layer" if not info.reached
               else "not predicted: the layer has no node in the traced dataflow")
        r.note = f"{r.note}; {why}" if r.note else why


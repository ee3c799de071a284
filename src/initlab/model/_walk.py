"""The one walk over discovery's dataflow nodes: from a node, follow consumers (or producers) through the ops
that are transparent for the question asked, and yield what is met.

Every question initlab asks of the graph is such a walk -- the activation after a layer, the layer an
activation reads, the activation feeding a layer, whether a residual sum is only ever normalized -- and they
differ only in which ops they see through. That is one table, :data:`CATEGORY` (what a node is), and named
sets of categories (:data:`SHAPE`, :data:`SCALE`, :data:`ELEMENTWISE`: what a walk sees through).

:meth:`Walker.meet` finds the latest common ancestor of two nodes (the input of a residual block) and the
nodes on each path from it, visiting only the nodes between: discovery's cost stays linear in the number of
recorded ops (the visits are counted in :attr:`Walker.visits`).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal, Protocol

# The ops a dataflow node can be: what discovery (fx or the op recorder, :mod:`.graph`) emits, and "fused"
# for the primitives :mod:`._fuse` merged into one activation.
Op = Literal["input", "const", "param", "layer", "block", "act", "pool", "pass", "add", "mul", "cat",
             "softmax", "other", "output", "fused"]


class _Node(Protocol):
    @property
    def op(self) -> Op: ...
    @property
    def inputs(self) -> tuple[int, ...]: ...
    @property
    def name(self) -> str: ...


# What each node op is, for walks. A layer node that is a normalization layer is "norm"; an activation that
# is an affine map (``x * 0.5``, fused from primitives) is "affine", not a nonlinearity.
CATEGORY: dict[str, str] = {
    "pass": "shape",  # view, dropout, max-pool, padding: values move, the distribution does not change
    "pool": "pool",  # average pooling: a scale change, not a nonlinearity
    "act": "act",
    "layer": "layer",
    "block": "block",
}
SHAPE = frozenset({"shape"})
SCALE = frozenset({"shape", "pool", "norm", "affine"})  # what stands between a layer and its activation
ELEMENTWISE = frozenset({"shape", "act", "affine"})


class Walker:
    """Walks over ``nodes`` (execution order) with ``norms`` the names of normalization layers."""

    def __init__(self, nodes: Sequence[_Node], norms: Iterable[str], affine: Iterable[int] = ()):
        self.nodes = nodes
        self.norms = set(norms)
        self.affine = set(affine)
        self.visits = 0
        self.consumers: list[list[int]] = [[] for _ in nodes]
        for i, n in enumerate(nodes):
            for j in n.inputs:
                self.consumers[j].append(i)

    def category(self, i: int) -> str:
        n = self.nodes[i]
        if n.op == "layer" and n.name in self.norms:
            return "norm"
        if n.op == "act" and i in self.affine:
            return "affine"
        return CATEGORY.get(n.op, n.op)

    def forward(self, start: int, through: frozenset[str]) -> Iterator[int]:
        """Each node met downstream of ``start`` through ``through`` ops, nearest first, each once."""
        frontier, seen = [start], {start}
        while frontier:
            nxt = []
            for i in sorted(frontier):
                for c in self.consumers[i]:
                    if c in seen:
                        continue
                    seen.add(c)
                    self.visits += 1
                    if self.category(c) in through:
                        nxt.append(c)
                    else:
                        yield c
            frontier = nxt

    def backward(self, start: int, through: frozenset[str]) -> int | None:
        """The node producing ``start``'s (first) input, seen through ``through`` ops."""
        inputs = self.nodes[start].inputs
        src = inputs[0] if inputs else None
        while src is not None and self.category(src) in through:
            self.visits += 1
            inputs = self.nodes[src].inputs
            src = inputs[0] if inputs else None
        return src

    def activation_after(self, start: int, through: frozenset[str] = SCALE) -> int | None:
        """The first nonlinearity fed by ``start`` (through shape ops, pools and norms by default)."""
        return next((i for i in self.forward(start, through) if self.category(i) == "act"), None)

    def meet(self, a: int, b: int) -> tuple[int, list[int], list[int]] | None:
        """(latest common ancestor, nodes after it on ``a``'s side only, on ``b``'s side only), ascending;
        None when ``a`` and ``b`` share no ancestor. Visits only nodes later than the ancestor found."""
        side = {a: 1} if a != b else {a: 3}
        side[b] = side.get(b, 0) | 2
        heap = [-i for i in side]
        heapq.heapify(heap)
        open_ = {1: 0, 2: 0, 3: 0}
        for m in side.values():
            open_[m] += 1
        paths: dict[int, list[int]] = {1: [], 2: []}
        while heap:
            if open_[3] == 0 and (open_[1] == 0 or open_[2] == 0):
                return None
            i = -heapq.heappop(heap)
            self.visits += 1
            m = side[i]
            open_[m] -= 1
            if m == 3:
                return i, paths[1][::-1], paths[2][::-1]
            paths[m].append(i)
            for j in self.nodes[i].inputs:
                old = side.get(j, 0)
                new = old | m
                if old == 0:
                    heapq.heappush(heap, -j)
                    open_[new] += 1
                elif old != new:
                    open_[old] -= 1
                    open_[new] += 1
                side[j] = new
        return None

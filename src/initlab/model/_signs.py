"""The sign a node's entries are known to have (+1: all >= 0, -1: all <= 0, 0: either), and an elementwise
function's moments on an input of known sign.

Why: the walker's moment map integrates an activation over a Gaussian of the input's mean and variance,
which puts mass on both sides of zero. For ``exp`` of a quantity that is never positive that is far off: a
Mamba mixer discretizes its state transition as ``exp(A * dt)``, ``A = -exp(A_log) <= 0`` and ``dt =
softplus(.) >= 0``; as a Gaussian ``E[exp(2 z)]`` came out 6.7e5 (its true value is below 1), the 16-step
scan multiplied it into 1e88, and Jamba's ``out_proj`` drew std 4e-45 (its output measured 1e-87). Signs
are read from the parameters' values and carried through the ops that keep them; an input of known sign is
integrated over a Gamma distribution of its magnitude (the same mean and variance, no mass on the wrong
side), by generalized Gauss-Laguerre quadrature.

May import: the catalog, :mod:`.graph`, :mod:`.layers`, :mod:`._fuse`, :mod:`._sizes`. Imported by
:mod:`.propagate`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import torch
from scipy import special

from ..catalog.activations import Activation
from ._fuse import Ref
from ._sizes import PADS
from .graph import ModelGraph, Node
from .layers import ADD_NAMES, MUL_NAMES

NONNEGATIVE = frozenset({"exp", "exp2", "abs", "square", "sqrt", "rsqrt", "sigmoid", "softplus", "relu",
                         "norm", "softmax", "var", "std"})
NEGATE = frozenset({"neg", "__neg__", "negative"})
KEEP_SIGN = frozenset({"sum", "mean", "cumsum", "amax", "amin", "max", "min", "contiguous", "clone"})
_GRID = np.concatenate([-np.logspace(-6.0, 3.0, 64)[::-1], [0.0], np.logspace(-6.0, 3.0, 64)])
MAX_SHAPE = 200.0  # a Gamma this peaked is a Gaussian for our purpose (and its quadrature loses accuracy)


def node_sign(graph: ModelGraph, n: Node, signs: Sequence[int]) -> int:
    """The sign of node ``n``'s entries from its inputs' ``signs`` (those of ``n.inputs``, in order)."""
    if n.op == "param":
        return _tensor_sign(graph, n.name)
    if n.op == "pass" and n.name in PADS and len(n.size) == 3:  # joined to a constant: of its sign too?
        return signs[0] if len(signs) == 1 and n.size[1] * signs[0] >= 0.0 else 0
    if n.op == "pass" and n.name in ADD_NAMES | MUL_NAMES:  # with a parameter the walker does not track
        return 0
    if n.op in ("pass", "pool") or (n.op == "other" and n.name in KEEP_SIGN):
        return signs[0] if len(signs) == 1 else 0
    if n.op == "other" and n.name in NEGATE:
        return -signs[0] if len(signs) == 1 else 0
    if n.op == "softmax" or (n.op == "other" and n.name in NONNEGATIVE):
        return 1
    if n.op == "act" and n.act is not None and len(signs) == 1:
        return act_sign(n.act, signs[0])
    if n.op == "add" or n.op == "cat":  # every operand a tensor of one sign (a scalar's is not seen)
        return signs[0] if _tensors_only(n, signs) and len(set(signs)) == 1 else 0
    if n.op == "mul" and _tensors_only(n, signs):
        return math.prod(signs)
    return 0


def _tensors_only(n: Node, signs: Sequence[int]) -> bool:
    """Every operand of ``n`` is a tensor the walker tracks (a scalar constant's sign is unknown)."""
    if not signs or len(signs) != len(n.inputs):
        return False
    if n.call is None:
        return len(signs) >= 2
    return all(isinstance(a, Ref) for a in n.call[1])


def _tensor_sign(graph: ModelGraph, name: str) -> int:
    try:
        t = graph.model.get_parameter(name)
    except AttributeError:
        return 0
    if t.device.type == "meta" or not t.numel():
        return 0
    with torch.no_grad():
        lo, hi = float(t.min()), float(t.max())
    return 1 if lo >= 0.0 else -1 if hi <= 0.0 else 0


def act_sign(act: Activation, sign: int) -> int:
    """The sign of ``act(z)`` for ``z`` of ``sign``: read on a grid of magnitudes 1e-6..1e3 and zero."""
    z = _GRID if sign == 0 else sign * np.abs(_GRID)
    with np.errstate(all="ignore"):
        try:
            y = np.asarray(act(z), dtype=np.float64)
        except (TypeError, ValueError, RuntimeError):
            return 0
    y = y[np.isfinite(y)]
    if y.shape != z[: len(y)].shape or not len(y):
        return 0
    return 1 if (y >= 0).all() else -1 if (y <= 0).all() else 0


def signed_moments(act: Activation, mu: float, var: float, sign: int) -> tuple[float, float] | None:
    """(mean, second moment) of ``act(z)``, ``z = sign * G``, ``G ~ Gamma`` with ``E[G] = |mu|`` and
    ``Var[G] = var``; None where the Gaussian is as good (no sign, no spread, a peaked Gamma) or the
    integral is not finite."""
    if sign == 0 or var <= 0.0 or mu * sign <= 0.0:
        return None
    shape, scale = mu * mu / var, var / abs(mu)
    if shape > MAX_SHAPE:
        return None
    x, w = _laguerre(round(shape, 4))
    with np.errstate(all="ignore"):
        y = np.asarray(act(sign * scale * x), dtype=np.float64)
    if y.shape != x.shape or not np.isfinite(y).all():
        return None
    return float((w * y).sum()), float((w * y * y).sum())


@lru_cache(maxsize=1024)
def _laguerre(shape: float) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights for ``E[f(G)]``, ``G ~ Gamma(shape, 1)``: generalized Gauss-Laguerre with
    ``alpha = shape - 1`` (weight ``x^alpha e^-x``), normalized by ``Gamma(shape)``."""
    x, w = special.roots_genlaguerre(64, shape - 1.0)
    return x, w / w.sum()

"""Numbers from tensors: moments, per-unit extremes, histograms, symmetry groups, effective rank.

Reductions run in float64 so that exploding signals read as large numbers rather than overflow.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch


@dataclass
class SignalMoments:
    mean: float
    std: float
    rms: float


@dataclass
class Histogram:
    counts: list[int]
    edges: list[float]


@dataclass
class Symmetry:
    """Units whose incoming weights (and bias) are identical and that receive identical gradients stay
    identical under any gradient-based training: ``groups`` distinct units among ``units``; ``twinned`` units
    have at least one identical twin; ``largest`` is the biggest group."""

    units: int
    groups: int
    largest: int
    twinned: int

    @property
    def fraction(self) -> float:
        return self.twinned / self.units if self.units else 0.0


@torch.no_grad()
def moments(x: torch.Tensor) -> SignalMoments:
    """Mean, std and RMS without copying ``x``; tensors whose squares would overflow or underflow are rescaled
    first, so an exploding float64 signal reads 1e+90, not inf."""
    n = x.numel()
    if n == 0:
        return SignalMoments(math.nan, math.nan, math.nan)
    x = _wide(x.detach())
    total, length = _sum_and_norm(x)  # 2 passes; the max-abs pass only when the squares over/underflow
    if _safe_norm(length, x.dtype):
        scale, y = 1.0, x
    else:
        scale = _scale(x)
        if not math.isfinite(scale):
            return _nonfinite_moments(x)
        if scale == 0.0:
            return SignalMoments(0.0, 0.0, 0.0)
        y = x / scale if scale != 1.0 else x
        total, length = _sum_and_norm(y)
    mean = total / n  # torch sums pairwise: float32 is accurate enough, and 20x faster than float64
    second = length**2 / n
    var = second - mean * mean
    if var < 1e-6 * second:  # cancellation: recompute about the mean
        var = float(((y.double() - mean) ** 2).mean())
    return SignalMoments(mean * scale, math.sqrt(max(var, 0.0)) * scale, math.sqrt(second) * scale)


def _sum_and_norm(x: torch.Tensor) -> tuple[float, float]:
    both = torch.stack([x.sum(), torch.linalg.vector_norm(x)])  # one host transfer for the two numbers
    total, length = both.tolist()
    return float(total), float(length)


def _safe_norm(length: float, dtype: torch.dtype) -> bool:
    """The norm neither overflowed nor lost its small values to underflow (then no rescaling is needed)."""
    limit = 1e150 if dtype == torch.float64 else 1e15
    return math.isfinite(length) and 1.0 / limit < length < limit


def _scale(x: torch.Tensor) -> float:
    """1 when the squares of ``x`` are safe in its dtype, else max|x| (0 for all zeros, inf/nan if any)."""
    lo, hi = torch.aminmax(x.reshape(-1))  # 10x faster than vector_norm(ord=inf) on CPU
    amax = max(-float(lo), float(hi)) if not (torch.isnan(lo) or torch.isnan(hi)) else math.nan
    if amax == 0.0 or not math.isfinite(amax):
        return amax
    limit = 1e150 if x.dtype == torch.float64 else 1e15
    return 1.0 if 1.0 / limit < amax < limit else amax


def _nonfinite_moments(x: torch.Tensor) -> SignalMoments:
    has_nan = bool(torch.isnan(x).any())
    return SignalMoments(float(x.double().mean()), math.nan, math.nan if has_nan else math.inf)


@torch.no_grad()
def unit_max(z: torch.Tensor, unit_dim: int) -> torch.Tensor:
    """Each unit's largest value over the batch (and positions): every other axis is a sample of the unit."""
    if z.dim() == 0:
        return z.reshape(1)
    unit_dim %= z.dim()
    others = [d for d in range(z.dim()) if d != unit_dim]
    return z.amax(dim=others) if others else z


@torch.no_grad()
def histogram(x: torch.Tensor, bins: int = 40, sample: int = 1 << 16) -> Histogram:
    """Counts over [min, max] of the finite values; large tensors are counted on an evenly strided sample of
    about ``sample`` values (the range still comes from all of them)."""
    x = _wide(x.detach()).reshape(-1)
    if x.numel() == 0:
        return Histogram([0] * bins, [0.0] * (bins + 1))
    lo_t, hi_t = torch.aminmax(x)
    lo, hi = float(lo_t), float(hi_t)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        x = x[torch.isfinite(x)]
        if x.numel() == 0:
            return Histogram([0] * bins, [0.0] * (bins + 1))
        lo, hi = float(x.min()), float(x.max())
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-30):
        lo, hi = lo - 0.5, hi + 0.5
    if x.numel() > sample:
        x = x[:: -(-x.numel() // sample)]
    counts = torch.histc(x, bins=bins, min=lo, max=hi)
    step = (hi - lo) / bins
    return Histogram([int(c) for c in counts.tolist()], [lo + i * step for i in range(bins + 1)])


@torch.no_grad()
def unit_rows(
    weight: torch.Tensor, bias: torch.Tensor | None = None, transposed: bool = False
) -> torch.Tensor:
    """One row per output unit: its incoming weights, then its bias."""
    w = weight.detach()
    if transposed and w.dim() >= 2:
        w = w.transpose(0, 1)
    rows = w.reshape(w.shape[0], -1).float()
    if bias is not None and bias.numel() == rows.shape[0]:
        rows = torch.cat([rows, bias.detach().float().reshape(-1, 1)], dim=1)
    return rows


@torch.no_grad()
def symmetry(rows: torch.Tensor, grad_rows: torch.Tensor | None = None, rtol: float = 1e-5) -> Symmetry:
    """Groups of units with identical incoming weights, split further where their gradients differ."""
    units = rows.shape[0]
    if units == 0:
        return Symmetry(0, 0, 0, 0)
    candidates = _maybe_twinned(rows)
    if candidates.numel() == 0:  # the usual case: every unit distinct, decided without sorting rows
        return Symmetry(units, units, 1, 0)
    _, inverse, counts = torch.unique(rows[candidates], dim=0, return_inverse=True, return_counts=True)
    sizes = [1] * (units - candidates.numel() + int((counts == 1).sum()))
    for gid in torch.nonzero(counts > 1).flatten().tolist():
        members = candidates[torch.nonzero(inverse == gid).flatten()]
        sizes.extend(
            _split_by_gradient(grad_rows[members] if grad_rows is not None else None, len(members), rtol)
        )
    return Symmetry(units, len(sizes), max(sizes), sum(s for s in sizes if s > 1))


SMALL_ROWS = 1 << 8  # up to this many entries the exact row sort; above, the projection (2-5x cheaper)


@functools.lru_cache(maxsize=64)
def _direction(n: int, device: torch.device) -> torch.Tensor:
    """A fixed direction with entries in [0.5, 1.5), from a private generator (not torch's global one)."""
    return torch.rand(n, generator=torch.Generator().manual_seed(0), dtype=torch.float64).add_(0.5).to(device)


def _maybe_twinned(rows: torch.Tensor) -> torch.Tensor:
    """Indices of the rows that may equal another row: equal rows have equal projections on a fixed
    random direction (up to rounding, allowed for), distinct rows almost surely do not. One matrix-vector
    product and a sort of one number per row instead of a lexicographic sort of whole rows."""
    if rows.shape[0] < 2:
        return torch.empty(0, dtype=torch.long)
    if rows.numel() <= SMALL_ROWS:  # a tiny matrix: the exact sort is as cheap as the projection
        return torch.arange(rows.shape[0], device=rows.device)
    x = rows.double()
    h = x @ _direction(x.shape[1], x.device)
    if not bool(torch.isfinite(h).all()):
        return torch.arange(rows.shape[0], device=rows.device)  # non-finite weights: compare rows exactly
    tol = 1e-9 * float(x.abs().sum(dim=1).max()) + 1e-300
    order = torch.argsort(h)
    close = (h[order].diff() <= tol).nonzero().flatten()
    if close.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=rows.device)
    return torch.unique(torch.cat([order[close], order[close + 1]]))


def _split_by_gradient(grads: torch.Tensor | None, n: int, rtol: float) -> list[int]:
    if grads is None:
        return [n]
    grads = grads.double()
    scale = float(grads.abs().max()) if grads.numel() else 0.0
    tol = rtol * scale + 1e-30
    sizes = []
    remaining = torch.ones(n, dtype=torch.bool)
    while bool(remaining.any()):
        rep = grads[int(torch.nonzero(remaining)[0])]
        same = remaining & ((grads - rep).abs() <= tol).all(dim=1)
        sizes.append(int(same.sum()))
        remaining &= ~same
    return sizes


RANK_LIMIT = 256  # largest smaller side whose effective rank diagnose computes by default (cost ~ n^3)
_full_rank = contextvars.ContextVar("initlab_full_rank", default=False)


@contextlib.contextmanager
def full_rank(enabled: bool = True) -> Iterator[None]:
    """Compute the effective rank of every weight matrix, however large (``diagnose(full_rank=True)``)."""
    token = _full_rank.set(enabled)
    try:
        yield
    finally:
        _full_rank.reset(token)


def rank_skipped(weight: torch.Tensor) -> bool:
    """Whether :func:`effective_rank` leaves this weight out by default (its smaller side > RANK_LIMIT)."""
    return weight.dim() >= 2 and min(weight.shape[0], weight[0].numel()) > RANK_LIMIT and not _full_rank.get()


@torch.no_grad()
def effective_rank(weight: torch.Tensor, transposed: bool = False) -> float | None:
    """exp(entropy of the normalized singular values) (Roy & Vetterli 2007): 1 for rank one, n for n equal.

    The singular values come from the eigenvalues of the smaller Gram matrix, an order of magnitude faster
    than an SVD on CPU; eigenvalues within rounding of zero (n·eps·max) count as zero. The entropy barely
    depends on the small singular values that squaring loses. None (not computed) for a matrix whose both
    sides exceed RANK_LIMIT unless inside :func:`full_rank`: its O(n^3) eigendecomposition would cost more
    than the forward and backward passes diagnose measures."""
    if weight.dim() < 2 or weight.numel() == 0:
        return math.nan
    if rank_skipped(weight):
        return None
    w = weight.detach()
    if transposed:
        w = w.transpose(0, 1)
    w = w.reshape(w.shape[0], -1)
    w = w.double() if w.dtype == torch.float64 else w.float()
    gram = w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T
    if not bool(torch.isfinite(gram).all()):
        return math.nan
    eig = torch.linalg.eigvalsh(gram).double()
    noise = gram.shape[0] * torch.finfo(gram.dtype).eps * float(eig.max().clamp(min=0))
    s = torch.where(eig > noise, eig, 0.0).sqrt()
    total = float(s.sum())
    if total == 0.0:
        return 0.0
    p = s / total
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def norm(t: torch.Tensor | None) -> float | None:
    """The L2 norm, overflow-safe like :func:`moments`."""
    if t is None:
        return None
    t = _wide(t.detach())
    if t.numel() == 0:
        return 0.0
    length = float(torch.linalg.vector_norm(t))
    if _safe_norm(length, t.dtype):
        return length
    if length == 0.0 and not bool(t.any()):
        return 0.0
    scale = _scale(t)
    if scale == 1.0:
        return float(torch.linalg.vector_norm(t))
    if scale == 0.0 or not math.isfinite(scale):
        return scale
    return float(torch.linalg.vector_norm(t / scale)) * scale


def _wide(t: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 -> float32 (their range overflows on squares); float32/64 as they are."""
    return t if t.dtype in (torch.float32, torch.float64) else t.float()

"""Numbers from tensors: moments, per-unit extremes, histograms, symmetry groups, effective rank.

Reductions run in float64 so that exploding signals read as large numbers rather than overflow.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch

HIST_SAMPLE = 1 << 16  # histograms of larger tensors count an evenly strided sample of this size


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
    return _scaled(_from_sums(total, length, n, y), scale)


def _from_sums(total: float, length: float, n: int, y: torch.Tensor) -> SignalMoments:
    """Mean, std and RMS from the sum and the L2 norm of the ``n`` entries of ``y``."""
    mean = total / n  # torch sums pairwise: float32 is accurate enough, and 20x faster than float64
    second = length**2 / n
    var = second - mean * mean
    if var < 1e-6 * second:  # cancellation: recompute about the mean
        var = float(((y.double() - mean) ** 2).mean())
    return SignalMoments(mean, math.sqrt(max(var, 0.0)), math.sqrt(second))


def _scaled(m: SignalMoments, scale: float) -> SignalMoments:
    if scale == 1.0:
        return m
    return SignalMoments(m.mean * scale, m.std * scale, m.rms * scale)


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


def units(z: torch.Tensor, unit_dim: int) -> int:
    """How many units :func:`unit_max` returns, without computing it."""
    return z.shape[unit_dim % z.dim()] if z.dim() else 1


@torch.no_grad()
def histogram(x: torch.Tensor, bins: int = 40, sample: int = HIST_SAMPLE) -> Histogram:
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
    return _histc(x, lo, hi, bins, sample)


def _histc(x: torch.Tensor, lo: float, hi: float, bins: int, sample: int) -> Histogram:
    """Counts of the flat ``x`` over [lo, hi], its finite range."""
    lo, hi = _widened(lo, hi)
    x = _sampled(x, sample)
    found = _bin_counts(x, lo, hi, bins) if x.numel() >= VECTOR_BINS else None
    if found is None:
        found = [int(c) for c in torch.histc(x, bins=bins, min=lo, max=hi).tolist()]
    step = (hi - lo) / bins
    return Histogram(found, [lo + i * step for i in range(bins + 1)])


def _widened(lo: float, hi: float) -> tuple[float, float]:
    """A range that rounds to nothing (a constant tensor) widened by 1/2 on each side, as histc needs."""
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-30):
        return lo - 0.5, hi + 0.5
    return lo, hi


def _sampled(x: torch.Tensor, sample: int) -> torch.Tensor:
    """An evenly strided sample of about ``sample`` entries of the flat ``x`` (a view)."""
    return x[:: -(-x.numel() // sample)] if x.numel() > sample else x


VECTOR_BINS = 1 << 14  # below, histc's loop is cheaper than the 6 operations of the vectorized binning


def _bin_counts(x: torch.Tensor, lo: float, hi: float, bins: int) -> list[int] | None:
    """``torch.histc``'s counts on CPU by its own formula, ``int((x - lo) * bins / (hi - lo))`` in the
    dtype of ``x`` with the top edge in the last bin, in vectorized operations: histc's scalar loop costs
    ~15 ns per entry (1 ms for a sampled 2**16), this ~2. None where histc itself must decide (not float32/64
    on CPU, a range that rounds to nothing, values whose products could overflow)."""
    found = _histc_range(x, lo, hi)
    return None if found is None else _bin_rows([x], [found[0]], [found[1]], bins, x.dtype)[0]


@dataclass
class PendingHistogram:
    """What :func:`histogram` would count, kept to be counted later with others by :func:`histograms`: a
    copy of the (strided sample of the) values and their finite range."""

    sample: torch.Tensor
    lo: float
    hi: float
    bins: int


def signal_summary(
    z: torch.Tensor, post: torch.Tensor, bins: int, counts: list[torch.Tensor]
) -> tuple[SignalMoments, SignalMoments, PendingHistogram, list[float]] | None:
    """:func:`moments` of ``z`` and ``post``, the :func:`histogram` of ``post`` (pending: :func:`histograms`
    counts it) and the values of the 0-d ``counts``, with every reduction in one host transfer (a hooked
    layer pays per tensor operation, not per entry, when the model is small). None when a norm
    over/underflows or ``post`` has non-finite values: the caller then takes the separate functions, which
    handle those cases; else the numbers are theirs. Called under no_grad (the hooks'
    :func:`~.recorder.forward_fields`) or on detached tensors."""
    n = z.numel()
    if n == 0:
        return None
    z, post = _wide(z), _wide(post)  # no graph under no_grad: no detach (an operation per call)
    parts = [z.sum(), torch.linalg.vector_norm(z)]
    if post is not z:
        parts += [post.sum(), torch.linalg.vector_norm(post)]
    flat = post.reshape(-1)
    values = torch.stack([*parts, *torch.aminmax(flat), *counts]).tolist()
    total, length = values[0], values[1]
    act_total, act_length = (values[2], values[3]) if post is not z else (total, length)
    lo, hi = values[len(parts)], values[len(parts) + 1]
    if not (_safe_norm(length, z.dtype) and _safe_norm(act_length, post.dtype)
            and math.isfinite(lo) and math.isfinite(hi)):
        return None
    output = _from_sums(total, length, n, z)
    act = _from_sums(act_total, act_length, n, post) if post is not z else output
    return output, act, _pending(flat, lo, hi, bins), values[len(parts) + 2:]


def _pending(x: torch.Tensor, lo: float, hi: float, bins: int) -> PendingHistogram:
    """:func:`_histc`'s sample and range, copied (a later in-place operation must not change them)."""
    lo, hi = _widened(lo, hi)
    return PendingHistogram(_sampled(x, HIST_SAMPLE).clone(), lo, hi, bins)


def histograms(items: Sequence[PendingHistogram]) -> list[Histogram]:
    """The histograms of many pending ones: :func:`_histc`'s counts, with float32/float64 CPU samples of one
    dtype, size and bin count binned together as the rows of one matrix (a small histogram costs per tensor
    operation, not per entry: ~60 us each alone, dozens per diagnose of a small model)."""
    out: list[Histogram | None] = [None] * len(items)
    groups: dict[tuple[Any, ...], list[tuple[int, float, float]]] = {}
    for i, h in enumerate(items):
        found = _histc_range(h.sample, h.lo, h.hi)
        if found is not None:
            groups.setdefault((h.sample.dtype, h.sample.numel(), h.bins), []).append((i, *found))
        else:
            out[i] = _histc(h.sample, h.lo, h.hi, h.bins, HIST_SAMPLE)
    for (dtype, _, bins), rows in groups.items():
        idx, starts, widths = zip(*rows, strict=True)
        counts = _bin_rows([items[i].sample for i in idx], starts, widths, bins, dtype)
        lo = np.array([items[i].lo for i in idx])[:, None]
        step = (np.array([items[i].hi for i in idx])[:, None] - lo) / bins
        for i, c, e in zip(idx, counts, (lo + np.arange(bins + 1) * step).tolist(), strict=True):
            out[i] = Histogram(c, e)  # edges lo + k * step, as _histc's
    return [h for h in out if h is not None]


def _bin_rows(samples: Sequence[torch.Tensor], starts: Sequence[float], widths: Sequence[float], bins: int,
              dtype: torch.dtype) -> list[list[int]]:
    """histc's counts of samples of one dtype and size by its own formula, ``int((x - lo) * bins / (hi -
    lo))`` in the dtype of ``x`` with the top edge in the last bin: the samples stacked as rows, each row's
    start and width a column, then one bincount over (row, bin) slots."""
    x = samples[0].unsqueeze(0) if len(samples) == 1 else torch.stack(list(samples))
    pos = torch.sub(x, torch.tensor(starts, dtype=dtype).unsqueeze(1)).mul_(bins)
    pos = pos.div_(torch.tensor(widths, dtype=dtype).unsqueeze(1)).to(torch.int32).clamp_(max=bins - 1)
    pos += torch.arange(0, bins * len(samples), bins, dtype=torch.int32).unsqueeze(1)
    flat: list[int] = torch.bincount(pos.reshape(-1), minlength=bins * len(samples)).tolist()
    return [flat[k * bins:(k + 1) * bins] for k in range(len(samples))]


@torch.no_grad()
def unit_rows(
    weight: torch.Tensor, bias: torch.Tensor | None = None, transposed: bool = False
) -> torch.Tensor:
    """One row per output unit: its incoming weights, then its bias."""
    return UnitRows.of(weight, bias, transposed).rows()


class UnitRows(NamedTuple):
    """A weight's :func:`unit_rows` before they are copied out: ``weight`` (units, fan-in), then ``bias``
    (None, or one per unit) as the last column. Most weights are screened on a few of their columns
    (:func:`_screen`) and never need the whole rows, whose copy cost a tenth of diagnose on a CNN."""

    weight: torch.Tensor
    bias: torch.Tensor | None

    @classmethod
    def of(cls, weight: torch.Tensor, bias: torch.Tensor | None = None, transposed: bool = False) -> UnitRows:
        w = weight.detach()
        if transposed and w.dim() >= 2:
            w = w.transpose(0, 1)
        w = (w if w.dim() == 2 else w.reshape(w.shape[0], -1)).float()
        own = bias is not None and bias.numel() == w.shape[0]  # (one per unit: else not a column)
        return cls(w, bias.detach().float().reshape(-1) if own and bias is not None else None)

    @property
    def shape(self) -> tuple[int, int]:
        return self.weight.shape[0], self.weight.shape[1] + (self.bias is not None)

    def rows(self) -> torch.Tensor:
        if self.bias is None:
            return self.weight
        return torch.cat([self.weight, self.bias.reshape(-1, 1)], dim=1)

    def columns(self, cols: torch.Tensor) -> torch.Tensor:
        """The rows' entries in columns ``cols`` (sorted): the bias, when asked for, is the last."""
        fan = self.weight.shape[1]
        if self.bias is None or int(cols[-1]) < fan:
            return self.weight.index_select(1, cols)
        return torch.cat([self.weight.index_select(1, cols[:-1]), self.bias.reshape(-1, 1)], dim=1)

    def finite(self) -> torch.Tensor:
        """Whether every entry is finite (a norm that overflows says no: then the rows are screened whole)."""
        norm = torch.linalg.vector_norm(self.weight)
        return (norm if self.bias is None else norm + torch.linalg.vector_norm(self.bias)).isfinite()


GradRows = Callable[[], "torch.Tensor | None"]


@torch.no_grad()
def symmetry(rows: torch.Tensor, grad_rows: torch.Tensor | None = None, rtol: float = 1e-5) -> Symmetry:
    """Groups of units with identical incoming weights, split further where their gradients differ."""
    return _symmetry(rows, _maybe_twinned(rows), lambda: grad_rows, rtol)


def _symmetry(rows: torch.Tensor, candidates: torch.Tensor, grad_rows: GradRows, rtol: float) -> Symmetry:
    """The exact groups among the ``candidates`` (every other unit is distinct); ``grad_rows`` is called
    only when some units share their weights."""
    units = rows.shape[0]
    if units == 0:
        return Symmetry(0, 0, 0, 0)
    if candidates.numel() == 0:  # the usual case: every unit distinct, decided without sorting rows
        return Symmetry(units, units, 1, 0)
    _, inverse, counts = torch.unique(rows[candidates], dim=0, return_inverse=True, return_counts=True)
    sizes = [1] * (units - candidates.numel() + int((counts == 1).sum()))
    shared = torch.nonzero(counts > 1).flatten().tolist()
    grads = grad_rows() if shared else None
    for gid in shared:
        members = candidates[torch.nonzero(inverse == gid).flatten()]
        sizes.extend(_split_by_gradient(grads[members] if grads is not None else None, len(members), rtol))
    return Symmetry(units, len(sizes), max(sizes), sum(s for s in sizes if s > 1))


SCREEN_BATCH = 1 << 22  # entries of row matrices screened in one stack (32 MiB in float64)


@torch.no_grad()
def symmetries(items: Sequence[tuple[torch.Tensor | UnitRows, GradRows]], rtol: float = 1e-5
               ) -> list[Symmetry]:
    """:func:`symmetry` of many weights, each given as its unit rows (a tensor, or :class:`UnitRows`) and a
    callable returning its gradient's rows (called only for a weight whose units share weights). Matrices
    of one shape are screened together, one batched projection and sort for all of them (the test of
    :func:`_maybe_twinned`); only those where two units may be twins take the exact path. The groups are
    exact either way."""
    lazy = [r if isinstance(r, UnitRows) else UnitRows(r, None) for r, _ in items]
    out: dict[int, Symmetry] = {}
    batches: dict[tuple[Any, ...], list[int]] = {}
    for i, rows in enumerate(lazy):
        units, fan = rows.shape
        if units < 2 or units * fan <= SMALL_ROWS:
            out[i] = _exact(rows.rows(), items[i][1], rtol)
        else:
            batches.setdefault((units, fan, rows.weight.dtype, rows.weight.device), []).append(i)
    for key, idx in batches.items():
        per = max(1, SCREEN_BATCH // (key[0] * key[1]))
        for k in range(0, len(idx), per):
            chunk = idx[k:k + per]
            for i, flag in zip(chunk, _screen([lazy[i] for i in chunk]), strict=True):
                out[i] = _exact(lazy[i].rows(), items[i][1], rtol) if flag else Symmetry(key[0], key[0], 1, 0)
    return [out[i] for i in range(len(items))]


def _exact(rows: torch.Tensor, grads: GradRows, rtol: float) -> Symmetry:
    return _symmetry(rows, _maybe_twinned(rows), grads, rtol)


def _screen(mats: Sequence[UnitRows]) -> list[bool]:
    """For each matrix (units, fan-in) of one shape: whether two of its rows may be twins, as the projection
    of whole rows (:func:`_project`) says. Wide rows are first projected on a fixed subset of
    ``SCREEN_COLUMNS`` columns, where twins agree too: only a matrix flagged there, or with an entry that is
    not finite, is projected whole. So most weights are read once in float32 instead of copied to float64
    and multiplied (a fifth of diagnose on a mid-sized CNN), and the answer is the whole projection's."""
    cols = _columns(mats[0].shape[1], mats[0].weight.device)
    if cols is None:
        return _project(_stack([m.rows() for m in mats]))
    near = _project(_stack([m.columns(cols) for m in mats]))
    finite: list[bool] = torch.stack([m.finite() for m in mats]).tolist()
    return [_project(m.rows().unsqueeze(0))[0] if flag or not ok else False
            for m, flag, ok in zip(mats, near, finite, strict=True)]


def _stack(mats: Sequence[torch.Tensor]) -> torch.Tensor:
    return mats[0].unsqueeze(0) if len(mats) == 1 else torch.stack(list(mats))


def _project(rows: torch.Tensor) -> list[bool]:
    """For each matrix of a stack (matrices, units, fan-in): whether two of its rows have projections
    within rounding of each other, or some projection is not finite (then its rows may be twins)."""
    x = rows.double()
    h = x @ _direction(x.shape[2], x.device)
    # 1e-9 sum|row| (the single-matrix bound) <= 1e-9 sqrt(fan-in) |row|_2: a looser bound from one pass over
    # the float32 rows, not an abs copy and sum in float64 (the groups found are exact either way)
    norms = torch.linalg.vector_norm(rows, dim=2).amax(dim=1, keepdim=True).double()
    tol = 1e-9 * math.sqrt(x.shape[2]) * norms + 1e-300
    close = (h.sort(dim=1).values.diff(dim=1) <= tol).any(dim=1)
    flagged: list[bool] = (close | ~torch.isfinite(h).all(dim=1)).tolist()
    return flagged


SCREEN_COLUMNS = 64  # columns of the first projection of wide rows


@functools.lru_cache(maxsize=64)
def _columns(n: int, device: torch.device) -> torch.Tensor | None:
    """A fixed random subset of ``SCREEN_COLUMNS`` of ``n`` columns, in order (None: ``n`` is no wider),
    from a private generator (not torch's global one)."""
    if n <= SCREEN_COLUMNS:
        return None
    pick = torch.randperm(n, generator=torch.Generator().manual_seed(1))[:SCREEN_COLUMNS]
    return pick.sort().values.to(device)


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


RANK_LIMIT = 128  # largest smaller side whose effective rank diagnose computes by default (cost ~ n^3)
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
    return effective_ranks([(weight, transposed)])[0]


@torch.no_grad()
def effective_ranks(weights: Sequence[tuple[torch.Tensor, bool]]) -> list[float | None]:
    """:func:`effective_rank` of many ``(weight, transposed)``: the Gram matrices of one size go through one
    batched eigendecomposition (on CPU the same LAPACK call per matrix) and one vectorized entropy, instead of
    a dozen small tensor operations and host transfers around each."""
    out: list[float | None] = [math.nan] * len(weights)
    groups: dict[tuple[Any, ...], list[tuple[int, torch.Tensor]]] = {}
    first: dict[tuple[int, bool], int] = {}  # a tied weight (an LM head sharing the embedding) once
    for i, (weight, transposed) in enumerate(weights):
        if weight.dim() < 2 or weight.numel() == 0 or first.setdefault((id(weight), transposed), i) != i:
            continue
        if rank_skipped(weight):
            out[i] = None
            continue
        gram = _gram(weight, transposed)
        n = gram.shape[0]  # above the default limit (full_rank=True) each alone: no stacked copy of big grams
        key = (n, gram.dtype, gram.device) if n <= RANK_LIMIT else (i,)
        groups.setdefault(key, []).append((i, gram))
    for items in groups.values():
        grams = items[0][1].unsqueeze(0) if len(items) == 1 else torch.stack([g for _, g in items])
        for (i, _), rank in zip(items, _entropy_ranks(grams), strict=True):
            out[i] = rank
    return [out[first.get((id(w), t), i)] for i, (w, t) in enumerate(weights)]


def _gram(weight: torch.Tensor, transposed: bool) -> torch.Tensor:
    """The smaller Gram matrix of the weight seen as (output units, fan-in); called under no_grad."""
    w = weight.transpose(0, 1) if transposed else weight
    w = w if w.dim() == 2 else w.reshape(w.shape[0], -1)
    w = w.double() if w.dtype == torch.float64 else w.float()
    return w.T @ w if w.shape[0] >= w.shape[1] else w @ w.T


def _entropy_ranks(grams: torch.Tensor) -> list[float]:
    """exp(entropy of the normalized singular values) from a stack of Gram matrices; nan where one is not
    finite, 0 for a zero matrix."""
    finite: list[bool] = torch.isfinite(grams).flatten(1).all(dim=1).tolist()
    if not any(finite):
        return [math.nan] * len(finite)
    if not all(finite):
        grams = grams[torch.tensor(finite, device=grams.device)]
    eig = torch.linalg.eigvalsh(grams).double()
    noise = grams.shape[-1] * torch.finfo(grams.dtype).eps * eig.amax(dim=1, keepdim=True).clamp(min=0)
    s = torch.where(eig > noise, eig, 0.0).sqrt()
    total = s.sum(dim=1, keepdim=True)
    p = s / total
    entropy = torch.where(p > 0, p * p.log(), 0.0).sum(dim=1)
    ranks = iter(torch.where(total.squeeze(1) == 0.0, 0.0, torch.exp(-entropy)).tolist())
    return [next(ranks) if ok else math.nan for ok in finite]


def norm(t: torch.Tensor | None) -> float | None:
    """The L2 norm, overflow-safe like :func:`moments`."""
    if t is None:
        return None
    t = _wide(t.detach() if t.requires_grad else t)  # (a gradient in a hook: no detach operation per call)
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


@torch.no_grad()
def norms(tensors: Sequence[torch.Tensor | None]) -> list[float | None]:
    """:func:`norm` of each tensor. float32/float64 tensors of one device and dtype take one
    ``torch._foreach_norm`` call (on CPU the same kernel, tensor by tensor) and one host transfer; a norm that
    over/underflows, and any other tensor, takes :func:`norm`."""
    out: list[float | None] = [None] * len(tensors)
    groups: dict[tuple[Any, ...], list[tuple[int, torch.Tensor]]] = {}
    for i, t in enumerate(tensors):
        if t is not None and t.numel() and t.dtype in _WIDE and t.device.type != "meta":
            groups.setdefault((t.device, t.dtype), []).append((i, t))
        else:
            out[i] = norm(t)
    for (_, dtype), items in groups.items():
        values = torch.stack(torch._foreach_norm([t for _, t in items])).tolist()
        zeros = []
        for (i, t), v in zip(items, values, strict=True):
            if _safe_norm(v, dtype):
                out[i] = v
            elif v == 0.0:
                zeros.append((i, t))
            else:
                out[i] = norm(t)
        _zero_norms(zeros, out)
    return out


def _zero_norms(items: list[tuple[int, torch.Tensor]], out: list[float | None]) -> None:
    """Tensors whose norm came out 0 (zero-initialized biases, half of a fresh transformer's parameters): 0
    when every entry is 0 (one max-abs pass for all of them), else :func:`norm` (the squares underflowed)."""
    if not items:
        return
    peaks = torch.stack(torch._foreach_norm([t for _, t in items], ord=math.inf)).tolist()
    for (i, t), peak in zip(items, peaks, strict=True):
        out[i] = 0.0 if peak == 0.0 else norm(t)


@torch.no_grad()
def means(tensors: Sequence[torch.Tensor]) -> list[float | None]:
    """Each tensor's mean (None for an empty or meta tensor), one host transfer per device. Summed in the
    tensor's own float32/float64 (half precision: float32) by torch's pairwise summation, whose error grows
    like log(n) rounding steps, not n: ``mean(dtype=float64)`` converts every entry on the way and costs
    ~18x more, a tenth of a small convnet's forward+backward over its weights."""
    out: list[float | None] = [None] * len(tensors)
    groups: dict[torch.device, list[int]] = {}
    for i, t in enumerate(tensors):
        if t.numel() and t.device.type != "meta":
            groups.setdefault(t.device, []).append(i)
    for idx in groups.values():
        sums = torch.stack([tensors[i].sum(dtype=_sum_dtype(tensors[i])).double() for i in idx]).tolist()
        for i, total in zip(idx, sums, strict=True):
            out[i] = total / tensors[i].numel()
    return out


def _sum_dtype(t: torch.Tensor) -> torch.dtype:
    return t.dtype if t.dtype in _WIDE else torch.float32


def _histc_range(x: torch.Tensor, lo: float, hi: float) -> tuple[float, float] | None:
    """histc's left edge and range width in the dtype of ``x`` (its edges and arithmetic are in that dtype),
    where :func:`_bin_rows` reproduces histc: float32/64 on CPU, a range whose products cannot overflow and
    that does not round to nothing in the dtype; None elsewhere (histc itself decides)."""
    limit = 1e30 if x.dtype == torch.float32 else 1e300
    if x.device.type != "cpu" or x.dtype not in _WIDE or not max(abs(lo), abs(hi)) < limit:
        return None
    if x.dtype == torch.float32:
        left = np.float32(lo)
        start, width = float(left), float(np.float32(hi) - left)
    else:
        start, width = lo, hi - lo
    return (start, width) if width > 0 and math.isfinite(width) else None


_WIDE = (torch.float32, torch.float64)


def _wide(t: torch.Tensor) -> torch.Tensor:
    """float16/bfloat16 -> float32 (their range overflows on squares); float32/64 as they are."""
    return t if t.dtype in _WIDE else t.float()

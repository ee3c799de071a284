"""Histograms of layer outputs: ``torch.histc``'s counts, by histc's own formula in vectorized operations,
and for many layers at once.

histc on CPU is a scalar loop (~15 ns per entry: 1 ms for a sampled 2**16-entry output), and each histogram
alone still takes half a dozen tensor operations, which on a small model cost more than the counting. A
:class:`HistogramBatch` holds a copy of each layer's (sampled) values and counts them all in one binning and
one ``bincount`` when read; the counts are histc's exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

HIST_SAMPLE = 1 << 16  # histograms of larger tensors count an evenly strided sample of this size
_WIDE = (torch.float32, torch.float64)
_Item = tuple[torch.Tensor, float, float, "Histogram"]


@dataclass
class Histogram:
    counts: list[int]
    edges: list[float]


class HistogramBatch:
    """Histograms counted together on :meth:`flush`, or when the values held reach ``limit`` entries
    (copies of the sampled values only: no layer output is kept alive)."""

    def __init__(self, limit: int = 1 << 22) -> None:
        self.limit = limit
        self._pending: dict[tuple[torch.dtype, int], list[_Item]] = {}
        self._held = 0

    def add(self, x: torch.Tensor, start: float, width: float, bins: int, hist: Histogram) -> None:
        self._pending.setdefault((x.dtype, bins), []).append((x.clone(), start, width, hist))
        self._held += x.numel()
        if self._held >= self.limit:
            self.flush()

    def flush(self) -> None:
        """Fill in the counts of every histogram added since the last flush."""
        for (_, bins), items in self._pending.items():
            for (*_, hist), counts in zip(items, _count(items, bins), strict=True):
                hist.counts = counts
        self._pending.clear()
        self._held = 0


def histc(x: torch.Tensor, lo: float, hi: float, bins: int, sample: int = HIST_SAMPLE,
          batch: HistogramBatch | None = None) -> Histogram:
    """Counts of the flat ``x`` over [lo, hi], its finite range (an empty range widened by 1/2 each side),
    on an evenly strided sample of about ``sample`` values; through ``batch`` when given (the counts are then
    filled in by its flush)."""
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-30):
        lo, hi = lo - 0.5, hi + 0.5
    if x.numel() > sample:
        x = x[:: -(-x.numel() // sample)]
    step = (hi - lo) / bins
    hist = Histogram([], [lo + i * step for i in range(bins + 1)])
    spec = bin_spec(x, lo, hi)
    if spec is None:
        hist.counts = [int(c) for c in torch.histc(x, bins=bins, min=lo, max=hi).tolist()]
    elif batch is not None:
        batch.add(x, *spec, bins, hist)
    else:
        hist.counts = _count([(x, *spec, hist)], bins)[0]
    return hist


def bin_spec(x: torch.Tensor, lo: float, hi: float) -> tuple[float, float] | None:
    """(left edge, width) of histc's range in the dtype of ``x``, as histc's arithmetic sees them; None where
    histc itself must count (not float32/64 on CPU, a range that rounds to nothing, products that could
    overflow)."""
    limit = 1e30 if x.dtype == torch.float32 else 1e300
    if x.device.type != "cpu" or x.dtype not in _WIDE or not max(abs(lo), abs(hi)) < limit:
        return None
    if x.dtype == torch.float32:  # histc's edges are float32 values, and so is its arithmetic
        left = np.float32(lo)
        start, width = float(left), float(np.float32(hi) - left)
    else:
        start, width = lo, hi - lo
    return (start, width) if width > 0 and math.isfinite(width) else None


def bin_counts(x: torch.Tensor, lo: float, hi: float, bins: int) -> list[int] | None:
    """``torch.histc(x, bins, lo, hi)``'s counts without histc (None: see :func:`bin_spec`)."""
    spec = bin_spec(x, lo, hi)
    return None if spec is None else _count([(x, *spec, Histogram([], []))], bins)[0]


def _count(items: list[_Item], bins: int) -> list[list[int]]:
    """histc's ``int((x - left) * bins / width)``, the top edge in the last bin, for flat tensors of one
    dtype: element by element the same float operations, so the same bins."""
    if len(items) == 1:
        x, start, width, _ = items[0]
        pos = torch.sub(x, start).mul_(bins).div_(width).to(torch.int32).clamp_(max=bins - 1)
        return [torch.bincount(pos, minlength=bins).tolist()]
    xs = torch.cat([x for x, *_ in items])
    which = torch.repeat_interleave(torch.tensor([x.numel() for x, *_ in items]))
    starts = torch.tensor([s for _, s, _, _ in items], dtype=xs.dtype)[which]
    widths = torch.tensor([w for _, _, w, _ in items], dtype=xs.dtype)[which]
    pos = xs.sub_(starts).mul_(bins).div_(widths).to(torch.int64).clamp_(max=bins - 1)
    pos += which * bins
    counts: list[list[int]] = torch.bincount(pos, minlength=len(items) * bins).view(-1, bins).tolist()
    return counts

"""Summaries over seeds: mean with a t-based 95% confidence interval, and paired/unpaired t-tests."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Summary:
    """Mean of ``n`` values with the half-width of its ``level`` confidence interval (t distribution)."""

    mean: float
    half_width: float
    n: int
    level: float = 0.95

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def format(self, digits: int = 3, *, percent: bool = False) -> str:
        k = 100.0 if percent else 1.0
        unit = "%" if percent else ""
        if self.n < 2 or not math.isfinite(self.half_width):
            return f"{self.mean * k:.{digits}f}{unit}"
        return f"{self.mean * k:.{digits}f} ± {self.half_width * k:.{digits}f}{unit}"

    def __str__(self) -> str:
        return self.format()

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "ci95": self.half_width, "n": self.n}


def summarize(values: Sequence[float], level: float = 0.95) -> Summary:
    """Mean ± t_{n-1, (1+level)/2} · s/√n; the half-width is NaN for one value, 0 when all are equal."""
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        raise ValueError("summarize needs at least one value")
    if a.size == 1:
        return Summary(float(a[0]), math.nan, 1, level)
    sem = float(a.std(ddof=1)) / math.sqrt(a.size)
    return Summary(float(a.mean()), float(stats.t.ppf((1 + level) / 2, a.size - 1)) * sem, int(a.size), level)


@dataclass(frozen=True)
class PairedComparison:
    """Difference a − b with its confidence interval and a two-sided t-test p-value."""

    difference: Summary
    p_value: float
    paired: bool

    @property
    def significant(self) -> bool:
        return self.p_value < 1 - self.difference.level

    def to_dict(self) -> dict[str, object]:
        return {"difference": self.difference.to_dict(), "p_value": self.p_value, "paired": self.paired}


def paired(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedComparison:
    """Paired t-test over seeds (run i of ``a`` and of ``b`` share seed i)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"paired samples differ in size: {x.shape} vs {y.shape}")
    diff = x - y
    p = float(stats.ttest_rel(x, y).pvalue) if np.ptp(diff) > 0 else (1.0 if diff[0] == 0 else 0.0)
    return PairedComparison(summarize(diff.tolist(), level), p, True)


def welch(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> PairedComparison:
    """Welch's unequal-variance t-test and interval for mean(a) − mean(b)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(va + vb)
    diff = float(x.mean() - y.mean())
    if se == 0:
        return PairedComparison(Summary(diff, 0.0, x.size + y.size, level), 1.0 if diff == 0 else 0.0, False)
    dof = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    p = float(2 * stats.t.sf(abs(diff) / se, dof))
    return PairedComparison(
        Summary(diff, float(stats.t.ppf((1 + level) / 2, dof)) * se, x.size + y.size, level), p, False
    )

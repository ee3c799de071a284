"""The per-layer record diagnose and monitor produce, and its plain-data form."""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from dataclasses import dataclass
from typing import Any

from .stats import Histogram, SignalMoments, Symmetry


@dataclass
class ParamStats:
    name: str
    shape: list[int]
    norm: float
    grad_norm: float | None
    mean: float | None = None

    @property
    def ratio(self) -> float | None:
        """||W|| / ||dL/dW||: how many gradient steps of size lr=1 it takes to move the weight by itself."""
        if self.grad_norm is None:
            return None
        return self.norm / self.grad_norm if self.grad_norm > 0 else math.inf


@dataclass
class LayerStats:
    """One call of one layer. ``output`` is the layer's output (the pre-activation), ``act`` what follows the
    activation (equal to ``output`` when none does). ``dead``: fraction of units never in their active region
    on the batch; ``saturated``: fraction of pre-activations where the activation's derivative is below 5% of
    its peak; ``grad_*``: of the loss with respect to the layer's output."""

    index: int
    name: str
    kind: str
    activation: str | None
    shape: list[int]
    output: SignalMoments
    act: SignalMoments
    dead: float | None = None
    saturated: float | None = None
    grad_norm: float | None = None
    grad_rms: float | None = None
    params: list[ParamStats] = dataclasses.field(default_factory=list)
    symmetry: Symmetry | None = None
    effective_rank: float | None = None
    histogram: Histogram | None = None

    @property
    def weight(self) -> ParamStats | None:
        """The layer's main weight (its first matrix-shaped parameter)."""
        return next((p for p in self.params if len(p.shape) >= 2), self.params[0] if self.params else None)

    @property
    def mean_shift(self) -> float:
        """|mean| / RMS of the layer's output: 0 for a centred signal, 1 for a constant one."""
        m = self.output
        if not (math.isfinite(m.rms) and m.rms > 0):
            return math.nan
        return abs(m.mean) / m.rms

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        for p, stats in zip(d["params"], self.params, strict=False):
            p["ratio"] = stats.ratio
        if self.symmetry is not None:
            d["symmetry"]["fraction"] = self.symmetry.fraction
        d["mean_shift"] = self.mean_shift
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LayerStats:
        d = {k: v for k, v in d.items() if k != "mean_shift"}
        d["output"] = SignalMoments(**d["output"])
        d["act"] = SignalMoments(**d["act"])
        d["params"] = [ParamStats(**{k: v for k, v in p.items() if k != "ratio"}) for p in d["params"]]
        if d.get("symmetry") is not None:
            d["symmetry"] = Symmetry(**{k: v for k, v in d["symmetry"].items() if k != "fraction"})
        if d.get("histogram") is not None:
            d["histogram"] = Histogram(**d["histogram"])
        return cls(**d)


def growth_rate(values: list[float]) -> float | None:
    """The typical per-layer factor: the median ratio of consecutive values, skipping pairs that have
    underflowed to zero or overflowed (None when no pair is usable)."""
    ratios = [b / a for a, b in itertools.pairwise(values) if 0 < a < math.inf and 0 < b < math.inf]
    return statistics.median(ratios) if ratios else None


def jsonable(value: Any) -> Any:
    """Non-finite floats become the strings 'inf', '-inf', 'nan' (strict JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def from_jsonable(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    if isinstance(value, dict):
        return {k: from_jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_jsonable(v) for v in value]
    return value

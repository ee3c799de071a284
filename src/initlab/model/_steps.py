"""Typed post-steps of a plan's assignments: what happens to a parameter after its draws.

Each step is a small frozen dataclass that knows how to apply itself to the whole tensor (``apply``) and, when
it can, to a rectangular piece of it that starts at global row ``lo`` (``apply_piece``: sharded and
module-by-module fills). ``piecewise`` says whether a piece can be finished from its own values alone; the
others (:class:`RowNorm`, :class:`RowSum`, :class:`Center`, :class:`LooksLinear`) are handled by the counter
fill, which regenerates the rows it needs (:mod:`.plan_counter`). Legacy tuples (``("row", 3, 0.0)``...)
are converted by :func:`as_step`, so choosers may still give them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

StepKind = Literal["row", "slice", "row_norm", "row_sum", "center", "looks_linear", "scale"]


@dataclass(frozen=True)
class SetRow:
    """Row ``index`` (dim 0) set to ``value``: an embedding's padding row."""

    index: int
    value: float
    kind: ClassVar[StepKind] = "row"
    piecewise: ClassVar[bool] = True

    def apply(self, data: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> None:
        self.apply_piece(data, tuple(data.shape), 0)

    def apply_piece(self, local: torch.Tensor, shape: tuple[int, ...], lo: int) -> None:
        row = self.index % shape[0] - lo
        if 0 <= row < local.shape[0]:
            local[row].fill_(self.value)


@dataclass(frozen=True)
class SetSlice:
    """Entries ``start:stop`` of a 1-D tensor set to ``value``: an LSTM's forget-gate bias."""

    start: int
    stop: int
    value: float
    kind: ClassVar[StepKind] = "slice"
    piecewise: ClassVar[bool] = True

    def apply(self, data: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> None:
        self.apply_piece(data, tuple(data.shape), 0)

    def apply_piece(self, local: torch.Tensor, shape: tuple[int, ...], lo: int) -> None:
        n = local.shape[0] if local.dim() else 1
        start, stop = max(self.start - lo, 0), min(self.stop - lo, n)
        if start < stop:
            local[start:stop].fill_(self.value)


@dataclass(frozen=True)
class Scale:
    """Rows ``start:stop`` (dim 0; default all) multiplied by ``factor``: residual scalings (Fixup, T-Fixup,
    DeepNorm...), applied after the draws as ``w.mul_(factor)`` would be."""

    factor: float
    start: int = 0
    stop: int | None = None
    kind: ClassVar[StepKind] = "scale"
    piecewise: ClassVar[bool] = True

    def apply(self, data: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> None:
        self.apply_piece(data, tuple(data.shape), 0)

    def apply_piece(self, local: torch.Tensor, shape: tuple[int, ...], lo: int) -> None:
        if local.dim() == 0:
            local.mul_(self.factor)
            return
        stop = shape[0] if self.stop is None else self.stop
        start, end = max(self.start - lo, 0), min(stop - lo, local.shape[0])
        if start < end:
            local[start:end].mul_(self.factor)


@dataclass(frozen=True)
class RowNorm:
    """Each row (dim 0) rescaled to norm ``norm``: fixed-gain units for small fan-in."""

    norm: float
    kind: ClassVar[StepKind] = "row_norm"
    piecewise: ClassVar[bool] = False
    whole_rows: ClassVar[bool] = True

    def apply(self, data: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> None:
        data.mul_(_per_row(data, self.norm / _rows(data).norm(dim=1).clamp_min(1e-30)))


@dataclass(frozen=True)
class RowSum:
    """Each row (dim 0) shifted by a constant so that its sum is ``+-total`` (its sign kept). For an input
    whose mean carries most of its second moment (a squeeze-excitation's pooled features): the output is
    then mostly ``mean x row sums``, whose average square over the rows is one chi-square draw with as many
    degrees of freedom as outputs (EfficientNet's 8-channel SE squeeze measured 0.26x its plan); with fixed
    sums it is the plan's ``mean^2 * total^2``. The shift moves each entry by about ``total / entries``."""

    total: float
    kind: ClassVar[StepKind] = "row_sum"
    piecewise: ClassVar[bool] = False
    whole_rows: ClassVar[bool] = True

    def apply(self, data: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> None:
        rows = _rows(data)
        sums = rows.sum(1)
        target = torch.where(sums >= 0, self.total, -self.total)
        data.add_(_per_row(data, (target - sums) / rows.shape[1]))


def _rows(data: torch.Tensor) -> torch.Tensor:
    """``data`` as a matrix of its rows (dim 0)."""
    return data.reshape(data.shape[0] if data.dim() else 1, -1)


def _per_row(data: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """One value per row of ``data``, shaped to broadcast over the row's entries."""
    return values.view(-1, *(1,) * (data.dim() - 1))


@dataclass(frozen=True)
class Center:
    """A 1-D bias minus ``coef`` times the row sums of ``weight`` (qualified name): cancels the mean that the
    previous activation feeds into the layer."""

    weight: str
    coef: float
    kind: ClassVar[StepKind] = "center"
    piecewise: ClassVar[bool] = False

    def apply(self, data: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> None:
        if not self.coef:
            return
        if params is None or self.weight not in params:
            raise ValueError(f"centering needs the values of {self.weight}")
        w = params[self.weight].detach()
        data.sub_(self.coef * w.reshape(w.shape[0], -1).sum(1).to(data.dtype))


@dataclass(frozen=True)
class LooksLinear:
    """The weight is laid out ``[[A, -A], [-A, A]]`` (``role`` "mid"), ``[[A], [-A]]`` ("first") or
    ``[A, -A]`` ("last") with ``A`` drawn: relu(u) - relu(-u) = u. Drawn by the fill, not after it."""

    role: str
    kind: ClassVar[StepKind] = "looks_linear"
    piecewise: ClassVar[bool] = False

    def apply(self, data: torch.Tensor, params: Mapping[str, torch.Tensor] | None = None) -> None:
        """Nothing: the fill draws the layout."""


Step = SetRow | SetSlice | Scale | RowNorm | RowSum | Center | LooksLinear
_LEGACY: dict[str, Any] = {"row": SetRow, "slice": SetSlice, "scale": Scale, "row_norm": RowNorm,
                           "row_sum": RowSum, "center": Center, "looks_linear": LooksLinear}


def as_step(step: Step | tuple[Any, ...]) -> Step:
    """A typed step from a typed step or a legacy tuple ``(kind, *args)``."""
    if isinstance(step, SetRow | SetSlice | Scale | RowNorm | RowSum | Center | LooksLinear):
        return step
    if not isinstance(step, tuple) or not step or step[0] not in _LEGACY:
        raise ValueError(f"unknown post step {step!r}; steps are {', '.join(_LEGACY)}")
    out: Step = _LEGACY[step[0]](*step[1:])
    return out


def as_steps(steps: Iterable[Step | tuple[Any, ...]]) -> tuple[Step, ...]:
    return tuple(as_step(s) for s in steps)


def looks_linear_role(steps: Iterable[Step]) -> str | None:
    return next((s.role for s in steps if isinstance(s, LooksLinear)), None)


def piecewise(steps: Iterable[Step]) -> bool:
    return all(s.piecewise for s in steps)

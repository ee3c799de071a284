"""Plan transforms: schemes that are a base scheme's plan, edited (Fixup, T-Fixup, DeepNorm, GPT-2 residual
scaling, SkipInit/ReZero, zero-init residual gamma, and later muP).

A transform is ``fn(edit: PlanEdit, options) -> None`` registered with :func:`register_plan_transform` under a
scheme name with a base scheme; ``init_model(model, name)`` plans the base scheme, lets the transform edit a
copy of that plan through :class:`PlanEdit` (scale rows, zero, redraw, add learnable scalars) -- the report's
rows follow every edit, and the predicted variances are recomputed from the edited plan -- and then commits it
with the one applier. So a transform has a real dry run, runs with either generator, and goes through
``materialize`` and ``init_sharded`` like any per-parameter scheme.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from ..catalog import draws as d
from ..errors import InitlabTypeError, InitlabValueError
from ._apply import Journal
from ._steps import Scale
from .graph import ModelGraph
from .plan import Assignment, Plan
from .report import InitReport, Row


@dataclass(frozen=True)
class AddScalar:
    """A learnable scalar parameter ``attr`` (initial ``value``) registered on module ``owner``, with a
    forward hook (``pre``: a forward pre-hook) that applies it: a structural step, committed (and undone) by
    the applier with the values."""

    owner: str
    attr: str
    value: float
    hook: Callable[..., Any] | None = None
    pre: bool = False


@dataclass
class StructuralPlan(Plan):
    """A plan that also adds scalars (:class:`AddScalar`)."""

    scalars: list[AddScalar] = field(default_factory=list)


TransformFn = Callable[["PlanEdit", dict[str, Any]], None]


@dataclass(frozen=True)
class PlanTransform:
    name: str
    fn: TransformFn
    base: str
    defaults: dict[str, Any]


_TRANSFORMS: dict[str, PlanTransform] = {}


def register_plan_transform(name: str, fn: TransformFn, *, base: str = "auto",
                            defaults: dict[str, Any] | None = None, overwrite: bool = False) -> TransformFn:
    """Make ``init_model(model, name, **options)`` plan ``base`` (or ``options["base"]`` when ``defaults``
    has a ``"base"``), then call ``fn(edit, options)`` to edit the plan. ``defaults``: the options the scheme
    takes and their values."""
    if not callable(fn):
        raise InitlabTypeError(f"a plan transform is a callable (edit, options) -> None, got {fn!r}")
    if name in _TRANSFORMS and not overwrite and _TRANSFORMS[name].fn is not fn:
        raise InitlabValueError(
            f"plan transform {name!r} is already registered (pass overwrite=True to replace it)")
    _TRANSFORMS[name] = PlanTransform(name, fn, base, dict(defaults or {}))
    return fn


def transform_options(t: PlanTransform, options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(t.defaults))
    if unknown:
        raise InitlabTypeError(f"unexpected option(s) {unknown} for scheme {t.name!r}; it takes "
                        f"{sorted(t.defaults)}")
    return {**t.defaults, **options}


class PlanEdit:
    """A copy of a plan and its report that a transform edits; rows follow every edit."""

    def __init__(self, graph: ModelGraph, plan: Plan, report: InitReport, scheme: str):
        self.graph = graph
        self.plan = StructuralPlan(list(plan.assignments), list(plan.reset_stats))
        self.report = report
        self.scheme = scheme
        self.index = {a.name: k for k, a in enumerate(self.plan.assignments)}
        self.index.update({alias: self.index[canon] for canon, aliases in graph.tied.items()
                           for alias in aliases if canon in self.index})

    # ---- reading -------------------------------------------------------------------------------------------
    def assignment(self, name: str) -> Assignment | None:
        k = self.index.get(name)
        return None if k is None else self.plan.assignments[k]

    def shape(self, name: str) -> tuple[int, ...] | None:
        a = self.assignment(name)
        return None if a is None else tuple(a.shape)

    def _row(self, name: str) -> Row:
        try:
            return self.report.row(name)
        except KeyError:
            row = Row(name, "", self.shape(name) or (), self.scheme, self.scheme)
            self.report.rows.append(row)
            return row

    def _set(self, name: str, a: Assignment) -> None:
        self.plan.assignments[self.index[name]] = a

    def _row_of(self, name: str) -> Row:
        a = self.assignment(name)
        return self._row(a.name if a is not None else name)

    # ---- edits ---------------------------------------------------------------------------------------------
    def scale(self, name: str, factor: float, note: str, rows: tuple[int, int] | None = None) -> None:
        """Multiply the parameter (or its rows ``start:stop``) by ``factor`` after its draws."""
        a = self.assignment(name)
        if a is None:
            raise InitlabValueError(
                f"{self.scheme}: {name} is not planned (kept by a rule?): it cannot be scaled")
        start, stop = rows if rows is not None else (0, None)
        self._set(name, replace(a, post=(*a.post, Scale(float(factor), start, stop))))
        row = self._row_of(name)
        share = 1.0 if rows is None else (rows[1] - rows[0]) / max(a.shape[0], 1)
        gain2 = share * factor * factor + (1.0 - share)
        if row.std is not None:
            if row.mean:  # a scaled block of a non-centred draw: the std of the whole is not one number
                row.std = None if share < 1 else row.std * abs(factor)
            else:
                row.std *= math.sqrt(gain2)
        if row.mean is not None and share == 1:
            row.mean *= factor
        row.bound = None if row.bound is None else row.bound * max(abs(factor), 1.0 if share < 1 else 0.0)
        row.scheme, row.note = self.scheme, note

    def zero(self, name: str, note: str) -> None:
        a = self.assignment(name)
        if a is None:
            raise InitlabValueError(
                f"{self.scheme}: {name} is not planned (kept by a rule?): it cannot be zeroed")
        self._set(name, replace(a, draws=(d.Constant(0.0),) * len(a.draws), post=()))
        row = self._row_of(name)
        row.std, row.mean, row.bound, row.scheme, row.note = 0.0, 0.0, None, "zeros", note

    def redraw(self, name: str, draw: d.Draw, label: str, note: str) -> None:
        from .plan import stats_of

        a = self.assignment(name)
        if a is None:
            raise InitlabValueError(
                f"{self.scheme}: {name} is not planned (kept by a rule?): it cannot be redrawn")
        self._set(name, replace(a, draws=(draw,) * len(a.draws), post=()))
        row = self._row_of(name)
        row.mean, row.std, row.bound = stats_of(draw, a.shape)
        row.scheme, row.note = label, note

    def add_scalar(self, scalar: AddScalar) -> None:
        if any(s.owner == scalar.owner and s.attr == scalar.attr for s in self.plan.scalars):
            return
        self.plan.scalars.append(scalar)

    def finish(self) -> tuple[Plan, InitReport]:
        from .plan import predict_variances

        self.report.scheme = self.scheme
        self.report.plan = self.plan
        predict_variances(self.graph, self.report)
        if self.plan.scalars:
            names = ", ".join(f"{s.owner}.{s.attr}" if s.owner else s.attr for s in self.plan.scalars[:4])
            more = f" (+{len(self.plan.scalars) - 4})" if len(self.plan.scalars) > 4 else ""
            self.report.notes.append(f"{self.scheme} adds {len(self.plan.scalars)} learnable scalar(s): "
                                     f"{names}{more}")
        return self.plan, self.report


# ---- committing structural steps ---------------------------------------------------------------------------
def check_scalars(model: nn.Module, scalars: list[AddScalar]) -> None:
    """Fail before any write when a scalar cannot be added (no such module, the name is taken)."""
    for s in scalars:
        try:
            module = model.get_submodule(s.owner) if s.owner else model
        except AttributeError:
            raise InitlabValueError(
                f"{s.owner!r} is not a module of the model: cannot add {s.attr}") from None
        if hasattr(module, s.attr):
            raise InitlabValueError(
                f"{s.owner or 'the model'} already has {s.attr!r}: the scheme was applied "
                             "before")


def add_scalars(model: nn.Module, scalars: list[AddScalar], journal: Journal) -> None:
    """Register every scalar and its hook through ``journal`` (undone on failure)."""
    hooked: set[int] = set()
    for s in scalars:
        module = model.get_submodule(s.owner) if s.owner else model
        ref = next((p for p in module.parameters() if p.is_floating_point()), None)
        dtype = ref.dtype if ref is not None else torch.float32
        device = ref.device if ref is not None else torch.device("cpu")
        journal.install(module._parameters, s.attr,
                        nn.Parameter(torch.full((), s.value, dtype=dtype, device=device)))
        if s.hook is None or (not s.pre and id(module) in hooked):
            continue
        if not s.pre:
            hooked.add(id(module))
        handle = module.register_forward_pre_hook(s.hook) if s.pre else module.register_forward_hook(s.hook)
        journal.on_undo(handle.remove)


# ---- a built-in transform ----------------------------------------------------------------------------------
def _scaled(edit: PlanEdit, options: dict[str, Any]) -> None:
    """Every weight layer's main weight times ``factor`` (biases, norms and embeddings as the base planned
    them): the lab's "what if the init were ×0.1 or ×10 too large" experiments."""
    factor = float(options["factor"])
    if not math.isfinite(factor):
        raise InitlabValueError(f"scaled: factor must be finite, got {factor}")
    for info in edit.graph.layers:
        name = info.params.get(info.weight_local)
        if info.kind.weight and name is not None and edit.assignment(name) is not None and factor != 1.0:
            edit.scale(name, factor, f"{edit.report.scheme} x {factor:g}")


register_plan_transform("scaled", _scaled, defaults={"base": "auto", "factor": 1.0})

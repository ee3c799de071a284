"""μP and spectral init as a plan transform, and the ``init_model`` schemes ``"mup"`` and ``"spectral"``.

The base scheme (``torch:default`` unless ``base_scheme=``) is planned twice from shapes: on the model and on
the base (the same architecture at the base width, usually on meta). μP is defined to *be* the base scheme
at the base width; at another width each parameter's std is the base std times its class's factor
(Tensor Programs V, Table 3, with width_mult = fan_in / base fan_in):

====================  ======================  =====================================================
class                 μP std                  spectral std (Yang, Simon & Bernstein 2023)
====================  ======================  =====================================================
input, vector, fixed  base std                base std x s(fan_in, fan_out) / s(base fans)
hidden                base std / sqrt(mult)   idem, s = min(1, sqrt(fan_out / fan_in)) / sqrt(fan_in)
output                base std / mult (or 0)  idem (spectral norm of W proportional to
                                              sqrt(fan_out / fan_in))
====================  ======================  =====================================================

Each assignment's draws are scaled by target / current std (a normal's std, a uniform's bounds, an
orthogonal's gain), so the counter-based generator draws the same underlying numbers: μP weights are the
standard-parametrization weights times a per-parameter factor. With a dict base the base std is inferred as
current std x sqrt(fan_in / base fan_in): exact for fan_in schemes (He, LeCun, torch default), said in the
report. The transformed plan is what dry run, ``materialize`` and ``init_sharded`` use."""

from __future__ import annotations

import math
import secrets
from dataclasses import replace
from typing import Any, Literal

from torch import nn

from ..catalog import draws as d
from ..errors import InitlabTypeError, InitlabValueError
from ..model import InitReport, ModelGraph, Plan, SchemeOptions, init_model, register_model_scheme
from ..model.plan import Assignment, commit_plan, prepare_plan, stats_of
from ._classify import Classification, ParamClass, classify
from ._forward import attention_findings, install_readout_hooks

Variant = Literal["mup", "spectral"]
Readout = Literal["mup", "zero"]


def _spectral(fan_in: float, fan_out: float) -> float:
    return min(1.0, math.sqrt(fan_out / fan_in)) / math.sqrt(fan_in)


def factor(c: ParamClass, variant: Variant = "mup") -> float:
    """Target std / base std of a parameter of class ``c`` (the zero readout aside)."""
    if c.kind in ("vector", "fixed"):
        return 1.0
    if variant == "spectral":
        return _spectral(c.fan_in, c.fan_out) / _spectral(c.base_fan_in, c.base_fan_out)
    if c.kind == "hidden":
        return 1.0 / math.sqrt(c.mult_in)
    if c.kind == "output":
        return 1.0 / c.mult_in
    return 1.0


def scale_draw(draw: d.Draw, f: float) -> d.Draw:
    """``draw`` for the values times ``f``."""
    if f == 1.0:
        return draw
    if isinstance(draw, d.Constant):
        return d.Constant(draw.value * f)
    if isinstance(draw, d.Normal):
        return d.Normal(draw.mean * f, draw.std * f)
    if isinstance(draw, d.Uniform):
        lo, hi = sorted((draw.low * f, draw.high * f))
        return d.Uniform(lo, hi)
    if isinstance(draw, d.TruncatedNormal):
        return replace(draw, loc=draw.loc * f, scale=draw.scale * f)
    if isinstance(draw, d.Sparse):
        return replace(draw, std=draw.std * f)
    if isinstance(draw, d.Orthogonal | d.Eye | d.Dirac | d.DeltaOrthogonal):
        return replace(draw, gain=draw.gain * f)
    raise InitlabValueError(
        f"{type(draw).__name__} draws cannot be rescaled for μP: choose another base_scheme")


def _std(a: Assignment) -> float | None:
    block = (a.shape[0] // len(a.draws), *a.shape[1:]) if a.shape else a.shape
    return stats_of(a.draws[0], block)[1]


def _base_std(a: Assignment, c: ParamClass, current: float, base: dict[str, float | None] | None) -> float:
    if base is None:
        return current * math.sqrt(c.mult_in)
    value = base.get(a.name)
    if value is None:
        raise InitlabValueError(
            f"{a.name}: the base scheme gives no std on the base model; pass a dict base or "
                         "another base_scheme")
    return value


def factors(plan: Plan, classes: Classification, *, base_report: InitReport | None = None,
            variant: Variant = "mup", readout: Readout = "mup") -> dict[str, float]:
    """Per planned parameter, the factor its draws are scaled by (0: zero readout)."""
    base = None if base_report is None else {
        n: r.std for r in base_report.rows for n in (r.name, *r.tied)}
    out: dict[str, float] = {}
    for a in plan.assignments:
        try:
            c = classes[a.name]
        except KeyError:
            continue  # parametrized weights (named by their logical tensor): left as planned, said in notes
        current = _std(a)
        if c.kind == "output" and readout == "zero":
            out[a.name] = 0.0
        elif current:
            out[a.name] = _base_std(a, c, current, base) * factor(c, variant) / current
        else:  # constants (zero biases, unit norm gains): the same at every width
            out[a.name] = 1.0
    return out


def mup_transform(plan: Plan, report: InitReport, classes: Classification, *,
                  base_report: InitReport | None = None, variant: Variant = "mup",
                  readout: Readout = "mup") -> Plan:
    """The μP (or spectral) plan from the base scheme's ``plan``/``report`` on the model (pure: the inputs
    are not changed). ``base_report``: the base scheme's report on the base model (else the base std is
    inferred from fan_in)."""
    del report  # the rows are not needed to rescale; kept in the signature for the plan-transform mechanism
    scale = factors(plan, classes, base_report=base_report, variant=variant, readout=readout)
    out = Plan(reset_stats=list(plan.reset_stats))
    for a in plan.assignments:
        f = scale.get(a.name, 1.0)
        if f == 0:
            draws: tuple[d.Draw, ...] = tuple(d.Constant(0.0) for _ in a.draws)
        else:
            draws = tuple(scale_draw(x, f) for x in a.draws)
        out.assignments.append(replace(a, draws=draws))
    return out


def _rows(report: InitReport, classes: Classification, scale: dict[str, float], variant: str) -> None:
    for r in report.rows:
        if r.name not in scale:
            if r.status == "init" and r.name not in classes.params:
                report.warn(f"{r.name}: not classified for {variant} (parametrized?): left as the base "
                            "scheme")
            continue
        f, c = scale[r.name], classes[r.name]
        r.scheme = f"{variant}({r.scheme})"
        r.rule = f"{variant}:{c.kind}"
        r.std = None if r.std is None else r.std * f
        r.bound = None if r.bound is None else r.bound * f
        r.mean = None if r.mean is None else r.mean * f
        r.var_out = None
        r.note = (r.note + "; " if r.note else "") + f"x{f:.4g} (width_mult {c.mult_in:g})"


_DEFAULTS: dict[str, Any] = {"base": None, "base_scheme": "torch:default", "readout": "mup", "forward": True}


def _options(opts: SchemeOptions, variant: str) -> dict[str, Any]:
    unknown = sorted(set(opts.extra) - set(_DEFAULTS))
    if unknown:
        raise InitlabTypeError(f"unexpected option(s) {unknown} for scheme {variant!r}; it takes "
                        f"{sorted(_DEFAULTS)}")
    kw = {**_DEFAULTS, **opts.extra}
    if kw["base"] is None:
        raise InitlabValueError(
            f"init_model(model, {variant!r}) needs base=: the same architecture at the base "
                         "width (`with torch.device('meta'): base = make(64)`) or a dict name -> base shape")
    if kw["readout"] not in ("mup", "zero"):
        raise InitlabValueError(f"readout must be 'mup' (std / width_mult) or 'zero', got {kw['readout']!r}")
    return kw


def plan_width(model: nn.Module, graph: ModelGraph | None, variant: Variant, kw: dict[str, Any],
               rules: Any = None) -> tuple[Plan, InitReport, Classification]:
    """Classify, plan the base scheme on the model and the base, transform: nothing in the model changes."""
    classes = classify(model, kw["base"])
    if variant == "spectral" and classes.readouts:
        raise InitlabValueError(
            "the spectral variant has no rule for a readout tied to the embedding: use 'mup'")
    report = init_model(model, kw["base_scheme"], graph=graph, rules=rules, dry_run=True)
    base_report = None
    if isinstance(kw["base"], nn.Module):
        base_report = init_model(kw["base"], kw["base_scheme"], rules=rules, dry_run=True)
    else:
        report.notes.append("dict base: base std inferred as std x sqrt(fan_in / base fan_in) (exact for "
                            "fan_in schemes); pass a base module for other base schemes")
    scale = factors(report.plan, classes, base_report=base_report, variant=variant, readout=kw["readout"])
    plan = mup_transform(report.plan, report, classes, base_report=base_report, variant=variant,
                         readout=kw["readout"])
    report = report.copy()
    report.plan, report.scheme = plan, variant
    _rows(report, classes, scale, variant)
    report.output_var = None
    if report.graph is not None:
        from ..model.plan import predict_variances

        predict_variances(report.graph, report)
    report.notes.append(f"{variant} from base scheme {kw['base_scheme']}: {classes.summary()}")
    report.notes.extend(classes.notes)
    for line in attention_findings(model):
        report.warn(f"μP forward: {line}")
    return plan, report, classes


def _scheme(variant: Variant) -> Any:
    def scheme(model: nn.Module, graph: ModelGraph, opts: SchemeOptions) -> InitReport:
        kw = _options(opts, variant)
        plan, report, classes = plan_width(model, graph, variant, kw, opts.rules)
        if classes.readouts and not kw["forward"]:
            report.warn("tied readout: multiply its input by " + ", ".join(
                f"{s:.4g} ({n})" for n, s in classes.readouts.items()) + " in your forward (forward=False)")
        if opts.dry_run:
            if kw["forward"] and classes.readouts:  # materialize/init_sharded land here: say what they skip
                report.notes.append(f"readout multiplier hook(s) on {', '.join(classes.readouts)} not "
                                    "installed by a dry run: initlab.width.mup_forward(model, base) installs "
                                    "them")
            return report
        from ..model.plan_counter import counter_fill

        seed = opts.seed if opts.seed is not None else secrets.randbits(63)
        if opts.seed is None:
            report.notes.append(f"seed drawn: {seed} (pass seed= to repeat)")
        commit_plan(prepare_plan(model, plan, fill=counter_fill(plan, seed)))
        if kw["forward"]:
            report.notes += install_readout_hooks(model, classes.readouts)
        report.notes.append("drawn with the counter-based generator (same weights on any device or sharding)")
        return report

    scheme.plan_based = True  # type: ignore[attr-defined]  # init_model may pass generator="counter"
    return scheme


def register() -> None:
    """Called by :mod:`initlab.model` the first time ``"mup"`` or ``"spectral"`` is asked for."""
    register_model_scheme("mup", _scheme("mup"), overwrite=True)
    register_model_scheme("spectral", _scheme("spectral"), overwrite=True)

"""The methods as ``init_model`` schemes: runtime calibrators registered with
:func:`initlab.model.register_model_scheme`, the residual rules as plan transforms (:mod:`.residual`).
``init_model`` imports this module and calls :func:`register` the first time one of :data:`SCHEMES` is asked
for, so ``from initlab.model import init_model; init_model(m, "lsuv", ...)`` works without importing
:mod:`initlab.methods` first.

``init_model(model, "lsuv", example_input=batch, tol=0.1)`` and friends: the data-driven schemes take the
batch from ``example_input``; options not known to ``init_model`` arrive here (``options.extra``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from ..errors import InitlabTypeError
from ..model import InitReport, ModelGraph, SchemeOptions, init_model, register_model_scheme
from ..model._registry import registered
from ..model.report import Row
from . import residual
from ._sweep import DataInitError, scaled_params

DATA_KINDS = tuple(t.kind for t in registered() if t.data_init)  # from the layer registry


def _options(opts: SchemeOptions, allowed: dict[str, Any], scheme: str) -> dict[str, Any]:
    unknown = sorted(set(opts.extra) - set(allowed))
    if unknown:
        raise InitlabTypeError(
            f"unexpected option(s) {unknown} for scheme {scheme!r}; it takes {sorted(allowed)}")
    return {**allowed, **opts.extra}


def _batch(opts: SchemeOptions, scheme: str) -> Any:
    if opts.example_input is None:
        raise DataInitError(f"scheme {scheme!r} is data-driven: pass a batch as example_input=")
    return opts.example_input


def _data_layers(graph: ModelGraph, kinds: tuple[str, ...] = DATA_KINDS) -> list[nn.Module]:
    # unreached modules too: their weights may be used through F.linear (torchvision Swin), which LSUV
    # calibrates in flight; the sweep names the ones it cannot reach, with the reason
    return [i.module for i in graph.layers if i.kind in kinds and i.module is not None]


def _rows(report: InitReport, graph: ModelGraph, notes: dict[str, str], scheme: str) -> None:
    for info in graph.layers:
        if info.name not in notes or info.module is None:
            continue
        weight, _ = scaled_params(info.module)
        weights = [q for local, q in info.params.items() if local in ("weight", "out_proj.weight")]
        name = weights[0] if weights else info.name
        branch = "" if info.branch is None else f", residual branch {info.branch}"
        report.rows.append(Row(name, info.module_type, tuple(weight.shape), scheme, scheme, layer=info.name,
                               activation=info.activation, std=float(weight.detach().float().std()),
                               note=notes[info.name] + branch))


def _lsuv(model: nn.Module, graph: ModelGraph, opts: SchemeOptions) -> InitReport:
    from .lsuv import lsuv

    kw = _options(opts, {"tol": 0.1, "max_iter": 10, "pre_init": "orthogonal", "center": False,
                         "target": 1.0}, "lsuv")
    layers = _data_layers(graph, (*DATA_KINDS, "hf_conv1d"))  # LSUV rescales HF Conv1D exactly
    result = lsuv(model, _batch(opts, "lsuv"), generator=opts.generator, layers=layers, **kw)
    report = InitReport("lsuv", method=graph.method, graph=graph)
    notes = {c.name: f"var {c.initial_variance:.3g} -> {c.variance:.3f} in {c.iterations} iteration(s)"
             + ("" if c.converged else " (not converged)") for c in result.layers}
    _rows(report, graph, notes, "lsuv")
    report.notes.append(f"LSUV: tol {result.tol}, max_iter {result.max_iter}, {result.evaluations} layer "
                        f"evaluations in {result.forward_passes} forward pass")
    report.notes += [f"LSUV skipped {n}: {result.reasons.get(n, 'not reached by the forward pass')}"
                     for n in result.skipped]
    if not result.converged:
        report.warn("LSUV did not converge for some layers within max_iter")
    return report


def _per_channel(name: str, fn: Callable[..., Any], defaults: dict[str, Any]) -> Callable[..., InitReport]:
    def scheme(model: nn.Module, graph: ModelGraph, opts: SchemeOptions) -> InitReport:
        kw = _options(opts, defaults, name)
        layers = _data_layers(graph) if name == "data_dependent" else None
        extra = {"layers": layers} if layers is not None else {}
        result = fn(model, _batch(opts, name), generator=opts.generator, **kw, **extra)
        report = InitReport(name, method=graph.method, graph=graph)
        _rows(report, graph, {c.name: f"{c.channels} channels normalized on the batch" +
                              (f", {c.dead} dead" if c.dead else "") for c in result.layers}, name)
        report.notes += result.notes
        return report

    return scheme


def _delta_orthogonal(model: nn.Module, graph: ModelGraph, opts: SchemeOptions) -> InitReport:
    """Xiao et al. 2018 with the activation's gain: convolutions delta-orthogonal, dense layers orthogonal,
    each times the gain of the activation that follows (ReLU sqrt(2), tanh 1: the critical point for
    orthogonal weights), so the forward variance is kept. ``init_model(model, "delta_orthogonal")`` (the
    catalog scheme applied per weight) uses gain 1 everywhere."""
    kw = _options(opts, {"gain": None}, "delta_orthogonal_gain")
    rules: dict[Any, Any] = {}
    for info in graph.layers:
        if info.module is None or info.kind not in ("conv", "linear"):
            continue
        gain = kw["gain"] if kw["gain"] is not None else _gain(info)
        kernel: Any = getattr(info.module, "kernel_size", ())
        spatial = info.kind == "conv" and any(k > 1 for k in kernel)
        scheme = "delta_orthogonal" if spatial else "orthogonal"
        rules[f"{info.name}.weight" if info.name else "weight"] = f"{scheme}(gain={gain!r})"
    report = init_model(model, "orthogonal", graph=graph, generator=opts.generator, rules=rules)
    report.scheme = "delta_orthogonal_gain"
    return report


def _gain(info: Any) -> float:
    from ..catalog import gain

    if info.activation_fn is None:
        return 1.0
    if info.activation == "tanh":
        return 1.0
    return float(gain(info.activation_fn))


# The names init_model finds by importing this module on first use (initlab.model.api._LAZY_SCHEMES).
SCHEMES = ("lsuv", "data_dependent", "weight_norm", "delta_orthogonal_gain", "fixup", "skipinit", "rezero",
           "zero_residual_norm", "t_fixup", "deepnorm", "gpt2")


def register() -> None:
    from .datadep import data_dependent_init, weight_norm_init

    schemes: dict[str, Callable[[nn.Module, ModelGraph, SchemeOptions], InitReport | None]] = {
        "lsuv": _lsuv,
        "data_dependent": _per_channel("data_dependent", data_dependent_init, {"pre_init": "normal"}),
        "weight_norm": _per_channel("weight_norm", weight_norm_init, {"v_std": 0.05}),
        "delta_orthogonal_gain": _delta_orthogonal,
    }
    for name, fn in schemes.items():
        register_model_scheme(name, fn, overwrite=True)
    residual.register_transforms()


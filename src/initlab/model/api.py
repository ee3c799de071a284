"""``init_model``: validate, discover, plan, then draw -- all or nothing -- and the model-scheme registry.

Whole-model schemes (LSUV, Fixup, ...) register with :func:`register_model_scheme`; ``init_model`` runs them
inside the same validation and exact-restore wrapper as the built-in schemes."""

from __future__ import annotations

import contextlib
import functools
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..backends.checks import check_generator, check_seed
from ..backends.torch_backend import make_generator
from ..catalog.profiles import profile
from ..errors import InitlabError, InitlabTypeError, InitlabValueError, first_line
from ._apply import Journal, commit_plan, prepare_plan, transaction
from ._isolate import kept_rngs
from ._transforms import (
    _TRANSFORMS,
    PlanEdit,
    PlanTransform,
    StructuralPlan,
    add_scalars,
    check_scalars,
    transform_options,
)
from .graph import ModelGraph, Walk, check_graph, discover, named_tensors, run_forward, runs_modules, unwrap
from .plan import Plan, ProfileChooser, Rule, SchemeLike, build_plan, normalize_rules
from .report import InitReport
from .state import ModelState


@dataclass
class SchemeOptions:
    """What a registered model scheme receives besides the model and its graph."""

    example_input: Any = None
    generator: torch.Generator | None = None
    seed: int | None = None
    rules: Any = None
    dry_run: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


ModelSchemeFn = Callable[[nn.Module, ModelGraph, SchemeOptions], "InitReport | None"]
_MODEL_SCHEMES: dict[str, ModelSchemeFn] = {}


def register_model_scheme(name: str, fn: ModelSchemeFn, *, overwrite: bool = False) -> ModelSchemeFn:
    """Make ``init_model(model, name, ...)`` call ``fn(model, graph, options)``.

    ``fn`` initializes the model in place (it may call :func:`init_model` with another scheme first) and
    returns an :class:`InitReport` (or None for a bare one). ``init_model`` validates the inputs before and
    restores every parameter and buffer exactly if ``fn`` raises; with ``dry_run=True`` it runs ``fn``, then
    restores. Unknown keyword arguments of ``init_model`` reach ``fn`` as ``options.extra``.
    """
    if not callable(fn):
        raise InitlabTypeError(
            f"a model scheme is a callable (model, graph, options) -> InitReport, got {fn!r}")
    if name in _MODEL_SCHEMES and not overwrite and _MODEL_SCHEMES[name] is not fn:
        raise InitlabValueError(
            f"model scheme {name!r} is already registered (pass overwrite=True to replace it)")
    _MODEL_SCHEMES[name] = fn
    return fn


# Schemes defined in higher layers, registered by importing their module (and calling its ``register()``)
# the first time one is asked for: no import side effects, and no import of those layers from here.
_LAZY_SCHEMES = {
    name: "initlab.methods.schemes"
    for name in ("lsuv", "data_dependent", "weight_norm", "delta_orthogonal_gain", "fixup", "skipinit",
                 "rezero", "zero_residual_norm", "t_fixup", "deepnorm", "gpt2")
} | {"mup": "initlab.width._transform", "spectral": "initlab.width._transform"}


def _known(name: str) -> bool:
    """Whether ``name`` is a registered model scheme or plan transform, registering it lazily."""
    if name in _MODEL_SCHEMES or name in _TRANSFORMS:
        return True
    module = _LAZY_SCHEMES.get(name)
    if module is None:
        return False
    import importlib

    importlib.import_module(module).register()
    return name in _MODEL_SCHEMES or name in _TRANSFORMS


def model_schemes() -> list[str]:
    """Names accepted by ``init_model`` besides catalog schemes and profiles."""
    return ["auto", *sorted({*_MODEL_SCHEMES, *_TRANSFORMS, *_LAZY_SCHEMES})]


def init_model(
    model: nn.Module,
    scheme: SchemeLike = "auto",
    *,
    example_input: Any = None,
    seed: int | None = None,
    generator: torch.Generator | str | None = None,
    rules: Any = None,
    dry_run: bool = False,
    graph: ModelGraph | None = None,
    **options: Any,
) -> InitReport:
    """Initialize every parameter of ``model`` and say what was done.

    ``scheme``: ``"auto"`` (data-free, analytic), a catalog scheme name/call form/config/Initializer applied
    to each weight with its correct fans and following activation (``"he_normal"``, ``"orthogonal"``), a
    framework profile (``"torch:default"``, ``"keras:default"``, ``"flax:default"``, ``"timm:vit"``,
    ``"hf:gpt2"``, ``"hf:bert"``), or a registered model scheme. ``rules``: ``{match: scheme}`` overrides,
    match being a module type, a glob on qualified parameter or module names, or a predicate ``f(param_name,
    module)``; the first matching rule wins, ``"keep"`` leaves a parameter as it is. ``example_input`` lets
    discovery run the model once when ``torch.fx`` cannot trace it (and materializes Lazy modules).
    ``dry_run=True`` changes nothing.

    ``generator``: by default (``None`` or ``"counter"``) every value is drawn by the counter-based generator
    (:mod:`initlab.backends.counter`), a function of (seed, parameter name, element index) only -- the same
    weights on any device, in any order and under any sharding (``initlab.distributed.init_sharded``), faster
    than torch's generator; without ``seed`` one is drawn and recorded in ``report.seed``. ``"torch"`` (or a
    ``torch.Generator``) draws from torch's generator seeded with ``seed``, in plan order; registered model
    schemes (LSUV...) always use torch's; plan transforms (Fixup, T-Fixup, DeepNorm, GPT-2, SkipInit...) use
    either.

    All or nothing: inputs are validated before the model is touched and any failure (Ctrl-C included)
    restores every parameter and buffer bit for bit (:mod:`._apply`); ``dry_run`` changes nothing, Lazy
    modules included. Calls on one model from several threads take turns (a per-model lock).

    >>> import torch.nn as nn
    >>> report = init_model(nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2)), "he_normal", seed=0)
    >>> report.row("0.weight").std == (2 / 8) ** 0.5
    True
    """
    _validate_call(model, graph)
    _validate_generator(generator, seed)
    inner = unwrap(model)
    with transaction(inner) as journal:
        return _init(inner, journal, scheme, example_input, seed, generator, rules, dry_run, graph, options)


def _init(inner: nn.Module, journal: Journal, scheme: SchemeLike, example_input: Any, seed: int | None,
          generator: torch.Generator | str | None, rules: Any, dry_run: bool, graph: ModelGraph | None,
          options: dict[str, Any]) -> InitReport:
    """``init_model`` inside its transaction: every change goes through ``journal``."""
    walk = named_tensors(inner)
    _validate_model(inner, walk)
    _validate_input(example_input)
    scheme_name = _validate_scheme(scheme)
    rule_list = normalize_rules(rules)
    takes_options = scheme_name in _MODEL_SCHEMES or scheme_name in _TRANSFORMS or scheme_name == "auto"
    if options and not takes_options:
        raise InitlabTypeError(f"unexpected option(s) {sorted(options)} for scheme {scheme_name!r}")
    lazy = _has_lazy(walk[1])
    if lazy:
        if example_input is None:
            raise InitlabValueError(
                "the model has Lazy modules: pass example_input so that their shapes are known")
        if dry_run:  # shapes from a copy: the user's Lazy modules stay lazy
            return _init(_lazy_probe(inner, example_input), Journal(), scheme, example_input, seed, generator,
                         rules, dry_run, None, options)
        _materialize_lazy(inner, example_input, journal)
        walk = named_tensors(inner)
    elif example_input is not None and graph is not None:
        _check_forward(inner, example_input)
    if graph is None:
        graph = _discover_checked(inner, example_input, walk, check=not lazy)
    else:
        check_graph(graph, inner, walk)
    if scheme_name in _MODEL_SCHEMES:
        if generator == "counter" and not getattr(_MODEL_SCHEMES[scheme_name], "plan_based", False):
            raise InitlabValueError(
                f"generator='counter' draws per-parameter plans, not model scheme {scheme_name}")
        torch_gen = generator if isinstance(generator, torch.Generator) else None
        opts = SchemeOptions(example_input, torch_gen, seed, rules, dry_run, dict(options))
        return _run_model_scheme(inner, graph, scheme_name, opts)
    if scheme_name in _TRANSFORMS:
        plan, report = _transformed(graph, _TRANSFORMS[scheme_name], rule_list, options, walk[1])
    else:
        plan, report = _plan(graph, scheme, scheme_name, rule_list, options, walk[1])
    report.seed, report.dry_run = seed, dry_run
    scalars = plan.scalars if isinstance(plan, StructuralPlan) else []
    if dry_run:
        return report
    check_scalars(inner, scalars)
    if generator is None or generator == "counter":
        from .plan_counter import counter_fill

        report.seed = secrets.randbits(63) if seed is None else seed
        prepared = prepare_plan(inner, plan, walk=walk, fill=counter_fill(plan, report.seed))
    else:
        if not isinstance(generator, torch.Generator):
            generator = make_generator(_device(inner), seed)
        prepared = prepare_plan(inner, plan, generator, walk=walk)
    commit_plan(prepared, journal)
    with journal.writing():
        add_scalars(inner, scalars, journal)
    return report


def _transformed(graph: ModelGraph, t: PlanTransform, rules: list[Rule], options: dict[str, Any],
                 params: dict[str, torch.Tensor]) -> tuple[Plan, InitReport]:
    """The base scheme's plan, edited by the transform (on a copy: cached plans stay as they are)."""
    opts = transform_options(t, options)
    base = opts.pop("base", t.base)
    base_name = _validate_scheme(base)
    if base_name in _TRANSFORMS or base_name in _MODEL_SCHEMES:
        raise InitlabValueError(
            f"scheme {t.name!r}: base {base!r} must be 'auto', a catalog scheme or a profile")
    plan, report = _plan(graph, base, base_name, rules, {}, params)
    edit = PlanEdit(graph, plan, report, t.name)
    t.fn(edit, opts)
    return edit.finish()


def _validate_generator(generator: Any, seed: Any) -> None:
    check_generator(generator, names=("counter", "torch"))
    if seed is not None:
        check_seed(seed)
    if isinstance(generator, torch.Generator) and seed is not None:
        raise InitlabValueError("pass either seed or generator, not both")


def _validate_call(model: Any, graph: Any) -> None:
    """What the arguments' types alone rule out, before anything is read from the model."""
    if not isinstance(model, nn.Module):
        raise InitlabTypeError(f"init_model expects an nn.Module, got {type(model).__name__}")
    if isinstance(model, torch.jit.ScriptModule):
        raise InitlabTypeError("a torch.jit.script/trace module cannot be initialized in place: "
                               "initialize the eager module first, then script it")
    if graph is not None and not isinstance(graph, ModelGraph):
        raise InitlabTypeError(
            f"graph must come from initlab.model.discover(model), got {type(graph).__name__}")


def _plan(
    graph: ModelGraph,
    scheme: SchemeLike,
    scheme_name: str,
    rules: list[Rule],
    options: dict[str, Any],
    params: dict[str, torch.Tensor],
) -> tuple[Plan, InitReport]:
    """The plan and report of ``scheme`` on ``graph``. A plan made from shapes alone (every row drawn, with
    a known std) is kept on the graph, so repeated calls on a model whose graph is cached skip planning."""
    key: Any = None
    if isinstance(scheme, str) and not rules:
        key = (scheme_name, tuple(sorted(options.items())))
    try:
        hit = graph.plans.get(key) if key is not None else None
    except TypeError:  # an unhashable option
        key = hit = None
    if hit is not None:
        return hit[0], hit[1].copy()
    with kept_rngs() if runs_modules(graph) else contextlib.nullcontext():
        plan, report = _build(graph, scheme, scheme_name, rules, options, params)
    if key is not None and all(r.status == "init" and r.std is not None for r in report.rows):
        graph.plans[key] = (plan, report.copy())
    return plan, report


def _build(graph: ModelGraph, scheme: SchemeLike, scheme_name: str, rules: list[Rule],
           options: dict[str, Any], params: dict[str, torch.Tensor]) -> tuple[Plan, InitReport]:
    if scheme_name == "auto":
        from .auto import AutoChooser

        chooser: Any = AutoChooser(graph, **options)
    else:
        chooser = ProfileChooser(scheme, graph)
    plan, report = build_plan(graph, chooser, rules, scheme_name, params)
    if hasattr(chooser, "finish"):
        chooser.finish(report)
    return plan, report


def _run_model_scheme(model: nn.Module, graph: ModelGraph, name: str, opts: SchemeOptions) -> InitReport:
    if opts.generator is None:
        opts.generator = make_generator(_device(model), opts.seed)
    state = ModelState.capture(model)
    try:
        report = _MODEL_SCHEMES[name](model, graph, opts)
    except BaseException:
        state.restore(model)
        raise
    if report is None:
        report = InitReport(name, method=graph.method, graph=graph)
    report.seed, report.dry_run = opts.seed, opts.dry_run
    if opts.dry_run:
        state.restore(model)
        report.notes.append("dry run: the scheme ran and every tensor was then restored")
    return report


# ---- validation --------------------------------------------------------------------------------------------
def _validate_model(model: nn.Module, walk: Walk) -> None:
    modules, params = walk
    if not params:
        raise InitlabValueError(f"{type(model).__name__} has no parameters: there is nothing to initialize")
    # torch's old weight_norm registers both as parameters (read in _parameters: hasattr raises and catches)
    legacy = [n for n, m in modules.items() if "weight_g" in m._parameters and "weight_v" in m._parameters]
    if legacy:
        raise InitlabValueError(
            f"{legacy[0] or 'the model'} uses the deprecated torch.nn.utils.weight_norm (weight_g/weight_v): "
            "use torch.nn.utils.parametrizations.weight_norm, which initlab initializes through its original")


def _validate_scheme(scheme: SchemeLike) -> str:
    if isinstance(scheme, str):
        if scheme == "auto" or _known(scheme) or profile(scheme) is not None:
            return scheme
        try:
            _catalog_name(scheme)
        except ValueError as exc:
            raise InitlabValueError(
                f"{exc}; init_model also accepts {', '.join(model_schemes())} and the profiles "
                "torch:default, keras:default, flax:default, timm:vit, hf:gpt2, hf:bert"
            ) from None
        return scheme
    from ..catalog import get

    init = get(scheme)
    return str(init)


@functools.lru_cache(maxsize=256)
def _catalog_name(name: str) -> None:
    """Raise unless the catalog reads ``name``; names it read are remembered (the catalog only grows, and
    parsing a name is ~40 us of every cached call)."""
    from ..catalog import get

    get(name)


def _tensors(x: Any) -> list[torch.Tensor]:
    if isinstance(x, torch.Tensor):
        return [x]
    if isinstance(x, dict):
        return [t for v in x.values() for t in _tensors(v)]
    if isinstance(x, list | tuple):
        return [t for v in x for t in _tensors(v)]
    return []


def _validate_input(example_input: Any) -> None:
    if example_input is None:
        return
    tensors = _tensors(example_input)
    if not tensors:
        raise InitlabTypeError("example_input must be a tensor, a tuple of tensors or a dict of tensors")
    for t in tensors:
        if t.is_floating_point() and t.device.type != "meta" and not bool(torch.isfinite(t).all()):
            raise InitlabValueError("example_input contains NaN or infinite values")


def check_example_input(model: nn.Module, example_input: Any) -> None:
    """A clear error, before anything changes, for an example input that is not tensors, is not finite or
    does not fit the model (for the methods that discover on their own: Fixup, SkipInit...)."""
    _validate_input(example_input)
    if example_input is not None:
        _check_forward(model, example_input)


def _discover_checked(model: nn.Module, example_input: Any, walk: Walk, check: bool) -> ModelGraph:
    """:func:`.graph.discover`, and with ``check`` the clear error of an ``example_input`` that does not fit
    the model. A graph found by hooks, or traced by fx and run for its sizes, ran the model on that very
    input (:func:`._isolate.quiet_forward`, as the check does): a second forward pass would only repeat it,
    so the check runs for other graphs, or to name why discovery's own pass failed."""
    if example_input is None or not check:
        return discover(model, example_input, walk=walk)
    try:
        graph = discover(model, example_input, walk=walk)
    except InitlabError:
        raise
    except Exception:
        _check_forward(model, example_input)
        raise
    if not graph.ran_example:
        _check_forward(model, example_input)
    return graph


def _check_forward(model: nn.Module, example_input: Any) -> None:
    try:
        run_forward(model, example_input)
    except Exception as exc:
        shapes = ", ".join(str(tuple(t.shape)) for t in _tensors(example_input))
        raise InitlabValueError(
            f"example_input (shape {shapes}) does not fit the model: {first_line(exc)}"
        ) from exc


def _has_lazy(params: dict[str, torch.Tensor]) -> bool:
    # is_lazy checks the plain mixin class: isinstance(p, UninitializedParameter) goes through Parameter's
    # metaclass __instancecheck__, a measurable share of a cached call on a small model
    from torch.nn.parameter import is_lazy

    return any(map(is_lazy, params.values()))


def _lazy_probe(model: nn.Module, example_input: Any) -> nn.Module:
    """A deep copy of ``model`` with its Lazy modules materialized (for plans without touching the model)."""
    import copy

    try:
        probe = copy.deepcopy(model)
    except Exception as exc:
        raise InitlabValueError(
            f"the model has Lazy modules and cannot be copied to infer their shapes ({exc}): "
                         "run it once on a batch before a dry run") from None
    _materialize_lazy(probe, example_input, Journal())
    return probe


def _materialize_lazy(model: nn.Module, example_input: Any, journal: Journal) -> None:
    """Run the model once so that its Lazy modules take their shapes; ``journal`` can make them lazy again."""
    from torch.nn.modules.lazy import LazyModuleMixin

    lazy = [(m, type(m), {k: (type(p), p.requires_grad, p.device, p.dtype) for k, p in m._parameters.items()
                          if p is not None}) for m in model.modules() if isinstance(m, LazyModuleMixin)]
    journal.on_undo(lambda: _make_lazy_again(lazy))
    # The modules' own reset_parameters draws from the global RNG: keep its state.
    state = torch.get_rng_state()
    try:
        _check_forward(model, example_input)
    finally:
        torch.set_rng_state(state)


def _make_lazy_again(lazy: list[tuple[Any, type, dict[str, tuple[Any, bool, Any, Any]]]]) -> None:
    for module, cls, params in lazy:
        if type(module) is cls:
            continue
        module.__class__ = cls
        for key, (kind, requires_grad, device, dtype) in params.items():
            module._parameters[key] = kind(requires_grad=requires_grad, device=device, dtype=dtype)
        module._load_hook = module._register_load_state_dict_pre_hook(module._lazy_load_hook)
        module._initialize_hook = module.register_forward_pre_hook(module._infer_parameters, with_kwargs=True)


def _device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    if p is None or p.device.type == "meta":
        return torch.device("cpu")
    return p.device

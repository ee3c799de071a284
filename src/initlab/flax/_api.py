"""The public entry points of :mod:`initlab.flax`."""

from __future__ import annotations

import copy
from collections.abc import Callable, MutableMapping
from typing import Any

import jax.numpy as jnp
from flax import nnx

from ..frameworks._shadow import Key, draw_plan, plan_shadow, relabel
from ..model import InitReport
from ._inventory import linen_inventory, nnx_inventory
from ._model import Ctx, _nnx_layer, count_kernels, linen_tree
from ._trace import discover


def init_model(module_or_params: Any, scheme: Any = "auto", *, seed: int | None = None,
               example_input: Any = None, apply_fn: Callable[..., Any] | None = None,
               activation: Any = None, dry_run: bool = False, key: Key = "order",
               **options: Any) -> InitReport:
    """Initialize every parameter of a Flax NNX module (in place) or of a Linen parameter tree (a mutable
    dict as returned by ``Module.init``, updated in place; :func:`init_params` returns a new tree) and say
    what was done, as :func:`initlab.init_model` does for PyTorch.

    The plan is the one ``initlab.init_model`` makes for the equivalent torch model, drawn by the
    counter-based generator keyed by layer order: the same weights as ``initlab.frameworks.init_torch`` for
    ``seed``.
    With ``example_input`` (an array, or a tuple of the forward's arguments), discovery traces the forward
    once (``jax.make_jaxpr``, nothing is computed): layers are the module tree's parameters as the forward
    uses them, activations the elementwise functions between layers (however written:
    ``x * jax.nn.sigmoid(x)`` is swish), residual adds the adds of two layers' values, an LSTM cell's gate
    denses one LSTM, an attention block's projections one attention layer. A Linen tree also needs
    ``apply_fn`` (``module.apply``, called as ``apply_fn(variables, *example_input)``). Parameters the
    trace does not read are left as they are and named in ``report.warnings``.
    Without it, layers are read in tree order and ``activation`` is the activation after each hidden layer
    where the tree does not say (Linen trees, NNX modules other than ``nnx.Sequential``); residual adds are
    not seen. ``dry_run=True`` changes nothing.
    """
    if example_input is not None:
        ctx, report = _plan_traced(module_or_params, scheme, seed, example_input, apply_fn, options)
    else:
        ctx, report = _plan(module_or_params, scheme, seed, activation, options)
    if not dry_run:
        _write(ctx, report, key)
    return report


def init_params(params: Any, scheme: Any = "auto", *, seed: int | None = None, example_input: Any = None,
                apply_fn: Callable[..., Any] | None = None, activation: Any = None, key: Key = "order",
                **options: Any) -> tuple[Any, InitReport]:
    """A new Linen parameter tree (the input is not changed) and the report."""
    if not isinstance(params, MutableMapping):
        raise TypeError(f"init_params expects a Linen parameter dict, got {type(params).__name__}")
    fresh = copy.copy(params)
    _copy_dicts(fresh)
    report = init_model(fresh, scheme, seed=seed, example_input=example_input, apply_fn=apply_fn,
                        activation=activation, key=key, **options)
    return fresh, report


def _copy_dicts(tree: MutableMapping[str, Any]) -> None:
    for k, v in tree.items():
        if isinstance(v, MutableMapping):
            tree[k] = copy.copy(v)
            _copy_dicts(tree[k])


def _plan(target: Any, scheme: Any, seed: int | None, act: Any,
          options: dict[str, Any]) -> tuple[Ctx, InitReport]:
    ctx = Ctx()
    node = ctx.builder.input()
    if isinstance(target, nnx.Module):
        node = _nnx_layer(ctx, target, "", node)
        if act is not None and not isinstance(target, nnx.Sequential):
            ctx.notes.append("activation= applies to Linen trees only; NNX modules: use nnx.Sequential")
    elif isinstance(target, MutableMapping):
        tree = target["params"] if "params" in target and isinstance(target["params"], MutableMapping) \
            else target
        ctx.hidden = count_kernels(tree)
        if act is None:
            ctx.notes.append("Linen tree: no activation given, layers planned as linear "
                             "(pass activation=...)")
        node = linen_tree(ctx, tree, "params" if tree is not target else "", node, act)
    else:
        raise TypeError("initlab.flax.init_model expects an nnx.Module or a Linen parameter dict "
                        f"(a FrozenDict: unfreeze it first), got {type(target).__name__}")
    del node
    return ctx, _report(ctx, scheme, seed, options)


def _plan_traced(target: Any, scheme: Any, seed: int | None, example: Any, apply_fn: Any,
                 options: dict[str, Any]) -> tuple[Ctx, InitReport]:
    args = example if isinstance(example, tuple) else (example,)
    if isinstance(target, nnx.Module):
        if apply_fn is not None:
            raise ValueError("apply_fn= is for Linen trees; an NNX module is called as it is")
        inv = nnx_inventory(target)
    elif isinstance(target, MutableMapping):
        if apply_fn is None:
            raise ValueError("a Linen tree with example_input= needs apply_fn= (e.g. apply_fn=module.apply)")
        inv = linen_inventory(target, apply_fn)
    else:
        raise TypeError("initlab.flax.init_model expects an nnx.Module or a Linen parameter dict "
                        f"(a FrozenDict: unfreeze it first), got {type(target).__name__}")
    ctx = Ctx()
    discover(ctx, inv, args)
    return ctx, _report(ctx, scheme, seed, options)


def _report(ctx: Ctx, scheme: Any, seed: int | None, options: dict[str, Any]) -> InitReport:
    report = plan_shadow(ctx.builder.build(), scheme, seed, **options)
    relabel(report, ctx.labels)
    for name in ctx.skipped:
        report.warn(f"{name}: left as it is, a Flax layer initlab does not know or does not see used; "
                    "initialize it with initlab.jax.get(...)")
    report.notes.extend(dict.fromkeys(ctx.notes))  # once each
    return report


def _write(ctx: Ctx, report: InitReport, key: Key) -> None:
    """All values computed and checked first, then set; restored exactly if anything fails."""
    assert report.seed is not None
    draws = draw_plan(report.plan, report.seed, key)
    todo = []
    for s in ctx.slots:
        if any(n not in draws for n in s.needs):
            continue
        value = s.convert(*(draws[n].numpy() for n in s.needs))
        if tuple(value.shape) != s.shape:
            raise RuntimeError(f"internal: {s.path} planned as {value.shape}, is {s.shape}")
        old = s.get()
        todo.append((s, old, jnp.asarray(value, dtype=jnp.asarray(old).dtype)))
    done = []
    try:
        for s, old, new in todo:
            s.set(new)
            done.append((s, old))
    except BaseException:
        for s, old in reversed(done):
            s.set(old)
        raise
    report.dry_run = False

"""The public entry points of :mod:`initlab.flax`."""

from __future__ import annotations

import copy
from collections.abc import MutableMapping
from typing import Any

import jax.numpy as jnp
from flax import nnx

from ..frameworks._shadow import Key, draw_plan, plan_shadow, relabel
from ..model import InitReport
from ._model import Ctx, _nnx_layer, count_kernels, linen_tree


def init_model(module_or_params: Any, scheme: Any = "auto", *, seed: int | None = None,
               activation: Any = None, dry_run: bool = False, key: Key = "order",
               **options: Any) -> InitReport:
    """Initialize every parameter of a Flax NNX module (in place) or of a Linen parameter tree (a mutable
    dict as returned by ``Module.init``, updated in place; :func:`init_params` returns a new tree) and say
    what was done, as :func:`initlab.init_model` does for PyTorch.

    The plan is the one ``initlab.init_model`` makes for the equivalent torch model, drawn by the
    counter-based generator keyed by layer order: the same weights as ``initlab.frameworks.init_torch`` for
    ``seed``.
    ``activation``: the activation after each hidden layer where the tree does not say (Linen trees, NNX
    modules other than ``nnx.Sequential``). ``dry_run=True`` changes nothing.
    """
    ctx, report = _plan(module_or_params, scheme, seed, activation, options)
    if not dry_run:
        _write(ctx, report, key)
    return report


def init_params(params: Any, scheme: Any = "auto", *, seed: int | None = None, activation: Any = None,
                key: Key = "order", **options: Any) -> tuple[Any, InitReport]:
    """A new Linen parameter tree (the input is not changed) and the report."""
    if not isinstance(params, MutableMapping):
        raise TypeError(f"init_params expects a Linen parameter dict, got {type(params).__name__}")
    fresh = copy.copy(params)
    _copy_dicts(fresh)
    report = init_model(fresh, scheme, seed=seed, activation=activation, key=key, **options)
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
    report = plan_shadow(ctx.builder.build(), scheme, seed, **options)
    relabel(report, ctx.labels)
    for name in ctx.skipped:
        report.warn(f"{name}: unknown Flax layer left as it is; initialize it with initlab.jax.get(...)")
    report.notes.extend(ctx.notes)
    return ctx, report


def _write(ctx: Ctx, report: InitReport, key: Key) -> None:
    """All values computed and checked first, then set; restored exactly if anything fails."""
    assert report.seed is not None
    draws = draw_plan(report.plan, report.seed, key)
    todo = []
    for s in ctx.slots:
        if s.need not in draws:
            continue
        value = s.convert(draws[s.need].numpy())
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

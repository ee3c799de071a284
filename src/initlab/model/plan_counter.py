"""Draw one planned parameter (a :class:`initlab.model.plan.Assignment`) with the counter-based generator,
whole or as a rectangular piece of it: the bridge from ``init_model``'s plans to :func:`.fill.counter_fill_`.

Identity: a parameter's values are addressed by ``(seed, qualified name, global row-major index)``. Where the
plan stacks gate blocks along dim 0 (LSTM/GRU, packed attention projections), elementwise blocks share the
parameter's index space; a structured block (orthogonal...) is its own global tensor named ``"<name>/<b>"``.
Post steps (typed, :mod:`._steps`): padding rows, forget-gate slices and scales are applied to the part of
them a piece holds; a
``looks_linear`` weight (``[[A, -A], [-A, A]]``) draws ``A`` as its own ``(rows/2, cols/2)`` tensor and is cut
from the full layout; steps that need whole rows (``row_norm``, ``row_sum``: rows scaled to a fixed norm,
shifted to a fixed sum) are applied to the piece's rows generated in full, then cut; a ``center`` bias (``b
-= c * row sums of W``) regenerates the rows of ``W`` it needs from their indices. So a rank never needs
another rank's values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ..backends.counter import counter
from ..backends.counter.fill import counter_fill_, fill_array
from ..catalog import draws as d
from ._apply import (
    Fill,
    check_once,
    commit_plan,
    looks_linear_block,
    prepare_plan,
    transaction,
    write_looks_linear_,
)
from ._steps import Center, looks_linear_role
from .plan import Assignment, Plan


@torch.no_grad()
def fill_assignment_(local: torch.Tensor, a: Assignment, seed: int, offset: Sequence[int] | None = None,
                     threads: int | None = None,
                     assignments: Mapping[str, Assignment] | None = None) -> torch.Tensor:
    """Fill ``local``: the box of parameter ``a`` (global shape ``a.shape``) starting at ``offset`` (default:
    the whole parameter). ``assignments`` (name -> assignment) is needed for :class:`~._steps.Center`."""
    return _fill_piece(local, a, seed, offset, threads, assignments)


def _fill_piece(local: torch.Tensor, a: Assignment, seed: int, offset: Sequence[int] | None,
                threads: int | None, assignments: Mapping[str, Assignment] | None) -> torch.Tensor:
    """:func:`fill_assignment_` without its ``no_grad`` wrapper (~3 us a call): for callers already under
    ``no_grad``, such as the applier's commit."""
    glob = tuple(a.shape)
    offs = tuple(offset) if offset is not None else (0,) * len(glob)
    if len(offs) != len(glob) or len(local.shape) != len(glob):
        raise ValueError(f"{a.name}: piece {tuple(local.shape)} at {offs} does not match shape {glob}")
    if local.numel() == 0 or local.device.type == "meta":
        return local
    role = looks_linear_role(a.post)
    if any(getattr(s, "whole_rows", False) for s in a.post) and tuple(local.shape[1:]) != glob[1:]:
        rows = torch.empty((local.shape[0], *glob[1:]), dtype=local.dtype)  # whole rows, then the columns
        _fill_piece(rows, a, seed, (offs[0], *(0,) * (len(glob) - 1)), threads, assignments)
        cols = (slice(o, o + n) for o, n in zip(offs[1:], local.shape[1:], strict=True))
        local.copy_(rows[(slice(None), *cols)])
        return local
    if role is not None and len(glob) == 2:
        full = _looks_linear(a, seed, role, local.dtype, threads)
        local.copy_(full[offs[0]:offs[0] + local.shape[0], offs[1]:offs[1] + local.shape[1]])
    elif len(a.draws) == 1:
        counter_fill_(local, a.draws[0], seed=seed, name=a.name, offset=offs, global_shape=glob,
                      threads=threads)
    else:
        _blocks(local, a, seed, offs, threads)
    _post(local, a, seed, offs, threads, assignments)
    return local


def _blocks(local: torch.Tensor, a: Assignment, seed: int, offs: tuple[int, ...],
            threads: int | None) -> None:
    glob = tuple(a.shape)
    rows = glob[0] // len(a.draws)
    for b, draw in enumerate(a.draws):
        lo, hi = max(offs[0], b * rows), min(offs[0] + local.shape[0], (b + 1) * rows)
        if lo >= hi:
            continue
        part = local[lo - offs[0]:hi - offs[0]]
        if isinstance(draw, d.ELEMENTWISE):
            counter_fill_(part, draw, seed=seed, name=a.name, offset=(lo, *offs[1:]), global_shape=glob,
                          threads=threads)
        else:
            counter_fill_(part, draw, seed=seed, name=f"{a.name}/{b}", offset=(lo - b * rows, *offs[1:]),
                          global_shape=(rows, *glob[1:]), threads=threads)


def _looks_linear(a: Assignment, seed: int, role: str, dtype: torch.dtype,
                  threads: int | None) -> torch.Tensor:
    """Middle ``[[A, -A], [-A, A]]``, first ``[[A], [-A]]``, last ``[A, -A]`` (as the model's torch path)."""
    block = torch.empty(looks_linear_block(a.shape, role), dtype=dtype)
    counter_fill_(block, a.draws[0], seed=seed, name=a.name, threads=threads)
    return write_looks_linear_(torch.empty(tuple(a.shape), dtype=dtype), block)


def _post(local: torch.Tensor, a: Assignment, seed: int, offs: tuple[int, ...], threads: int | None,
          assignments: Mapping[str, Assignment] | None) -> None:
    lo, n = offs[0] if offs else 0, local.shape[0] if local.dim() else 1
    for step in a.post:
        if step.piecewise:
            step.apply_piece(local, tuple(a.shape), lo)  # type: ignore[union-attr]
        elif getattr(step, "whole_rows", False):  # whole rows here (see fill_assignment_)
            step.apply(local)
        elif isinstance(step, Center) and step.coef:  # 1-D bias -= c * row sums of the weight
            if assignments is None or step.weight not in assignments:
                raise ValueError(f"{a.name}: centering needs the plan of {step.weight}")
            w = assignments[step.weight]
            rows = torch.empty((n, *w.shape[1:]), dtype=local.dtype)
            _fill_piece(rows, w, seed, (lo, *(0,) * (len(w.shape) - 1)), threads, assignments)
            local.sub_(step.coef * rows.reshape(n, -1).sum(1))


def counter_fill(plan: Plan, seed: int, threads: int | None = None) -> Fill:
    """``fill(tensor, assignment)`` drawing whole parameters of ``plan`` with the counter-based generator,
    for :func:`initlab.model.plan.prepare_plan`."""
    index = {a.name: a for a in plan.assignments}
    checked: set[Any] = set()

    def fill(tensor: torch.Tensor, a: Assignment) -> None:  # called by the commit, under no_grad
        if not _fill_whole(tensor, a, seed, threads, checked):
            _fill_piece(tensor, a, seed, None, threads, index)

    return fill


_DIRECT = (torch.float32, torch.float64)
_PLANS: dict[tuple[Any, int, str], counter.CounterPlan] = {}  # (draw, seed, name) -> its resolved plan
_MAX_PLANS = 1 << 14


def _fill_whole(t: torch.Tensor, a: Assignment, seed: int, threads: int | None, checked: set[Any]) -> bool:
    """The applier's common case -- a whole contiguous CPU float tensor from one elementwise draw, no
    post-step -- with the backend's parts called directly (the same values as :func:`counter_fill_`, whose
    general path for pieces and devices costs ~25 us a tensor: most of a cached ``init_model`` on a model of
    small layers). ``checked``: the (draw, dtype) pairs already found representable. False: not this case.
    No version bump here: the applier's swap (``set_``) or its in-place path bumps the model tensor."""
    draw = a.draws[0]
    if (a.post or len(a.draws) != 1 or not isinstance(draw, d.ELEMENTWISE) or not t.is_cpu
            or t.dtype not in _DIRECT or t.shape != a.shape or not t.is_contiguous()):
        return False
    check_once(draw, t.dtype, checked)
    if t.numel():
        key = (draw, seed, a.name)
        p = _PLANS.get(key)
        if p is None:  # the key derivation (BLAKE2b) is most of it; repeated calls reuse it
            if len(_PLANS) >= _MAX_PLANS:
                _PLANS.clear()
            p = _PLANS[key] = counter.plan(draw, seed, a.name)
        fill_array(t.detach().numpy().reshape(1, -1), np.zeros(1, dtype=np.int64), p, threads=threads)
    return True


@torch.no_grad()
def apply_plan_counter(model: torch.nn.Module, plan: Plan, seed: int, threads: int | None = None) -> None:
    """``initlab.model.apply_plan`` with the counter-based generator: ``seed`` alone fixes every weight,
    whatever the order, device or sharding. Meta tensors are skipped. All or nothing, as ``init_model``."""
    with transaction(model) as journal:
        commit_plan(prepare_plan(model, plan, fill=counter_fill(plan, seed, threads)), journal)

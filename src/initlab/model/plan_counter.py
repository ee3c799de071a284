"""Draw one planned parameter (a :class:`initlab.model.plan.Assignment`) with the counter-based generator,
whole or as a rectangular piece of it: the bridge from ``init_model``'s plans to :func:`.fill.counter_fill_`.

Identity: a parameter's values are addressed by ``(seed, qualified name, global row-major index)``. Where the
plan stacks gate blocks along dim 0 (LSTM/GRU, packed attention projections), elementwise blocks share the
parameter's index space; a structured block (orthogonal...) is its own global tensor named ``"<name>/<b>"``.
Post steps: padding rows and forget-gate slices are applied to the part of them a piece holds; a
``looks_linear`` weight (``[[A, -A], [-A, A]]``) draws ``A`` as its own ``(rows/2, cols/2)`` tensor and is cut
from the full layout; steps that need whole rows (``row_norm``: rows scaled to a fixed norm) are applied to
the piece's rows generated in full, then cut; a ``center`` bias (``b -= c * row sums of W``) regenerates the
rows of ``W`` it needs from their indices. So a rank never needs another rank's values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from ..backends.counter.fill import counter_fill_
from ..catalog import draws as d
from .plan import (
    Assignment,
    Fill,
    Plan,
    commit_plan,
    looks_linear_block,
    prepare_plan,
    write_looks_linear_,
)


@torch.no_grad()
def fill_assignment_(local: torch.Tensor, a: Assignment, seed: int, offset: Sequence[int] | None = None,
                     threads: int | None = None,
                     assignments: Mapping[str, Assignment] | None = None) -> torch.Tensor:
    """Fill ``local``: the box of parameter ``a`` (global shape ``a.shape``) starting at ``offset`` (default:
    the whole parameter). ``assignments`` (name -> assignment) is needed for ``center`` post steps."""
    glob = tuple(a.shape)
    offs = tuple(offset) if offset is not None else (0,) * len(glob)
    if len(offs) != len(glob) or len(local.shape) != len(glob):
        raise ValueError(f"{a.name}: piece {tuple(local.shape)} at {offs} does not match shape {glob}")
    if local.numel() == 0 or local.device.type == "meta":
        return local
    steps = {s[0]: s[1:] for s in a.post}
    if "row_norm" in steps and tuple(local.shape[1:]) != glob[1:]:  # whole rows first, then the columns
        rows = torch.empty((local.shape[0], *glob[1:]), dtype=local.dtype)
        fill_assignment_(rows, a, seed, (offs[0], *(0,) * (len(glob) - 1)), threads, assignments)
        cols = (slice(o, o + n) for o, n in zip(offs[1:], local.shape[1:], strict=True))
        local.copy_(rows[(slice(None), *cols)])
        return local
    if "looks_linear" in steps and len(glob) == 2:
        full = _looks_linear(a, seed, str(steps["looks_linear"][0]), local.dtype, threads)
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
        if step[0] == "row":  # global row index along dim 0
            row = int(step[1]) % a.shape[0] - lo
            if 0 <= row < n:
                local[row].fill_(step[2])
        elif step[0] == "slice":  # 1-D
            start, stop = max(int(step[1]) - lo, 0), min(int(step[2]) - lo, n)
            if start < stop:
                local[start:stop].fill_(step[3])
        elif step[0] == "row_norm":  # whole rows (see fill_assignment_)
            norms = local.reshape(n, -1).norm(dim=1, keepdim=True).clamp_min(1e-30)
            local.mul_((step[1] / norms).view(n, *(1,) * (local.dim() - 1)))
        elif step[0] == "center":  # 1-D bias -= c * row sums of the weight
            if not step[2]:
                continue
            if assignments is None or step[1] not in assignments:
                raise ValueError(f"{a.name}: centering needs the plan of {step[1]}")
            w = assignments[step[1]]
            rows = torch.empty((n, *w.shape[1:]), dtype=local.dtype)
            fill_assignment_(rows, w, seed, (lo, *(0,) * (len(w.shape) - 1)), threads, assignments)
            local.sub_(step[2] * rows.reshape(n, -1).sum(1))
        elif step[0] == "row_norm":  # each row (dim 0) rescaled to a fixed norm
            if tuple(local.shape[1:]) == tuple(a.shape[1:]):
                flat = local.reshape(n, -1)
                flat.mul_(step[1] / flat.norm(dim=1, keepdim=True).clamp_min(1e-30))
                if flat.data_ptr() != local.data_ptr() or not local.is_contiguous():
                    local.copy_(flat.view_as(local))
            else:  # a piece of the columns: regenerate its whole rows (no communication), keep our columns
                rows = torch.empty((n, *a.shape[1:]), dtype=local.dtype)
                fill_assignment_(rows, a, seed, (lo, *(0,) * (len(a.shape) - 1)), threads, assignments)
                cols = tuple(slice(o, o + s) for o, s in zip(offs[1:], local.shape[1:], strict=True))
                local.copy_(rows[(slice(None), *cols)])
        elif step[0] != "looks_linear":
            raise ValueError(f"{a.name}: unknown post step {step!r}")


def counter_fill(plan: Plan, seed: int, threads: int | None = None) -> Fill:
    """``fill(tensor, assignment)`` drawing whole parameters of ``plan`` with the counter-based generator,
    for :func:`initlab.model.plan.prepare_plan`."""
    index = {a.name: a for a in plan.assignments}

    def fill(tensor: torch.Tensor, a: Assignment) -> None:
        fill_assignment_(tensor, a, seed, threads=threads, assignments=index)

    return fill


@torch.no_grad()
def apply_plan_counter(model: torch.nn.Module, plan: Plan, seed: int, threads: int | None = None) -> None:
    """``initlab.model.apply_plan`` with the counter-based generator: ``seed`` alone fixes every weight,
    whatever the order, device or sharding. Meta tensors are skipped. All or nothing, as ``init_model``."""
    from .state import ModelState

    prepared = prepare_plan(model, plan, fill=counter_fill(plan, seed, threads))
    state = ModelState.capture(prepared.model, only=prepared.fallible)
    try:
        commit_plan(prepared)
    except BaseException:
        state.restore(prepared.model)
        raise

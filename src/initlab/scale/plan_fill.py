"""Draw one planned parameter (a :class:`initlab.model.plan.Assignment`) with the counter-based generator,
whole or as a rectangular piece of it: the bridge from ``init_model``'s plans to :func:`.fill.counter_fill_`.

Identity: a parameter's values are addressed by ``(seed, qualified name, global row-major index)``. Where the
plan stacks gate blocks along dim 0 (LSTM/GRU, packed attention projections), elementwise blocks share the
parameter's index space; a structured block (orthogonal...) is its own global tensor named ``"<name>/<b>"``.
Post steps (padding rows, forget-gate bias slices) are applied to the part of them the piece holds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..catalog import draws as d
from ..model.plan import Assignment, Plan
from .fill import counter_fill_


def box_of(offset: Sequence[int], shape: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(o, o + s) for o, s in zip(offset, shape, strict=True))


@torch.no_grad()
def fill_assignment_(local: torch.Tensor, a: Assignment, seed: int, offset: Sequence[int] | None = None,
                     threads: int | None = None) -> torch.Tensor:
    """Fill ``local``: the box of parameter ``a`` (global shape ``a.shape``) starting at ``offset`` (default:
    the whole parameter)."""
    glob = tuple(a.shape)
    offs = tuple(offset) if offset is not None else (0,) * len(glob)
    if tuple(local.shape) != glob and len(offs) != len(glob):
        raise ValueError(f"{a.name}: piece {tuple(local.shape)} needs one offset per dimension of {glob}")
    if local.numel() == 0 or local.device.type == "meta":
        return local
    blocks = len(a.draws)
    if blocks == 1:
        counter_fill_(local, a.draws[0], seed=seed, name=a.name, offset=offs, global_shape=glob,
                      threads=threads)
    else:
        rows = glob[0] // blocks
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
    _post(local, a, offs)
    return local


def _post(local: torch.Tensor, a: Assignment, offs: tuple[int, ...]) -> None:
    for step in a.post:
        if step[0] == "row":  # global row index along dim 0
            row = int(step[1]) % a.shape[0] - offs[0]
            if 0 <= row < local.shape[0]:
                local[row].fill_(step[2])
        elif step[0] == "slice":  # 1-D
            lo, hi = max(int(step[1]) - offs[0], 0), min(int(step[2]) - offs[0], local.shape[0])
            if lo < hi:
                local[lo:hi].fill_(step[3])
        else:
            raise ValueError(f"{a.name}: unknown post step {step!r}")


@torch.no_grad()
def apply_plan_counter(model: torch.nn.Module, plan: Plan, seed: int, threads: int | None = None) -> None:
    """``initlab.model.apply_plan`` with the counter-based generator: ``seed`` alone fixes every weight,
    whatever the order, device or sharding. Meta tensors are skipped."""
    from ..model.graph import unwrap

    model = unwrap(model)
    params = dict(model.named_parameters(remove_duplicate=False))
    for a in plan.assignments:
        module = model.get_submodule(a.owner) if a.owner else model
        if a.parametrized:
            current = getattr(module, a.attr)
            if current.device.type == "meta":
                continue
            target = torch.empty(a.shape, dtype=current.dtype, device=current.device)
            fill_assignment_(target, a, seed, threads=threads)
            setattr(module, a.attr, target)
            continue
        target = params[a.name]
        if target.device.type != "meta":
            fill_assignment_(target.detach(), a, seed, threads=threads)
    for name in plan.reset_stats:
        norm = model.get_submodule(name)
        if all(b.device.type != "meta" for b in norm.buffers()):
            norm.reset_running_stats()  # type: ignore[operator]

"""Sharded init: every rank draws only its own pieces of an FSDP2- or DTensor-sharded model built on the meta
device, with the counter-based generator, so the gathered weights equal the single-process
``init_model(..., generator="counter")`` result bit for bit at any world size.

For each parameter the plan (made from the global shapes by ``init_model(..., dry_run=True)``) gives the draw;
a DTensor's local piece and its global offset come from its mesh and placements (``Shard(d)`` even or uneven,
``Replicate``, several mesh dimensions), and the piece is generated alone: no full tensor, no communication.
Non-elementwise draws (orthogonal, sparse...) and parametrized weights (weight_norm...) are the exception:
each rank holding a piece builds the full tensor (from Gaussians drawn by index; through the parametrization's
``right_inverse``) and keeps its piece (memory and time of the full tensor, still no communication).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..catalog import draws as d
from ..errors import InitlabValueError
from ..model import InitReport, init_model
from ..model._apply import Journal, model_lock, right_inverse, transaction
from ..model._transforms import add_scalars, check_scalars
from ..model.graph import unwrap
from ..model.plan import Assignment
from ..model.plan_counter import fill_assignment_
from .big_model import check_parametrizations, check_seed_device


def local_piece(param: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """The tensor this rank holds of ``param`` and the global offset of its first element, per dimension."""
    from torch.distributed.tensor import DTensor

    if isinstance(param, DTensor):
        from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

        mesh, placements = param.device_mesh, param.placements
        shape, offset = compute_local_shape_and_global_offset(param.shape, mesh, placements)
        local = param.to_local()
        if tuple(local.shape) != tuple(shape):
            raise InitlabValueError(
                f"local shard {tuple(local.shape)} does not match its placements {tuple(shape)}")
        return local, tuple(int(o) for o in offset)
    return param, (0,) * param.dim()


def tie_groups(model: nn.Module) -> list[list[tuple[str, str]]]:
    """Every group of (module path, attribute) slots holding the same Parameter object (tied weights)."""
    slots: dict[int, list[tuple[str, str]]] = {}
    for path, module in model.named_modules(remove_duplicate=False):
        for attr, p in module.named_parameters(recurse=False):
            pair = (path, attr)
            group = slots.setdefault(id(p), [])
            if pair not in group:
                group.append(pair)
    return [g for g in slots.values() if len(g) > 1]


def retie(model: nn.Module, groups: Sequence[Sequence[tuple[str, str]]]) -> None:
    """Point every slot of each group at the group's first Parameter again (``to_empty`` unties them)."""
    for group in groups:
        path, attr = group[0]
        canonical = getattr(model.get_submodule(path), attr)
        for path, attr in group[1:]:
            setattr(model.get_submodule(path), attr, canonical)


def _fill_parametrized(model: nn.Module, a: Assignment, seed: int, threads: int | None,
                      index: dict[str, Assignment], journal: Journal) -> None:
    """A parametrized weight (weight_norm, spectral_norm...): the full logical tensor is drawn on every rank,
    mapped to the parametrization's originals by its ``right_inverse`` (as ``init_model`` does), and each rank
    keeps its pieces of the originals."""
    owner: Any = model.get_submodule(a.owner) if a.owner else model
    plist = owner.parametrizations[a.attr]
    first = plist.original if hasattr(plist, "original") else plist.original0
    value = fill_assignment_(torch.empty(a.shape, dtype=first.dtype), a, seed, threads=threads,
                             assignments=index)
    pairs = _full_right_inverse(owner, a, value)
    with journal.writing():
        for original, full in pairs:
            local, offset = local_piece(original)
            box = tuple(slice(o, o + n) for o, n in zip(offset, local.shape, strict=True))
            journal.save(local).copy_(full[box] if box else full)


def _full_right_inverse(owner: Any, a: Assignment, value: torch.Tensor) -> list[tuple[torch.Tensor, Any]]:
    """(original, its full value): :func:`initlab.model._apply.right_inverse` without the local cast."""
    from torch.distributed.tensor import DTensor

    plist = owner.parametrizations[a.attr]
    originals = [plist.original] if hasattr(plist, "original") else [
        getattr(plist, f"original{i}") for i in range(plist.ntensors)]
    if not any(isinstance(o, DTensor) for o in originals):
        return right_inverse(owner, a.attr, value, a.name)
    out: Any = value
    for step in reversed(plist):
        out = step.right_inverse(out)
    values = [out] if isinstance(out, torch.Tensor) else list(out)
    return list(zip(originals, values, strict=True))


def _default_device(model: nn.Module) -> torch.device:
    from torch.distributed.tensor import DTensor

    for p in model.parameters():
        if isinstance(p, DTensor):
            return torch.device(p.device_mesh.device_type)
        if p.device.type != "meta":
            return p.device
    return torch.device("cpu")


@torch.no_grad()
def init_sharded(model: nn.Module, scheme: Any = "auto", *, seed: int,
                 device: torch.device | str | None = None, rules: Any = None, example_input: Any = None,
                 threads: int | None = None, **options: Any) -> InitReport:
    """Materialize (if on the meta device) and initialize a sharded model; each rank fills only its shards.

    ``model``: built on the meta device and sharded with ``fully_shard`` (FSDP2) or with DTensor parameters
    (``distribute_tensor``/``distribute_module``/tensor parallel); plain (unsharded) models work too.
    ``scheme``/``rules``/``example_input``/``options``: as for :func:`initlab.init_model`. ``device``: where
    meta parameters are allocated (default: the device mesh's type). Tied weights are re-tied after
    ``to_empty``. Buffers created on meta are allocated but hold no values, except normalization statistics,
    which are reset; fill other buffers yourself. All or nothing: seed, device, scheme and parametrizations
    are checked before ``to_empty``; on any failure (Ctrl-C included) a model that was on meta goes back to
    meta and one that was not gets its values back bit for bit.
    """
    inner = unwrap(model)
    dev = check_seed_device(seed, device)
    with model_lock(inner):
        report = init_model(inner, scheme, seed=seed, rules=rules, example_input=example_input, dry_run=True,
                            generator="counter", **options)
        plan = report.plan
        if plan is None:
            raise InitlabValueError(
                f"scheme {scheme!r} has no per-parameter plan: init_sharded cannot shard it")
        params = dict(inner.named_parameters(remove_duplicate=False))
        for a in plan.assignments:
            if a.name not in params and not a.parametrized:
                raise InitlabValueError(f"{a.name}: planned but not a parameter of the model")
        check_parametrizations(inner, plan)
        check_scalars(inner, getattr(plan, "scalars", []))
        with transaction(inner) as journal:
            _fill(inner, plan, seed, dev, threads, journal)
    report.dry_run = False
    report.notes.append(f"counter-based generator, seed {seed}: each rank drew only its shards")
    whole = [a.name for a in plan.assignments if a.parametrized or not _piecewise(a)]
    if whole:
        report.notes.append(f"built in full on every rank holding a piece (orthogonal-type draws, "
                            f"parametrizations, looks-linear layouts): {', '.join(whole)}")
    return report


def _fill(inner: nn.Module, plan: Any, seed: int, device: torch.device | None, threads: int | None,
          journal: Journal) -> None:
    fresh = any(t.device.type == "meta" for t in (*inner.parameters(), *inner.buffers()))
    if fresh:  # undone by going back to meta: no snapshot needed
        groups = tie_groups(inner)
        journal.on_undo(_back_to_meta(inner))
        inner.to_empty(device=device if device is not None else _default_device(inner))
        retie(inner, groups)
    params = dict(inner.named_parameters(remove_duplicate=False))
    index = {a.name: a for a in plan.assignments}
    for a in plan.assignments:
        if a.parametrized:
            _fill_parametrized(inner, a, seed, threads, index, journal)
            continue
        local, offset = local_piece(params[a.name])
        data = local.detach() if fresh else journal.save(local)
        fill_assignment_(data, a, seed, offset, threads=threads, assignments=index)
    with journal.writing():
        for name in plan.reset_stats:
            for buffer in inner.get_submodule(name).buffers(recurse=False):
                journal.save(buffer)
            inner.get_submodule(name).reset_running_stats()  # type: ignore[operator]
        add_scalars(inner, getattr(plan, "scalars", []), journal)


def _back_to_meta(model: nn.Module) -> Callable[[], None]:
    """What puts every slot of ``model`` back to the meta tensor it holds now (the same objects, so that
    ties, optimizers and FSDP's bookkeeping keep pointing at them)."""
    tables: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (t, dict(t)) for m in model.modules() for t in (m._parameters, m._buffers)]

    def undo() -> None:
        for table, before in tables:
            table.clear()
            table.update(before)
            for t in before.values():
                if t is not None and t.device.type != "meta":
                    t.data = torch.empty_like(t, device="meta")

    return undo


def _piecewise(a: Assignment) -> bool:
    """Whether a piece of ``a`` is drawn from its own indices alone (no full tensor)."""
    return all(isinstance(draw, d.ELEMENTWISE) for draw in a.draws) and not any(
        step.kind == "looks_linear" for step in a.post)

"""Big models: ``materialize(meta_model, device, scheme, seed)`` allocates and initializes a model built on
the meta device one module at a time (peak memory: the model's size, not twice it), or streams its weights
straight into a safetensors file without ever holding the model (peak memory: its largest tensor). (The module
is not called ``materialize`` so that the name stays the function's.)

Values come from the counter-based generator (:mod:`initlab.model.plan_counter`), so they equal
``init_model(model, scheme, seed=seed)`` on a model built normally. Tied weights are allocated once and stay
tied. Buffers created on meta have no values: normalization statistics are reset (mean 0, variance 1); every
other buffer is zero-filled and listed in the report's notes. :func:`on_meta` builds a model on meta without
running torch's init functions.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..model import InitReport, init_model
from ..model.graph import unwrap
from ..model.plan import Assignment
from ..model.plan_counter import fill_assignment_

PROGRESS_BYTES = 1 << 30  # a progress bar above 1 GiB
_SAFETENSORS_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}


@contextlib.contextmanager
def on_meta() -> Iterator[None]:
    """Build modules on the meta device without running ``torch.nn.init``'s functions: ``materialize`` draws
    every value anyway, and on meta some of them (``normal_``, via torch's Python reference kernels) import
    ``torch._dynamo``, ~150 MB and ~1 s once per process. Replaces the public in-place functions of
    ``torch.nn.init`` for the duration of the block (process-wide: not for use beside other threads).

    >>> import torch.nn as nn
    >>> with on_meta():
    ...     emb = nn.Embedding(50257, 768)
    >>> emb.weight.device.type
    'meta'
    """
    from torch.nn import init

    saved = {n: f for n, f in vars(init).items() if n.endswith("_") and not n.startswith("_") and callable(f)}

    def skip(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        return tensor

    try:
        for name in saved:
            setattr(init, name, skip)
        with torch.device("meta"):
            yield
    finally:
        for name, fn in saved.items():
            setattr(init, name, fn)


def _slots(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, torch.Tensor, bool]]:
    """(qualified name, owner module, attribute, tensor, is_parameter) for every direct parameter and buffer,
    module by module, aliases included."""
    for path, module in model.named_modules(remove_duplicate=False):
        prefix = f"{path}." if path else ""
        for attr, p in list(module._parameters.items()):
            if p is not None:
                yield prefix + attr, module, attr, p, True
        for attr, b in list(module._buffers.items()):
            if b is not None:
                yield prefix + attr, module, attr, b, False


def _buffer_fill(name: str, reset: set[str]) -> float:
    owner, _, attr = name.rpartition(".")
    return 1.0 if owner in reset and attr == "running_var" else 0.0


def _plan(model: nn.Module, scheme: Any, seed: int, rules: Any, options: dict[str, Any]) -> InitReport:
    report = init_model(model, scheme, seed=seed, rules=rules, dry_run=True, generator="counter", **options)
    if report.plan is None:
        raise ValueError(f"scheme {scheme!r} has no per-parameter plan: materialize cannot use it")
    return report


def _progress(total: int, enabled: bool | None, desc: str) -> Any:
    from tqdm.auto import tqdm

    show = total > PROGRESS_BYTES if enabled is None else enabled
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not show)


@torch.no_grad()
def materialize(model: nn.Module, device: torch.device | str = "cpu", scheme: Any = "auto", *, seed: int,
                path: str | os.PathLike[str] | None = None, dtype: torch.dtype | None = None,
                rules: Any = None, progress: bool | None = None, threads: int | None = None,
                **options: Any) -> InitReport:
    """Allocate and initialize the meta-device ``model`` module by module on ``device`` (in place), or, with
    ``path``, write its initialized state dict to a safetensors file and leave the model on meta.

    ``scheme``/``rules``/``options``: as for :func:`initlab.init_model` (the plan is made from shapes).
    ``dtype``: cast floating-point parameters (default: keep). ``progress``: tqdm bar (default: above 1 GiB).
    """
    inner = unwrap(model)
    report = _plan(inner, scheme, seed, rules, options)
    plan = report.plan
    if path is not None:
        _write_safetensors(inner, report, seed, path, dtype, progress, threads)
        return report
    index = {a.name: a for a in plan.assignments}
    by_name = {n: a for n, a in index.items() if not a.parametrized}
    reset = set(plan.reset_stats)
    done: dict[int, torch.Tensor] = {}  # id of a meta tensor -> its real replacement (keeps ties)
    untouched: list[str] = []
    slots = list(_slots(inner))
    total = sum(t.numel() * t.element_size() for _, _, _, t, _ in slots if t.device.type == "meta")
    bar = _progress(total, progress, "materialize")
    try:
        for name, module, attr, t, is_param in slots:
            if t.device.type != "meta":
                continue
            if id(t) in done:
                real = done[id(t)]
            else:
                kind = dtype if dtype is not None and t.is_floating_point() else t.dtype
                data = _initial_value(name, torch.empty(t.shape, dtype=kind, device=device), is_param,
                                      by_name, index, reset, seed, threads, untouched)
                real = nn.Parameter(data, requires_grad=t.requires_grad) if is_param else data
                done[id(t)] = real
                bar.update(t.numel() * t.element_size())
            if is_param:
                module._parameters[attr] = real  # type: ignore[assignment]
            else:
                module._buffers[attr] = real
    finally:
        bar.close()
    for a in plan.assignments:
        if a.parametrized:
            _set_parametrized(inner, a, seed, threads, index)
    for name in plan.reset_stats:
        inner.get_submodule(name).reset_running_stats()  # type: ignore[operator]
    if untouched:
        report.notes.append(f"no plan for {', '.join(untouched)} (kept by a rule?): zero-filled")
    report.dry_run = False
    return report


def _initial_value(name: str, data: torch.Tensor, is_param: bool, by_name: dict[str, Assignment],
                   index: dict[str, Assignment], reset: set[str], seed: int, threads: int | None,
                   untouched: list[str]) -> torch.Tensor:
    """Fill ``data`` as the state tensor ``name``: planned parameter, unplanned parameter (zeros, noted in
    ``untouched``) or buffer."""
    if is_param and name in by_name:
        fill_assignment_(data, by_name[name], seed, threads=threads, assignments=index)
    elif is_param:
        untouched.append(name)
        data.zero_()
    else:
        data.fill_(_buffer_fill(name, reset))
    return data


def _set_parametrized(model: nn.Module, a: Assignment, seed: int, threads: int | None,
                      index: dict[str, Assignment]) -> None:
    module = model.get_submodule(a.owner) if a.owner else model
    current = getattr(module, a.attr)
    target = torch.empty(a.shape, dtype=current.dtype, device=current.device)
    fill_assignment_(target, a, seed, threads=threads, assignments=index)
    setattr(module, a.attr, target)


def _write_safetensors(model: nn.Module, report: InitReport, seed: int, path: str | os.PathLike[str],
                       dtype: torch.dtype | None, progress: bool | None, threads: int | None) -> None:
    """Stream the initialized state dict into a safetensors file: header from the shapes, then each tensor
    generated into one buffer, written and freed. Tied weights are stored once (under the first name)."""
    plan = report.plan
    if any(a.parametrized for a in plan.assignments):
        raise NotImplementedError("writing parametrized models to safetensors is not supported")
    by_name = {a.name: a for a in plan.assignments}
    reset = set(plan.reset_stats)
    persistent = set(model.state_dict(keep_vars=True))
    entries: list[tuple[str, torch.Tensor, bool, torch.dtype]] = []
    seen: dict[int, str] = {}
    tied: dict[str, str] = {}
    for name, _, _, t, is_param in _slots(model):
        if name not in persistent:
            continue
        if id(t) in seen:
            tied[name] = seen[id(t)]
            continue
        seen[id(t)] = name
        kind = dtype if dtype is not None and t.is_floating_point() else t.dtype
        if kind not in _SAFETENSORS_DTYPES:
            raise TypeError(f"{name}: dtype {kind} has no safetensors code")
        entries.append((name, t, is_param, kind))
    header: dict[str, Any] = {"__metadata__": {"format": "pt", "initlab_seed": str(seed),
                                               "initlab_tied": json.dumps(tied)}}
    offset = 0
    for name, t, _, kind in entries:
        size = t.numel() * torch.empty((), dtype=kind).element_size()
        header[name] = {"dtype": _SAFETENSORS_DTYPES[kind], "shape": list(t.shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    blob = json.dumps(header, separators=(",", ":")).encode()
    blob += b" " * (-len(blob) % 8)
    bar = _progress(offset, progress, "safetensors")
    untouched: list[str] = []
    try:
        with open(path, "wb") as f:
            f.write(len(blob).to_bytes(8, "little"))
            f.write(blob)
            for name, t, is_param, kind in entries:
                data = _initial_value(name, torch.empty(t.shape, dtype=kind), is_param, by_name, by_name,
                                      reset, seed, threads, untouched)
                if data.numel():
                    f.write(data.reshape(-1).view(torch.uint8).numpy().data)
                bar.update(math.prod(t.shape) * data.element_size())
                del data
    finally:
        bar.close()
    if untouched:
        report.notes.append(f"no plan for {', '.join(untouched)} (kept by a rule?): zero-filled")
    report.notes.append(f"written to {os.fspath(path)}; tied weights stored once: {tied or 'none'}")

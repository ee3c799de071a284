"""Big models: ``materialize(meta_model, device, scheme, seed)`` allocates and initializes a model built on
the meta device one module at a time (peak memory: the model's size, not twice it), or streams its weights
straight into a safetensors file without ever holding the model (peak memory: its largest tensor). (The module
is not called ``materialize`` so that the name stays the function's.)

Values come from the counter-based generator (:mod:`initlab.model.plan_counter`), so they equal
``init_model(model, scheme, seed=seed)`` on a model built normally. Tied weights are allocated once and stay
tied. Buffers created on meta have no values: normalization statistics are reset (mean 0, variance 1); every
other buffer is zero-filled and listed in the report's notes. A parameter a rule keeps at its constructor's
value gets the architecture's default (``_param_rules``: NF-Nets' gains 1), or zeros, noted, without one.
:func:`on_meta` builds a model on meta without running torch's init functions.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ..backends.checks import check_device, check_seed
from ..errors import InitlabTypeError, InitlabValueError, first_line
from ..model import InitReport, init_model
from ..model._apply import Journal, model_lock, right_inverse, transaction
from ..model._transforms import add_scalars, check_scalars
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
        raise InitlabValueError(f"scheme {scheme!r} has no per-parameter plan: materialize cannot use it")
    return report


def _progress(total: int, enabled: bool | None, desc: str) -> Any:
    from tqdm.auto import tqdm

    show = total > PROGRESS_BYTES if enabled is None else enabled
    return tqdm(total=total, unit="B", unit_scale=True, desc=desc, disable=not show)


def check_seed_device(seed: Any, device: Any) -> torch.device | None:
    """Validate a counter seed and a device before anything is allocated; the device as a torch.device."""
    check_seed(seed)
    if device is None:
        return None
    dev = check_device(device)
    try:
        torch.empty(0, device=dev)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InitlabValueError(f"device {device!r} is not usable here ({first_line(exc)}): pass "
                                "'cpu', 'cuda', 'cuda:0'...") from None
    if dev.type == "meta":
        raise InitlabValueError("device='meta' allocates nothing: pass the device the model should live on")
    return dev


def check_parametrizations(model: nn.Module, plan: Any) -> None:
    """Fail before any allocation when a planned parametrized weight cannot be set from a value."""
    for a in plan.assignments:
        if not a.parametrized:
            continue
        owner: Any = model.get_submodule(a.owner) if a.owner else model
        for step in owner.parametrizations[a.attr]:
            if not hasattr(step, "right_inverse"):
                raise InitlabValueError(
                    f"{a.name}: parametrization {type(step).__name__} has no right_inverse: add "
                                 f"a rule {{{a.name!r}: 'keep'}}")
            with contextlib.suppress(Exception):  # other errors on meta are not conclusive
                try:
                    step.right_inverse(torch.empty(a.shape, device="meta"))
                except NotImplementedError as exc:
                    raise InitlabValueError(
                        f"{a.name}: parametrization {type(step).__name__} cannot be set from a "
                                     f"value ({exc}); add a rule {{{a.name!r}: 'keep'}}") from None


@torch.no_grad()
def materialize(model: nn.Module, device: torch.device | str = "cpu", scheme: Any = "auto", *, seed: int,
                path: str | os.PathLike[str] | None = None, dtype: torch.dtype | None = None,
                rules: Any = None, progress: bool | None = None, threads: int | None = None,
                **options: Any) -> InitReport:
    """Allocate and initialize the meta-device ``model`` module by module on ``device`` (in place), or, with
    ``path``, write its initialized state dict to a safetensors file and leave the model on meta.

    ``scheme``/``rules``/``options``: as for :func:`initlab.init_model` (the plan is made from shapes).
    ``dtype``: cast floating-point parameters (default: keep). ``progress``: tqdm bar (default: above 1 GiB).
    All or nothing: seed, device, scheme and parametrizations are checked before anything is allocated; on
    any failure (Ctrl-C included) the model is back on meta, and a ``path`` target is written to a temporary
    file in the same folder and renamed only when complete. Only tensors on meta are allocated: a model with
    none raises (use ``init_model``, which gives the same values for the same seed).
    """
    inner = unwrap(model)
    dev = check_seed_device(seed, device)
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise InitlabTypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    if path is None and not any(t.device.type == "meta" for _, _, _, t, _ in _slots(inner)):
        raise InitlabValueError(
            "materialize allocates tensors on the meta device and this model has none: use "
                         "init_model(model, scheme, seed=seed) (the same values) or build it under on_meta()")
    with model_lock(inner):
        report = _plan(inner, scheme, seed, rules, options)
        check_parametrizations(inner, report.plan)
        scalars = getattr(report.plan, "scalars", [])
        check_scalars(inner, scalars)
        if path is not None and scalars:
            raise InitlabValueError(
                f"scheme {scheme!r} adds parameters to the model: a safetensors file of the "
                             "model as built would not hold them; materialize in memory instead")
        if path is not None:
            _write_safetensors(inner, report, seed, path, dtype, progress, threads)
            return report
        with transaction(inner) as journal:
            _allocate(inner, report, seed, dev or torch.device("cpu"), dtype, progress, threads, journal)
    report.dry_run = False
    return report


def _allocate(inner: nn.Module, report: InitReport, seed: int, device: torch.device,
              dtype: torch.dtype | None, progress: bool | None, threads: int | None,
              journal: Journal) -> None:
    """Every meta slot given a filled tensor (undoably: the journal puts the meta tensors back)."""
    plan = report.plan
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
            if id(t) not in done:
                kind = dtype if dtype is not None and t.is_floating_point() else t.dtype
                data = _initial_value(name, torch.empty(t.shape, dtype=kind, device=device), is_param,
                                      by_name, index, reset, seed, threads, untouched)
                done[id(t)] = nn.Parameter(data, requires_grad=t.requires_grad) if is_param else data
                bar.update(t.numel() * t.element_size())
            journal.install(module._parameters if is_param else module._buffers, attr, done[id(t)])
    finally:
        bar.close()
    for a in plan.assignments:
        if a.parametrized:
            _set_parametrized(inner, a, seed, threads, index, journal)
    with journal.writing():
        for name in plan.reset_stats:
            inner.get_submodule(name).reset_running_stats()  # type: ignore[operator]
        add_scalars(inner, getattr(plan, "scalars", []), journal)
    if untouched:
        report.notes.append(f"no plan for {', '.join(untouched)} (kept by a rule?): zero-filled")


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
                      index: dict[str, Assignment], journal: Journal) -> None:
    module = model.get_submodule(a.owner) if a.owner else model
    current = getattr(module, a.attr)
    target = torch.empty(a.shape, dtype=current.dtype, device=current.device)
    fill_assignment_(target, a, seed, threads=threads, assignments=index)
    pairs = right_inverse(module, a.attr, target, a.name)
    with journal.writing():
        for original, value in pairs:
            journal.save(original).copy_(value)


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
            raise InitlabTypeError(f"{name}: dtype {kind} has no safetensors code")
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
        with _atomic_file(path) as f:
            write_chunk(f, len(blob).to_bytes(8, "little"))
            write_chunk(f, blob)
            for name, t, is_param, kind in entries:
                data = _initial_value(name, torch.empty(t.shape, dtype=kind), is_param, by_name, by_name,
                                      reset, seed, threads, untouched)
                if data.numel():
                    write_chunk(f, data.reshape(-1).view(torch.uint8).numpy().data)
                bar.update(math.prod(t.shape) * data.element_size())
                del data
    finally:
        bar.close()
    if untouched:
        report.notes.append(f"no plan for {', '.join(untouched)} (kept by a rule?): zero-filled")
    report.notes.append(f"written to {os.fspath(path)}; tied weights stored once: {tied or 'none'}")


def write_chunk(f: Any, data: Any) -> None:
    """One write to the target file (a function of its own so that tests can fail it)."""
    f.write(data)


@contextlib.contextmanager
def _atomic_file(path: str | os.PathLike[str]) -> Iterator[Any]:
    """A file written under a temporary name in the target's folder and renamed over ``path`` only when the
    block completes; on any failure (Ctrl-C included) the temporary is removed and ``path`` is untouched."""
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise IsADirectoryError(f"{target} is a directory: pass a file path such as "
                                f"{target}/model.safetensors")
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"folder {folder} does not exist: create it first")
    tmp = os.path.join(folder, f".{os.path.basename(target)}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for open()
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise

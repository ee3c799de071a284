"""One validator for seeds and generators, used by every drawing path (torch, counter, numpy, methods), so
that a seed one path accepts is never rejected, or silently reinterpreted, by another."""

from __future__ import annotations

import numbers
from typing import Any

from ..errors import InitlabTypeError, InitlabValueError

SEED_LIMIT = 1 << 64  # torch.Generator.manual_seed takes 64 bits; the counter generator hashes any int


def check_seed(seed: Any) -> int:
    """``seed`` as a Python int, or a clear error: an integer in ``[0, 2**64)`` (numpy integers too; not a
    bool, a float such as 1.5, or a negative number, which torch would silently wrap)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise InitlabTypeError(f"seed must be an int in [0, 2**64), got {type(seed).__name__} {seed!r}: "
                               "pass e.g. seed=0")
    value = int(seed)
    if not 0 <= value < SEED_LIMIT:
        raise InitlabValueError(f"seed must be in [0, 2**64), got {value}: pass e.g. seed=0")
    return value


def check_generator(generator: Any, *, names: tuple[str, ...] = ()) -> None:
    """``generator`` must be None, a ``torch.Generator`` or one of ``names`` (e.g. ``"counter"``)."""
    import torch

    if generator is None or isinstance(generator, torch.Generator):
        return
    if isinstance(generator, str) and generator in names:
        return
    allowed = ", ".join([*(repr(n) for n in names), "a torch.Generator"]) + " or None"
    if isinstance(generator, str):
        raise InitlabValueError(f"unknown generator {generator!r}: use {allowed}")
    numpy = type(generator).__module__.startswith("numpy")
    hint = "torch cannot draw from a numpy Generator: " if numpy else ""
    raise InitlabTypeError(f"generator must be {allowed}, got {type(generator).__name__}: {hint}"
                           "for a seed, pass seed=N instead")


def file_problem(path: Any, wanted: str) -> str | None:
    """Why ``path`` cannot be read as ``wanted`` (e.g. "a .py file"), or None for a regular file: a missing
    path, a directory and a FIFO/socket/device each get their own message (a FIFO would block a read)."""
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        return f"no such file: {p}"
    if p.is_dir():
        return f"{p} is a directory: give {wanted} inside it"
    if not p.is_file():
        return f"{p} is not a regular file (a FIFO, socket or device): give {wanted}"
    return None


def check_device(device: Any) -> Any:
    """``device`` as a ``torch.device``, or a clear error for a malformed name (``"bogus"``) or a device
    torch cannot use here (``"cuda"`` without CUDA)."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InitlabValueError(
            f"unknown device {device!r}: use e.g. 'cpu', 'cuda', 'cuda:0' or 'meta'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InitlabValueError(f"device {device!r}: CUDA is not available here; use device='cpu'")
    return dev

"""Transfer initialization: load every source tensor whose name and shape match, initialize the rest.

``transfer(model, source)`` reads a state dict, a ``.safetensors`` file or a ``torch.save`` file. Files are
read with safetensors or ``torch.load(weights_only=True)`` only: a pickle that would construct arbitrary
objects (a ``__reduce__`` payload) is refused by the restricted unpickler before anything runs. Renamed keys
are mapped by an optional ``key_map`` of regular expressions. Everything is checked before the model is
touched, and a failure midway restores the model bit for bit.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..backends.checks import check_generator, check_seed, file_problem
from ..errors import InitlabValueError
from ..model.state import ModelState

KeyMap = Mapping[str, str] | Callable[[str], str | None]
Source = Mapping[str, Any] | str | os.PathLike[str]
_WRAPPERS = ("state_dict", "model_state_dict", "model", "module")


class TransferError(InitlabValueError):
    """The source cannot be transferred into the model; the model was not changed."""


@dataclass
class TransferReport:
    """What :func:`transfer` did, tensor by tensor (names are the model's own state-dict names)."""

    source: str
    matched: list[str] = field(default_factory=list)
    shape_mismatched: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    renamed: dict[str, str] = field(default_factory=dict)
    tied: list[str] = field(default_factory=list)
    cast: dict[str, tuple[str, str]] = field(default_factory=dict)
    reinitialized: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def loaded_fraction(self) -> float:
        """Share of the model's state-dict entries that now hold source values (tied names included)."""
        total = len(self.matched) + len(self.tied) + len(self.shape_mismatched) + len(self.missing)
        return (len(self.matched) + len(self.tied)) / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "matched": self.matched,
            "shape_mismatched": {k: [list(a), list(b)] for k, (a, b) in self.shape_mismatched.items()},
            "missing": self.missing, "unexpected": self.unexpected, "renamed": self.renamed,
            "tied": self.tied, "cast": {k: list(v) for k, v in self.cast.items()},
            "reinitialized": self.reinitialized, "ignored": self.ignored,
        }

    def __str__(self) -> str:
        lines = [f"transfer from {self.source}: {len(self.matched)} matched, "
                 f"{len(self.shape_mismatched)} shape-mismatched, {len(self.missing)} missing, "
                 f"{len(self.unexpected)} unexpected, {len(self.reinitialized)} reinitialized"]
        for name, (src, dst) in self.shape_mismatched.items():
            lines.append(f"  shape mismatch {name}: source {tuple(src)} vs model {tuple(dst)}")
        lines += [f"  missing {n}" for n in self.missing]
        lines += [f"  unexpected {n}" for n in self.unexpected]
        return "\n".join(lines)


def transfer(model: nn.Module, source: Source, *, strict: bool = False, reinit: Any = "auto",
             key_map: KeyMap | None = None, seed: int | None = None,
             generator: torch.Generator | None = None) -> TransferReport:
    """Copy the tensors of ``source`` into ``model`` where name and shape match; initialize the rest.

    ``source``: a state dict (``{"name": tensor}``, also wrapped as ``{"state_dict": ...}``) or a path to
    a ``.safetensors`` file or a ``torch.save`` file (loaded with ``weights_only=True``: code is never
    unpickled). ``key_map``: ``{regex: replacement}`` applied to source names (first full match wins, ``re``
    group syntax), or a function ``name -> new name | None`` (``None`` drops the tensor).
    ``strict``: refuse unless every model tensor is matched and every source tensor used.
    ``reinit``: how to initialize parameters that were not loaded (missing or resized): ``"auto"``
    (:func:`initlab.init_model`'s data-free choice), a catalog scheme name or initializer for their weights
    (biases zero, norm scales one), or ``None`` to leave them. Buffers that were not loaded are left as is.

    Raises :class:`TransferError` (model unchanged) when no tensor matches, on ``strict`` violations, on
    key-map collisions, or when the file is not a tensor file (a pickle that would run code is refused
    without running it).
    """
    if seed is not None and generator is not None:
        raise TransferError("pass either seed or generator, not both")
    check_generator(generator)
    if seed is not None:
        check_seed(seed)
    label, raw = _load(source)
    tensors, ignored = _flatten(raw)
    renamed, mapped = _apply_key_map(tensors, key_map)
    state = model.state_dict(keep_vars=True)
    report = _match(state, mapped, TransferReport(label, renamed=renamed, ignored=ignored))
    _validate(model, state, mapped, report, strict)
    loaded_ids = {id(state[n]) for n in report.matched}
    pending = [n for n in [*report.shape_mismatched, *report.missing] if _is_parameter(model, n)]
    pending = [n for n in pending if id(state[n]) not in loaded_ids]
    if reinit is not None and pending:
        _check_reinit(state, pending, reinit)

    snapshot = ModelState.capture(model)
    try:
        with torch.no_grad():
            for name in report.matched:
                state[name].copy_(mapped[name])
        if reinit is not None and pending:
            report.reinitialized = _reinitialize(model, pending, reinit, seed, generator)
    except BaseException:
        snapshot.restore(model)
        raise
    return report


def _match(state: Mapping[str, torch.Tensor], mapped: Mapping[str, torch.Tensor],
           report: TransferReport) -> TransferReport:
    """Sort the model's tensors into matched (same shape), shape-mismatched, tied to a matched one, missing;
    and the source's into unexpected."""
    for name, target in state.items():
        if name not in mapped:
            continue
        src = mapped[name]
        if tuple(src.shape) != tuple(target.shape):
            report.shape_mismatched[name] = (tuple(src.shape), tuple(target.shape))
        else:
            report.matched.append(name)
            if src.dtype != target.dtype:
                report.cast[name] = (_dtype_name(src), _dtype_name(target))
    loaded_ids = {id(state[n]) for n in report.matched}
    for name, target in state.items():
        if name not in mapped:
            (report.tied if id(target) in loaded_ids else report.missing).append(name)
    report.unexpected = [n for n in mapped if n not in state]
    return report


def _load(source: Source) -> tuple[str, Any]:
    if isinstance(source, Mapping):
        return "state dict", source
    if not isinstance(source, (str, os.PathLike)):
        raise TransferError(f"source must be a state dict or a file path, got {type(source).__name__}")
    path = Path(source)
    problem = file_problem(path, "a weights file (.safetensors or .pt)")
    if problem:
        raise TransferError(problem)
    with path.open("rb") as fh:
        head = fh.read(9)
    if path.suffix == ".safetensors" or _looks_like_safetensors(head):
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return str(path), load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise TransferError(f"{path} is not a readable safetensors file: {exc}") from exc
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            return str(path), torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise TransferError(f"refused to load {path}: it is not a plain tensor file, and initlab never "
                            f"unpickles code (torch.load weights_only=True said: {first})") from None
    except (RuntimeError, EOFError, OSError) as exc:
        raise TransferError(f"{path} is neither a safetensors nor a torch.save file: {exc}") from exc


def _check_reinit(state: Mapping[str, torch.Tensor], pending: Iterable[str], reinit: Any) -> None:
    """Resolve ``reinit`` for every weight it will draw, before the model is touched: an unknown scheme, a
    shape it cannot fill or values its dtype cannot hold raise here, not halfway through."""
    if isinstance(reinit, str) and reinit == "auto":
        return
    from ..backends.torch_backend import check_dtype, resolve

    for name in pending:
        t = state[name]
        if t.dim() >= 2:
            try:
                check_dtype(resolve(t, reinit), t.dtype)
            except (ValueError, TypeError) as exc:
                raise TransferError(
                    f"reinit={reinit!r} cannot initialize {name} {tuple(t.shape)}: {exc}") from None


def _looks_like_safetensors(head: bytes) -> bool:
    # 8-byte little-endian header length, then the JSON header
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < 1 << 30


def _flatten(raw: Any) -> tuple[dict[str, torch.Tensor], list[str]]:
    if not isinstance(raw, Mapping):
        raise TransferError(f"the source holds a {type(raw).__name__}, not a mapping of names to tensors")
    while not any(isinstance(v, torch.Tensor) for v in raw.values()):
        inner = [raw[k] for k in _WRAPPERS if isinstance(raw.get(k), Mapping)]
        if not inner:
            break
        raw = inner[0]
    tensors = {str(k): v for k, v in raw.items() if isinstance(v, torch.Tensor)}
    ignored = sorted(str(k) for k, v in raw.items() if not isinstance(v, torch.Tensor))
    return tensors, ignored


def _apply_key_map(tensors: dict[str, torch.Tensor], key_map: KeyMap | None
                   ) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    if key_map is None:
        return {}, dict(tensors)
    if callable(key_map):
        rename = key_map
    elif not isinstance(key_map, Mapping) or not all(isinstance(k, str) and isinstance(v, str)
                                                     for k, v in key_map.items()):
        raise TransferError(f"key_map must be {{regex: replacement}} strings or a function name -> name, "
                            f"got {type(key_map).__name__}")
    else:
        try:
            rules = [(re.compile(p), r) for p, r in key_map.items()]
        except re.error as exc:
            raise TransferError(f"bad key_map pattern: {exc}") from exc

        def rename(name: str) -> str | None:
            for pattern, replacement in rules:
                if pattern.fullmatch(name):
                    return pattern.sub(replacement, name, count=1)
            return name

    renamed: dict[str, str] = {}
    mapped: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    for name, tensor in tensors.items():
        new = rename(name)
        if new is None:
            continue
        if new in mapped:
            raise TransferError(f"key_map sends both {origin[new]!r} and {name!r} to {new!r}")
        if new != name:
            renamed[name] = new
        mapped[new], origin[new] = tensor, name
    return renamed, mapped


def _validate(model: nn.Module, state: Mapping[str, torch.Tensor], mapped: Mapping[str, torch.Tensor],
              report: TransferReport, strict: bool) -> None:
    if not report.matched:
        hint = _hint(state, mapped, report)
        raise TransferError("no source tensor matches the model by name and shape" + hint)
    meta = [n for n in report.matched if state[n].device.type == "meta"]
    if meta:
        raise TransferError(f"model tensors are on the meta device (e.g. {meta[0]!r}): materialize the model "
                            "first (initlab.materialize)")
    bad = [n for n in report.matched if not mapped[n].is_floating_point() and state[n].is_floating_point()]
    if bad:
        raise TransferError(f"source tensor {bad[0]!r} has dtype {mapped[bad[0]].dtype}; the model's is "
                            "floating point")
    if strict and (report.shape_mismatched or report.missing or report.unexpected):
        raise TransferError("strict transfer refused:\n" + str(report))


def _hint(state: Mapping[str, torch.Tensor], mapped: Mapping[str, torch.Tensor],
          report: TransferReport) -> str:
    if report.shape_mismatched:
        return f" ({len(report.shape_mismatched)} names match with other shapes)"
    src, dst = sorted(mapped)[:3], sorted(state)[:3]
    hint = f"\n  source names: {src}{' ...' if len(mapped) > 3 else ''}\n  model names: {dst}"
    return hint + "\n  pass key_map={r'old_prefix\\.(.*)': r'new_prefix.\\1'} to rename"


def _dtype_name(t: torch.Tensor) -> str:
    return str(t.dtype).removeprefix("torch.")


def _is_parameter(model: nn.Module, name: str) -> bool:
    owner, _, leaf = name.rpartition(".")
    try:
        module = model.get_submodule(owner) if owner else model
    except AttributeError:
        return False
    return leaf in module._parameters


def _reinitialize(model: nn.Module, names: Iterable[str], reinit: Any,
                  seed: int | None, generator: torch.Generator | None) -> dict[str, str]:
    from ._reinit import reinitialize

    params = dict(model.named_parameters(remove_duplicate=False))
    seen: set[int] = set()
    chosen: list[str] = []
    for name in names:
        if id(params[name]) not in seen:
            seen.add(id(params[name]))
            chosen.append(name)
    return reinitialize(model, chosen, reinit, seed=seed, generator=generator)

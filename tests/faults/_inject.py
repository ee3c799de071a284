"""Fault injection: wrap internal functions so that the k-th call (counted over all of them) raises, or sends
the process a SIGINT and carries on; snapshots that compare everything a failed call must leave as it was."""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from initlab.model import ModelState

SIGINT = "sigint"


def _resolve(path: str) -> tuple[Any, str]:
    """(object holding the attribute, attribute name) for "pkg.module.name" or "pkg.module.Class.name"."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:-1]:
            obj = getattr(obj, name)
        if not hasattr(obj, parts[-1]):
            raise AttributeError(f"{path}: no such attribute")
        return obj, parts[-1]
    raise ImportError(path)


@dataclass
class Injector:
    targets: tuple[str, ...]
    calls: int = 0
    fail_at: int | None = None
    fault: Any = None
    hits: dict[str, int] = field(default_factory=dict)

    def _wrap(self, path: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            self.hits[path] = self.hits.get(path, 0) + 1
            if self.calls == self.fail_at:
                if self.fault == SIGINT:
                    os.kill(os.getpid(), signal.SIGINT)
                else:
                    raise self.fault(f"injected at call {self.calls} ({path})")
            return fn(*args, **kwargs)

        return wrapper

    @contextlib.contextmanager
    def armed(self, fail_at: int | None = None, fault: Any = None) -> Iterator[Injector]:
        self.calls, self.fail_at, self.fault, self.hits = 0, fail_at, fault, {}
        saved = []
        for path in self.targets:
            obj, name = _resolve(path)
            original = obj.__dict__[name] if isinstance(obj, type) else getattr(obj, name)
            saved.append((obj, name, original))
            fn = original.__func__ if isinstance(original, staticmethod) else original
            setattr(obj, name, self._wrap(path, fn))
        try:
            yield self
        finally:
            for obj, name, original in reversed(saved):
                setattr(obj, name, original)


@dataclass
class Snapshot:
    """Everything a failed call must leave as it was."""

    state: ModelState
    names: list[str]
    buffers: list[str]
    classes: list[type]
    hooks: int
    devices: list[str]

    @classmethod
    def of(cls, model: nn.Module) -> Snapshot:
        return cls(ModelState.capture(model), *_shape(model))

    def same(self, model: nn.Module) -> bool:
        return self.state.matches(model) and (self.names, self.buffers, self.classes, self.hooks,
                                              self.devices) == _shape(model)


def _shape(model: nn.Module) -> tuple[list[str], list[str], list[type], int, list[str]]:
    names = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    buffers = [n for n, _ in model.named_buffers(remove_duplicate=False)]
    classes = [type(m) for m in model.modules()]
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
                for m in model.modules())
    devices = [p.device.type for p in model.parameters()]
    return names, buffers, classes, hooks, devices


def values(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: t.detach().clone() for n, t in model.state_dict(keep_vars=True).items()
            if t.device.type != "meta"}


def same_values(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

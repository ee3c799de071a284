"""``monitor``: the statistics of ``diagnose``, recorded during training every N steps.

The hooks stay installed but measure only on recording steps; they never change what the model computes or
draw random numbers. Gradients are read from ``.grad`` when ``step()`` is called (after ``backward()``).
"""

from __future__ import annotations

import json
import math
import os
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from . import stats
from .diagnosis import Diagnosis
from .recorder import Recorder, first_tensor
from .sites import layer_sites


@dataclass
class Snapshot:
    step: int
    diagnosis: Diagnosis


class Monitor:
    """Use as a context manager and call ``step()`` once per training step, after ``loss.backward()`` and
    before ``optimizer.zero_grad()``::

        with initlab.monitor(model, every=50, path="stats.json") as mon:
            for x, y in data:
                loss = loss_fn(model(x), y); loss.backward()
                mon.step(); opt.step(); opt.zero_grad()

    ``mon.snapshots`` holds one :class:`Diagnosis` per recorded step (steps 0, N, 2N, ...). ``path`` gets the
    JSON after every snapshot; ``tensorboard`` (a log directory or a ``SummaryWriter``) gets per-layer
    scalars.
    """

    def __init__(
        self,
        model: nn.Module,
        every: int = 100,
        *,
        path: str | os.PathLike[str] | None = None,
        tensorboard: Any = None,
        example_input: Any = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"monitor expects a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.model = model
        self.every = every
        self.path = path
        self.snapshots: list[Snapshot] = []
        self.steps = 0
        self._writer, self._own_writer = _writer(tensorboard)
        self._recorder: Recorder | None = None
        self._input: dict[str, Any] = {}
        self._pre_hook: Any = None
        self._example_input = example_input
        self._discovering = False

    # -- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> Monitor:
        """Install the hooks; the layers are found from ``example_input`` now, else from the first batch."""
        if self._pre_hook is None:
            self._pre_hook = self.model.register_forward_pre_hook(self._on_forward, with_kwargs=True)
            if self._example_input is not None:
                self._attach(self._example_input)
        return self

    def _attach(self, example_input: Any) -> None:
        sites, _ = layer_sites(self.model, example_input)
        if not sites:
            raise ValueError(f"found no layers to monitor in {type(self.model).__name__}")
        self._recorder = Recorder(sites).__enter__()
        self._recorder.armed = self.steps % self.every == 0

    def close(self) -> None:
        if self._recorder is not None:
            self._recorder.__exit__()
            self._recorder = None
        if self._pre_hook is not None:
            self._pre_hook.remove()
            self._pre_hook = None
        if self._writer is not None and self._own_writer:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> Monitor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- recording -------------------------------------------------------------------------------------------
    def _on_forward(self, module: nn.Module, args: Any, kwargs: Any) -> None:
        if self._discovering:
            return
        if self._recorder is None:  # first batch: find the layers with it (discovery may run the model)
            self._discovering = True
            try:
                self._attach(kwargs if kwargs else args[0] if len(args) == 1 else tuple(args))
            finally:
                self._discovering = False
        assert self._recorder is not None
        if not self._recorder.armed or self._input:
            return
        x = first_tensor(list(args) + list(kwargs.values()))
        if x is not None:
            rms = stats.moments(x).rms if x.is_floating_point() else math.nan
            self._input = {"shape": list(x.shape), "rms": rms if math.isfinite(rms) else None}

    def step(self) -> Snapshot | None:
        """Close the current training step; returns the snapshot when this step was recorded."""
        if self._pre_hook is None:
            raise RuntimeError("the monitor is not running: use it as a context manager or call start()")
        if self._recorder is None:  # no forward pass yet
            self.steps += 1
            return None
        snapshot = None
        if self._recorder.armed and self._recorder.calls:
            snapshot = self._snapshot()
        self._recorder.clear()
        self._input = {}
        self.steps += 1
        self._recorder.armed = self.steps % self.every == 0
        return snapshot

    __call__ = step

    @torch.no_grad()
    def _snapshot(self) -> Snapshot:
        assert self._recorder is not None
        layers = self._recorder.layers(lambda p: p.grad)
        d = Diagnosis.build(
            type(self.model).__name__, self._input.get("shape", []), layers, input_rms=self._input.get("rms")
        )
        snap = Snapshot(self.steps, d)
        self.snapshots.append(snap)
        if self._writer is not None:
            _write_scalars(self._writer, snap)
        if self.path is not None:
            self.to_json(self.path)
        return snap

    # -- output ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "every": self.every,
            "steps": self.steps,
            "snapshots": [{"step": s.step, **s.diagnosis.to_dict()} for s in self.snapshots],
        }

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        text = json.dumps(self.to_dict(), allow_nan=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def series(self, field: str) -> dict[str, list[float | None]]:
        """One layer statistic over the recorded steps, per layer name: ``series("act.std")``,
        ``series("dead")``, ``series("grad_rms")``."""
        out: dict[str, list[float | None]] = {}
        for snap in self.snapshots:
            for la in snap.diagnosis.layers:
                value: Any = la
                for part in field.split("."):
                    value = getattr(value, part)
                out.setdefault(la.name, []).append(value)
        return out


def monitor(
    model: nn.Module,
    every: int = 100,
    *,
    path: str | os.PathLike[str] | None = None,
    tensorboard: Any = None,
    example_input: Any = None,
) -> Monitor:
    """Record diagnose's per-layer statistics every ``every`` training steps (see :class:`Monitor`)."""
    return Monitor(model, every, path=path, tensorboard=tensorboard, example_input=example_input)


SCALARS = (
    ("act_std", lambda la: la.act.std),
    ("output_std", lambda la: la.output.std),
    ("grad_rms", lambda la: la.grad_rms),
    ("dead", lambda la: la.dead),
    ("saturated", lambda la: la.saturated),
    ("weight_grad_ratio", lambda la: la.weight.ratio if la.weight else None),
)


def _write_scalars(writer: Any, snap: Snapshot) -> None:
    for la in snap.diagnosis.layers:
        for key, get in SCALARS:
            value = get(la)
            if value is not None and math.isfinite(value):
                writer.add_scalar(f"{key}/{la.name}", value, snap.step)
    for key, value in snap.diagnosis.summary().items():
        if value is not None and math.isfinite(value):
            writer.add_scalar(f"summary/{key}", value, snap.step)


def _writer(tensorboard: Any) -> tuple[Any, bool]:
    if tensorboard is None:
        return None, False
    if hasattr(tensorboard, "add_scalar"):
        return tensorboard, False
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(
            "tensorboard is not installed (pip install 'initlab[tensorboard]'); monitor writes JSON only",
            stacklevel=3,
        )
        return None, False
    return SummaryWriter(log_dir=os.fspath(tensorboard)), True

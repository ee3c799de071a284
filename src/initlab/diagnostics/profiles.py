"""What diagnostics needs to know about an activation: where its units die or saturate, and a torch form.

Thresholds are computed numerically from the catalog activation (its derivative on a fine grid), so any
activation the catalog knows -- or any callable it wraps -- gets them without a hand-written table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from ..backends.torch_activations import torch_callable
from ..catalog.activations import Activation, activation_names

SATURATION_LEVEL = 0.05  # saturated where phi' < 5% of its peak
GRID = np.linspace(-60.0, 60.0, 240_001)  # step 5e-4; includes 0 exactly
STEP = 120.0 / (GRID.size - 1)  # np.gradient by the spacing (given the points: the non-uniform formula)
KINK = 0.1  # a derivative that jumps from zero to 5% of its peak within this distance: a ReLU-like floor

TorchFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class ActivationProfile:
    """``dead_edge``: a unit is dead when its pre-activation never exceeds it (ReLU: 0).
    ``saturation``: (low, high): pre-activations outside are saturated (tanh: about +-2.18); inf if never."""

    spec: str
    dead_edge: float | None
    saturation: tuple[float, float] | None
    fn: TorchFn

    @property
    def can_die(self) -> bool:
        return self.dead_edge is not None

    @property
    def saturates(self) -> bool:
        return self.saturation is not None


_CACHE: dict[str, ActivationProfile] = {}


_PROBE = np.linspace(-8.0, 8.0, 97)


def profile(act: Activation) -> ActivationProfile:
    """The profile of a catalog activation (cached by spec for the catalog's named activations; a wrapped
    callable by its name and its values on a probe grid: each HF ``GELUActivation`` module is a new callable,
    and building a profile evaluates it on 240k points)."""
    if act.name not in activation_names():
        key = f"{act.name}@{np.asarray(act(_PROBE), dtype=np.float64).tobytes().hex()}"
        if key not in _CACHE:
            _CACHE[key] = _build(act)
        return replace(_CACHE[key], fn=_torch_fn(act))
    if act.spec not in _CACHE:
        _CACHE[act.spec] = _build(act)
    return _CACHE[act.spec]


def _build(act: Activation) -> ActivationProfile:
    """Named activations keep the catalog's word on whether they die or saturate; for any other callable
    (a custom module) the derivative decides: zero on a left half-line up to a kink -> it can die (a smooth
    decay, as tanh's, is not death), below 5% of its peak at both ends -> it saturates."""
    named = act.name in activation_names()
    if named and not (act.can_die or act.saturates):  # nothing to locate on the grid
        return ActivationProfile(act.spec, None, None, _torch_fn(act))
    y = act(GRID)
    d = np.abs(np.gradient(y, STEP))
    peak = float(np.nanmax(d)) if np.isfinite(d).any() else 0.0
    if named:
        can_die, saturates = act.can_die, act.saturates
    else:
        rising = np.flatnonzero(d > 1e-6 * peak)
        full = np.flatnonzero(d >= SATURATION_LEVEL * peak)
        can_die = bool(rising.size and rising[0] > 0 and GRID[full[0]] - GRID[rising[0]] < KINK)
        saturates = bool(max(d[0], d[-1]) < SATURATION_LEVEL * peak)
    dead_edge = _dead_edge(d, peak) if can_die else None
    saturation = _saturation(d, peak) if saturates else None
    return ActivationProfile(act.spec, dead_edge, saturation, _torch_fn(act))


def _dead_edge(d: np.ndarray, peak: float) -> float | None:
    """The left end of the active region: below it the derivative is zero."""
    active = np.flatnonzero(d > 1e-6 * peak)
    return float(GRID[active[0]]) if active.size and active[0] > 0 else None


def _saturation(d: np.ndarray, peak: float) -> tuple[float, float] | None:
    """Outermost points where phi' is still >= 5% of its peak; beyond them every unit is saturated."""
    alive = np.flatnonzero(d >= SATURATION_LEVEL * peak)
    if not alive.size:
        return None
    low = float(GRID[alive[0] - 1]) if alive[0] > 0 else -np.inf
    high = float(GRID[alive[-1] + 1]) if alive[-1] < GRID.size - 1 else np.inf
    return (low, high) if np.isfinite(low) or np.isfinite(high) else None


def _torch_fn(act: Activation) -> TorchFn:
    found = torch_callable(act)  # the catalog's table, resolved by the torch backend
    if found is not None:
        return found

    def via_numpy(x: torch.Tensor) -> torch.Tensor:
        out = act(x.detach().double().cpu().numpy())
        return torch.from_numpy(np.asarray(out, dtype=np.float64)).to(device=x.device, dtype=x.dtype)

    return via_numpy

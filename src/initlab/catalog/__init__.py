"""The catalog: every named initialization scheme with exact semantics, backend-neutral.

Owns scheme names and parameters (:mod:`.registry`, :mod:`.dialects`), the one general mechanism
(:class:`~.initializers.VarianceScaling`), fans (:mod:`.fans`), activations and gains (:mod:`.activations`,
:mod:`.gains`), module-default profiles (:mod:`.profiles`), fixed-value initializers (array constants,
Keras' STFT: :mod:`.fixed`) and the primitive draws a backend must implement
(:mod:`.draws`). It imports numpy and scipy only -- never torch or jax -- and nothing else from initlab.
"""

from .activations import Activation, activation, activation_names
from .draws import Draw
from .fans import Axes, Fans, compute_fans
from .gains import chi, classic_gain, critical_sigma_w2, fixed_point_q, gain, moments, variance_gain
from .initializers import Context, Initializer, VarianceScaling
from .registry import Entry, Scheme, available, canonical, describe, entries, from_config, get, to_config

__all__ = [
    "Activation", "Axes", "Context", "Draw", "Entry", "Fans", "Initializer", "Scheme", "VarianceScaling",
    "activation", "activation_names", "available", "canonical", "chi", "classic_gain", "compute_fans",
    "critical_sigma_w2", "describe", "entries", "fixed_point_q", "from_config", "gain", "get", "moments",
    "to_config", "variance_gain", "variance_scaling",
]


def variance_scaling(scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal", *,
                     truncation: float = 2.0, correct: bool = True, gain: float | str = 1.0,
                     axes: Axes | None = None) -> VarianceScaling:
    """JAX-style ``variance_scaling``: ``Var[w] = scale * gain^2 / n`` with ``n`` the fan chosen by ``mode``.

    >>> variance_scaling(2.0, "fan_in", "normal").resolve((256, 128))
    Normal(mean=0.0, std=0.125)
    """
    return VarianceScaling(scale, mode, distribution, truncation, correct, gain, axes=axes)

"""The catalog: every named initialization scheme with exact semantics, backend-neutral.

Owns scheme names and parameters (:mod:`.registry`, :mod:`.dialects`), the one general mechanism
(:class:`~.initializers.VarianceScaling`), fans (:mod:`.fans`), activations and gains (:mod:`.activations`,
:mod:`.gains`), module-default profiles (:mod:`.profiles`), fixed-value initializers (array constants,
Keras' STFT: :mod:`.fixed`) and the primitive draws a backend must implement
(:mod:`.draws`). It imports numpy and scipy only -- never torch or jax -- and nothing else from initlab.
"""

from .activations import Activation, activation, activation_names  # noqa: F401 (re-exports, see below)
from .draws import Draw
from .fans import Axes, Fans, compute_fans  # noqa: F401 (re-exports, see below)
from .gains import chi, classic_gain, critical_sigma_w2, fixed_point_q, gain, moments, variance_gain  # noqa: F401 (re-exports, see below)
from .initializers import Context, Initializer, VarianceScaling  # noqa: F401 (re-exports, see below)
from .registry import Entry, Scheme, available, canonical, describe, entries, from_config, get, to_config  # noqa: F401 (re-exports, see below)

# Also here, listed once in ``initlab.__all__`` (their one documented path, ``initlab.<name>``): Axes, Fans,
# Initializer, VarianceScaling, activation, available, chi, classic_gain, compute_fans, critical_sigma_w2,
# describe, from_config, gain, get, moments, to_config, variance_gain, variance_scaling.
__all__ = [
    "Activation", "Context", "Draw", "Entry", "Scheme", "activation_names", "canonical", "entries",
    "fixed_point_q",
]


def variance_scaling(scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal", *,
                     truncation: float = 2.0, correct: bool = True, gain: float | str = 1.0,  # noqa: F811
                     axes: Axes | None = None) -> VarianceScaling:
    """JAX-style ``variance_scaling``: ``Var[w] = scale * gain^2 / n`` with ``n`` the fan chosen by ``mode``.

    >>> variance_scaling(2.0, "fan_in", "normal").resolve((256, 128))
    Normal(mean=0.0, std=0.125)
    """
    return VarianceScaling(scale, mode, distribution, truncation, correct, gain, axes=axes)

"""Activation functions as numpy callables, by name: ``activation("leaky_relu(0.2)")``.

The catalog needs an activation's values (for gains and moment maps) and two facts diagnostics use: whether it
can die (ReLU family: zero gradient on a half-line) and whether it saturates (sigmoid/tanh family).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from .parse import format_call, parse_call

Array = np.ndarray
Fn = Callable[[Array], Array]

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805


@dataclass(frozen=True)
class Activation:
    """A named activation ``phi`` with its parameters; ``phi(x)`` evaluates it in float64."""

    name: str
    fn: Fn = field(compare=False, repr=False)
    params: dict[str, float] = field(default_factory=dict)
    can_die: bool = False
    saturates: bool = False

    def __call__(self, x: Array) -> Array:
        return self.fn(np.asarray(x, dtype=np.float64))

    @property
    def spec(self) -> str:
        """The call form that :func:`activation` parses back to this activation."""
        return format_call(self.name, self.params)


def _leaky(negative_slope: float) -> Fn:
    return lambda x: np.where(x >= 0, x, negative_slope * x)


def _elu(alpha: float) -> Fn:
    return lambda x: np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _erf(x: Array) -> Array:
    from scipy import special  # on first use: a process that only draws weights never imports scipy

    return special.erf(x)


def _expit(x: Array) -> Array:
    from scipy import special

    return special.expit(x)


def _softplus(x: Array) -> Array:
    return np.logaddexp(0.0, x)


_FACTORIES: dict[str, tuple[Callable[..., Fn], dict[str, float], bool, bool]] = {
    # name: (factory(**params) -> fn, default params, can_die, saturates)
    "linear": (lambda: (lambda x: x), {}, False, False),
    "relu": (lambda: (lambda x: np.maximum(x, 0.0)), {}, True, False),
    "relu6": (lambda: (lambda x: np.clip(x, 0.0, 6.0)), {}, True, False),
    "leaky_relu": (_leaky, {"negative_slope": 0.01}, False, False),
    "prelu": (_leaky, {"negative_slope": 0.25}, False, False),
    "elu": (_elu, {"alpha": 1.0}, False, False),
    "celu": (lambda alpha: (lambda x: np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(x / alpha))),
             {"alpha": 1.0}, False, False),
    "selu": (lambda: (lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))),
             {}, False, False),
    "gelu": (lambda: (lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))), {}, False, False),
    "gelu_tanh": (lambda: (lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
                  {}, False, False),
    "silu": (lambda: (lambda x: x * _expit(x)), {}, False, False),
    "mish": (lambda: (lambda x: x * np.tanh(_softplus(x))), {}, False, False),
    "softplus": (lambda: _softplus, {}, False, False),
    "tanh": (lambda: np.tanh, {}, False, True),
    "sigmoid": (lambda: _expit, {}, False, True),
    "hardtanh": (lambda: (lambda x: np.clip(x, -1.0, 1.0)), {}, False, True),
    "hardsigmoid": (lambda: (lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0)), {}, True, True),
    "hardswish": (lambda: (lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)), {}, False, False),
    "softsign": (lambda: (lambda x: x / (1.0 + np.abs(x))), {}, False, True),
    "sin": (lambda: np.sin, {}, False, False),
}
_ALIASES = {"identity": "linear", "none": "linear", "swish": "silu", "logistic": "sigmoid",
            "gelu_new": "gelu_tanh", "leakyrelu": "leaky_relu", "conv": "linear"}


# Converters for foreign activation objects (e.g. torch modules), registered by the backends that know them.
ADAPTERS: list[Callable[[Any], Activation | None]] = []


def activation_names() -> list[str]:
    """Every activation name :func:`activation` knows."""
    return sorted(_FACTORIES)


def activation(spec: str | Activation | Callable[[Array], Any], **params: float) -> Activation:
    """An :class:`Activation` from a name (``"leaky_relu(0.2)"``), an Activation, or a numpy callable.

    >>> activation("leaky_relu(0.2)").params
    {'negative_slope': 0.2}
    """
    if isinstance(spec, Activation):
        return spec
    for adapter in ADAPTERS:
        adapted = adapter(spec)
        if adapted is not None:
            return adapted
    if callable(spec) and not isinstance(spec, str):
        fn = spec
        name = getattr(spec, "__name__", type(spec).__name__)
        return Activation(name, lambda x: np.asarray(fn(x), dtype=np.float64))
    if not params:
        return _from_string(str(spec))  # cached: model-level code asks for the same few names many times
    return _from_string.__wrapped__(str(spec), **params)


@lru_cache(maxsize=512)
def _from_string(spec: str, **params: float) -> Activation:
    name, args, kwargs = parse_call(spec)
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _FACTORIES:
        import difflib

        close = difflib.get_close_matches(key, list(_FACTORIES) + list(_ALIASES), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(activation_names())}"
        raise ValueError(f"unknown activation {name!r}{hint} (or pass a callable)")
    factory, defaults, can_die, saturates = _FACTORIES[key]
    merged = dict(defaults)
    names = list(defaults)
    if len(args) > len(names):
        raise ValueError(f"{key} takes at most {len(names)} parameter(s) {names}, got {args}")
    merged.update(zip(names, args, strict=False))
    merged.update(kwargs)
    merged.update(params)
    unknown = set(merged) - set(defaults)
    if unknown:
        raise ValueError(f"{key} has no parameter(s) {sorted(unknown)}; it takes {names}")
    fn = factory(**{k: float(v) for k, v in merged.items()})
    return Activation(key, fn, {k: float(v) for k, v in merged.items()}, can_die, saturates)

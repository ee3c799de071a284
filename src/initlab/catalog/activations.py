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


def _selu(x: Array) -> Array:
    return SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * np.expm1(np.minimum(x, 0)))


@dataclass(frozen=True)
class TorchForm:
    """How torch spells an activation, by name (the catalog never imports torch;
    ``backends.torch_activations`` resolves these names).

    ``functions``: names in ``torch``, ``torch.nn.functional`` or ``Tensor`` (in-place ``name_`` variants
    implied); ``module``: the ``torch.nn`` class; ``args``: torch's arguments after the input, in order, with
    torch's defaults (an arg the catalog also names is a parameter, read from the call or the module's
    attribute); ``fixed``: arguments that must have this value, else it is another function
    (``gelu(approximate="tanh")`` is ``gelu_tanh``; ``softplus(beta=2)`` is nothing the catalog knows)."""

    functions: tuple[str, ...] = ()
    module: str | None = None
    args: tuple[tuple[str, float | str], ...] = ()
    fixed: tuple[tuple[str, float | str], ...] = ()


@dataclass(frozen=True)
class _Entry:
    factory: Callable[..., Fn]
    defaults: dict[str, float] = field(default_factory=dict)
    can_die: bool = False
    saturates: bool = False
    relu_like: bool = False  # a rectifier: He-style gains are its usual remedy (diagnostics' advice)
    torch: TorchForm = TorchForm()
    aliases: tuple[str, ...] = ()


def _tf(functions: str = "", module: str | None = None, args: tuple[tuple[str, float | str], ...] = (),
        fixed: tuple[tuple[str, float | str], ...] = ()) -> TorchForm:
    return TorchForm(tuple(functions.split()), module, args, fixed)


_APPROX = (("approximate", "none"),)
# the one activation table: numpy form, defaults, facts, torch spellings and aliases
_TABLE: dict[str, _Entry] = {
    "linear": _Entry(lambda: (lambda x: x), torch=_tf("", "Identity"), aliases=("identity", "none", "conv")),
    "relu": _Entry(lambda: (lambda x: np.maximum(x, 0.0)), {}, True, relu_like=True,
                   torch=_tf("relu", "ReLU")),
    "relu6": _Entry(lambda: (lambda x: np.clip(x, 0.0, 6.0)), {}, True, relu_like=True,
                    torch=_tf("relu6", "ReLU6")),
    "leaky_relu": _Entry(_leaky, {"negative_slope": 0.01}, relu_like=True, aliases=("leakyrelu",),
                         torch=_tf("leaky_relu", "LeakyReLU", (("negative_slope", 0.01),))),
    "prelu": _Entry(_leaky, {"negative_slope": 0.25}, relu_like=True),
    "elu": _Entry(_elu, {"alpha": 1.0}, relu_like=True, torch=_tf("elu", "ELU", (("alpha", 1.0),))),
    "celu": _Entry(lambda alpha: (lambda x: np.maximum(x, 0) + np.minimum(0, alpha * np.expm1(x / alpha))),
                   {"alpha": 1.0}, relu_like=True, torch=_tf("celu", "CELU", (("alpha", 1.0),))),
    "selu": _Entry(lambda: _selu, torch=_tf("selu", "SELU")),
    "gelu": _Entry(lambda: (lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))), relu_like=True,
                   torch=_tf("gelu", "GELU", _APPROX, _APPROX)),
    "gelu_tanh": _Entry(
        lambda: (lambda x: 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))),
        relu_like=True, aliases=("gelu_new",),
        torch=_tf("gelu", "GELU", _APPROX, (("approximate", "tanh"),))),
    "silu": _Entry(lambda: (lambda x: x * _expit(x)), relu_like=True, aliases=("swish",),
                   torch=_tf("silu", "SiLU")),
    "mish": _Entry(lambda: (lambda x: x * np.tanh(_softplus(x))), relu_like=True, torch=_tf("mish", "Mish")),
    "softplus": _Entry(lambda: _softplus, relu_like=True,
                       torch=_tf("softplus", "Softplus", (("beta", 1.0),), (("beta", 1.0),))),
    "tanh": _Entry(lambda: np.tanh, saturates=True, torch=_tf("tanh", "Tanh")),
    "sigmoid": _Entry(lambda: _expit, saturates=True, aliases=("logistic",), torch=_tf("sigmoid", "Sigmoid")),
    "hardtanh": _Entry(lambda: (lambda x: np.clip(x, -1.0, 1.0)), saturates=True,
                       torch=_tf("hardtanh", "Hardtanh", (("min_val", -1.0), ("max_val", 1.0)),
                                 (("min_val", -1.0), ("max_val", 1.0)))),
    "hardsigmoid": _Entry(lambda: (lambda x: np.clip(x / 6.0 + 0.5, 0.0, 1.0)), can_die=True, saturates=True,
                          torch=_tf("hardsigmoid", "Hardsigmoid")),
    "hardswish": _Entry(lambda: (lambda x: x * np.clip(x / 6.0 + 0.5, 0.0, 1.0)), relu_like=True,
                        torch=_tf("hardswish", "Hardswish")),
    "softsign": _Entry(lambda: (lambda x: x / (1.0 + np.abs(x))), saturates=True,
                       torch=_tf("softsign", "Softsign")),
    "sin": _Entry(lambda: np.sin, torch=_tf("sin")),
}
_ALIASES = {alias: name for name, e in _TABLE.items() for alias in e.aliases}


def torch_forms() -> dict[str, TorchForm]:
    """Catalog name -> its torch spelling (for the torch backend to resolve)."""
    return {name: e.torch for name, e in _TABLE.items()}


def relu_like_names() -> frozenset[str]:
    """Rectifier-family activations (the ones He-style gains are the usual remedy for)."""
    return frozenset(name for name, e in _TABLE.items() if e.relu_like)


# Converters for foreign activation objects (e.g. torch modules), registered by the backends that know them.
ADAPTERS: list[Callable[[Any], Activation | None]] = []


def activation_names() -> list[str]:
    """Every activation name :func:`activation` knows."""
    return sorted(_TABLE)


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
def _hint(key: str) -> str:
    """The close names for an unknown activation (remembered: model code asks about the same composite and
    module names again and again, and a fuzzy match over every name costs ~3 ms)."""
    import difflib

    close = difflib.get_close_matches(key, list(_TABLE) + list(_ALIASES), n=3)
    return f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(activation_names())}"


@lru_cache(maxsize=512)
def _from_string(spec: str, **params: float) -> Activation:
    name, args, kwargs = parse_call(spec)
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _TABLE:
        raise ValueError(f"unknown activation {name!r}{_hint(key)} (or pass a callable)")
    entry = _TABLE[key]
    defaults = entry.defaults
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
    fn = entry.factory(**{k: float(v) for k, v in merged.items()})
    return Activation(key, fn, {k: float(v) for k, v in merged.items()}, entry.can_die, entry.saturates)

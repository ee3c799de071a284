"""The one ``LayerType`` registry: every fact initlab uses about a kind of layer lives in one frozen record.

A :class:`LayerType` says which modules it matches (classes, most specific first, or a predicate), its
:class:`Kind` (how it computes: a matrix product over ``fan_in``, a norm, an embedding lookup, ...), each of
its parameters' role and layout (:class:`ParamSpec`), whether its output is linear in (weight, bias) so a
data-driven method may rescale it exactly (``homogeneous``), whether data-dependent schemes handle it
(``data_init``), and optionally a custom map of the input second moment to the output's.

``layer_type(module)`` looks a module up (user registrations first, newest first, then the built-ins in
order); ``register_layer`` teaches initlab a new layer in one call. Everything else (discovery, propagation,
"auto", catalog schemes, LSUV, diagnose) reads these records instead of comparing kind strings."""

from __future__ import annotations

import contextlib
import contextvars
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal, Protocol

import torch
from torch import nn

from ..catalog.fans import Fans, Layout, compute_fans
from ..errors import InitlabTypeError, InitlabValueError


class Kind(StrEnum):
    """How a layer computes. A ``StrEnum``: ``Kind.LINEAR == "linear"``, so code written against the old kind
    strings keeps working."""

    LINEAR = "linear"
    BILINEAR = "bilinear"
    CONV = "conv"
    CONV_TRANSPOSE = "conv_transpose"
    HF_CONV1D = "hf_conv1d"
    RAW = "raw"  # a bare parameter used through F.linear / F.conv* / @
    EMBEDDING = "embedding"
    EMBEDDING_BAG = "embedding_bag"
    NORM = "norm"
    ATTENTION = "attention"
    RNN = "rnn"

    @property
    def weight(self) -> bool:
        """A product of the input with one weight over ``fan_in`` inputs (plus a bias)."""
        return self in _WEIGHT_KINDS

    @property
    def embedding(self) -> bool:
        return self in (Kind.EMBEDDING, Kind.EMBEDDING_BAG)


_WEIGHT_KINDS = frozenset(
    {Kind.LINEAR, Kind.BILINEAR, Kind.CONV, Kind.CONV_TRANSPOSE, Kind.HF_CONV1D, Kind.RAW}
)

Role = Literal[
    "weight",
    "bias",
    "embedding",
    "norm_weight",
    "norm_bias",
    "rnn_input",
    "rnn_recurrent",
    "rnn_bias",
    "attention_in",
    "attention_out",
]


@dataclass(frozen=True)
class ParamSpec:
    """How one parameter of a layer is laid out: its role (profile key), layout and block structure."""

    role: Role
    layout: Layout = "torch"
    groups: int = 1
    blocks: int = 1
    stride: tuple[int, ...] | None = None
    fans_of: str | None = None  # bias-like: resolve with the fans of this sibling parameter
    batched: bool = False  # leading dims beyond the last two index separate matrices (bmm, fused experts)

    def fans(self, shape: tuple[int, ...]) -> Fans | None:
        if len(shape) < 2:
            return None
        if self.batched and len(shape) > 2:
            shape = shape[-2:]
        return compute_fans(shape, self.layout, groups=self.groups, blocks=self.blocks, stride=self.stride)


class SecondMoment(Protocol):
    """``q_out`` of a layer from its input second moment ``q_in``, the weight's and bias's ``E[w^2]``,
    ``E[b^2]`` and the weight's ``fan_in``. Must be linear in ``w2`` (so "auto" can solve for the scale)."""

    def __call__(self, q_in: float, w2: float, b2: float, fan_in: float) -> float: ...


def linear_moment(q_in: float, w2: float, b2: float, fan_in: float) -> float:
    """A sum over ``fan_in`` independent products: ``fan_in E[w^2] q_in + E[b^2]``."""
    return fan_in * w2 * q_in + b2


SpecsFn = Callable[[nn.Module], dict[str, ParamSpec]]


@dataclass(frozen=True)
class LayerType:
    """Everything initlab knows about one kind of layer."""

    name: str
    kind: Kind
    specs: SpecsFn = field(repr=False)
    classes: tuple[type, ...] = ()
    test: Callable[[nn.Module], bool] | None = field(default=None, repr=False)
    homogeneous: bool = False  # output linear in (weight, bias): LSUV/data-dependent rescale it exactly
    data_init: bool = False  # data-dependent schemes (orthogonal-from-data, ...) calibrate it
    second_moment: SecondMoment = field(default=linear_moment, repr=False)
    normalizes: bool = True  # NORM kinds: output second moment set by the norm, not by its input
    builtin: bool = True

    def matches(self, module: nn.Module) -> bool:
        if self.classes and not isinstance(module, self.classes):
            return False
        return self.test is None or self.test(module)

    @property
    def matrix(self) -> bool:
        """A plain matrix product (orthogonal / looks-linear weights apply)."""
        return self.kind in (Kind.LINEAR, Kind.RAW)

    @property
    def inputs(self) -> int:
        """How many data operands the product multiplies (bilinear: 2)."""
        return 2 if self.kind is Kind.BILINEAR else 1


# ---- the registry ------------------------------------------------------------------------------------------
_BUILTIN: list[LayerType] = []
_USER: list[LayerType] = []
_BY_CLASS: weakref.WeakKeyDictionary[type, LayerType | None] = weakref.WeakKeyDictionary()
_BY_NAME: dict[str, LayerType] = {}


def add(t: LayerType) -> LayerType:
    """Register ``t`` (built-ins at import, user types through :func:`register_layer`)."""
    if t.builtin:
        _BUILTIN.append(t)  # built-ins in lookup order
    else:
        _USER.insert(0, t)  # the newest user registration wins
    _BY_NAME[t.name] = t
    _BY_CLASS.clear()
    return t


# Within one discovery: each module's type, decided once (module kept: its id stays its own meanwhile).
_SEEN: contextvars.ContextVar[dict[int, tuple[nn.Module, LayerType | None]] | None] = contextvars.ContextVar(
    "initlab_layer_types", default=None)


@contextlib.contextmanager
def types_decided_once() -> Iterator[None]:
    """Inside the block each module's :func:`layer_type` is decided once: a predicate type looks at the
    instance (a norm's weight values: tensor operations), and discovery asks about every module 3-4 times
    (up to a tenth of a small transformer's discovery, benchmarks/diagnose_parts.py). Modules must not
    change inside (discovery's passes keep them)."""
    token = _SEEN.set({})
    try:
        yield
    finally:
        _SEEN.reset(token)


def layer_type(module: nn.Module) -> LayerType | None:
    """The registered type of ``module`` (user types first, newest first), or None."""
    cls = type(module)
    if cls in _BY_CLASS:
        return _BY_CLASS[cls]
    seen = _SEEN.get()
    if seen is None:
        return _decide(module, cls)
    hit = seen.get(id(module))
    if hit is None:
        hit = seen[id(module)] = (module, _decide(module, cls))
    return hit[1]


def _decide(module: nn.Module, cls: type) -> LayerType | None:
    found = None
    cacheable = True
    for t in (*_USER, *_BUILTIN):
        cacheable = cacheable and t.test is None  # a predicate looks at the instance: never cached
        if t.matches(module):
            found = t
            break
    if cacheable:
        _BY_CLASS[cls] = found
    return found


def by_name(name: str) -> LayerType:
    return _BY_NAME[name]


def registered() -> tuple[LayerType, ...]:
    return (*_USER, *_BUILTIN)


def unregister(name: str) -> None:
    """Remove a user registration (tests; re-registering the same class replaces it anyway)."""
    t = _BY_NAME.get(name)
    if t is None or t.builtin:
        raise InitlabValueError(f"{name!r} is not a user-registered layer type")
    _USER.remove(t)
    del _BY_NAME[name]
    _BY_CLASS.clear()


def fix_line(module: nn.Module | str) -> str:
    """The one-line fix named for a module initlab does not know, with its own parameter names."""
    if isinstance(module, str):
        return f'teach initlab the layer: initlab.register_layer({module}, params={{"weight": "out_in"}})'
    params = dict(module.named_parameters(recurse=False))
    norm = bool(params) and all(p.dim() <= 1 for p in params.values())
    if norm:
        layouts = {n: "norm_bias" if "bias" in n else "norm_weight" for n in params}
    else:
        layouts = {n: "out_in" if p.dim() >= 2 else "bias" for n, p in params.items()}
    args = ", ".join(f'"{n}": "{v}"' for n, v in layouts.items())
    kind = ', kind="norm"' if norm else ""
    return (
        f"teach initlab the layer: initlab.register_layer({type(module).__name__}, params={{{args}}}{kind})"
        + ("" if norm else " (layouts: out_in, in_out, kernel_in_out, ...)")
    )


def tensor_of(module: nn.Module, local: str) -> torch.Tensor | None:
    obj: object = module
    for part in local.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj if isinstance(obj, torch.Tensor) else None


# ---- the public call ---------------------------------------------------------------------------------------
ParamLayout = Literal[
    "out_in", "in_out", "out_in_transposed", "kernel_in_out", "bias", "embedding", "norm_weight", "norm_bias"
]
_LAYOUTS: dict[str, tuple[Role, Layout]] = {
    "out_in": ("weight", "torch"),  # (out, in, *kernel), as nn.Linear / nn.Conv*
    "in_out": ("weight", "in_out"),  # (in, out, *kernel): y = x @ W
    "out_in_transposed": ("weight", "torch_transposed"),  # (in, out, *kernel) of a transposed conv
    "kernel_in_out": ("weight", "keras"),  # (*kernel, in, out), Keras/JAX
    "embedding": ("embedding", "torch"),
    "norm_weight": ("norm_weight", "torch"),
    "norm_bias": ("norm_bias", "torch"),
}


def _parse_params(cls: type, params: Mapping[str, ParamLayout | ParamSpec]) -> dict[str, ParamSpec]:
    if not params:
        raise InitlabValueError(f"register_layer({cls.__name__}): params= names at least one parameter")
    weights = [n for n, v in params.items() if isinstance(v, str) and v in _LAYOUTS and v != "bias"]
    out: dict[str, ParamSpec] = {}
    for local, value in params.items():
        if isinstance(value, ParamSpec):
            out[local] = value
        elif value == "bias":
            out[local] = ParamSpec("bias", fans_of=weights[0] if weights else None)
        elif value in _LAYOUTS:
            role, layout = _LAYOUTS[value]
            out[local] = ParamSpec(role, layout)
        else:
            raise InitlabValueError(
                f"register_layer({cls.__name__}): parameter {local!r} has layout {value!r}; use one of "
                f"{', '.join([*_LAYOUTS, 'bias'])} or a ParamSpec"
            )
    return out


def register_layer(
    cls: type[nn.Module],
    params: Mapping[str, ParamLayout | ParamSpec] | None = None,
    *,
    kind: Kind | str = Kind.LINEAR,
    second_moment: SecondMoment | None = None,
    homogeneous: bool = True,
    name: str | None = None,
) -> LayerType:
    """Teach initlab a layer type in one call; returns its :class:`LayerType`.

    ``params`` maps each parameter's attribute name to its layout (``"out_in"`` like ``nn.Linear``,
    ``"in_out"`` for ``x @ W``, ``"out_in_transposed"``, ``"kernel_in_out"``, ``"bias"``, ``"embedding"``,
    ``"norm_weight"``/``"norm_bias"``) or a full :class:`ParamSpec` (groups, gate blocks); fans come from
    the layout. ``kind`` says how it computes (default a matrix product over ``fan_in``); ``second_moment``
    maps ``(q_in, E[w^2], E[b^2], fan_in)`` to the output's second moment when that is not ``fan_in E[w^2]
    q_in + E[b^2]``; ``homogeneous`` says the output is linear in (weight, bias), so LSUV may rescale it.
    Every path (``init_model`` with "auto" or a catalog scheme, LSUV, diagnose, sharded init) then handles
    it. Registering the same class again replaces the earlier registration."""
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise InitlabTypeError(f"register_layer takes an nn.Module subclass, got {cls!r}")
    specs = _parse_params(cls, params if params is not None else {"weight": "out_in", "bias": "bias"})
    try:
        k = Kind(kind)
    except ValueError:
        raise InitlabValueError(
            f"unknown kind {kind!r}; use one of {', '.join(k.value for k in Kind)}") from None
    label = name or f"{cls.__module__}.{cls.__qualname__}"
    if label in _BY_NAME:
        unregister(label)
    t = LayerType(
        label,
        k,
        lambda module: {n: s for n, s in specs.items() if tensor_of(module, n) is not None},
        classes=(cls,),
        homogeneous=homogeneous and k.weight,
        data_init=False,
        second_moment=second_moment or linear_moment,
        builtin=False,
    )
    return add(t)

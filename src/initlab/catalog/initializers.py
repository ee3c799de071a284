"""Initializer types: each resolves a weight's shape (and fans, activation) to one :class:`~.draws.Draw`.

:class:`VarianceScaling` is the one general mechanism (as in JAX): LeCun, Glorot/Xavier, He/Kaiming, SELU and
every framework's fan-based default are specializations of it (see :mod:`.registry`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, ClassVar, Literal

from . import draws as d
from .activations import activation as as_activation
from .fans import Axes, Fans, Layout, compute_fans
from .gains import ActivationLike, classic_gain
from .gains import gain as one_gain

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")


@dataclass(frozen=True)
class Context:
    """What an initializer may know about the weight beyond its shape."""

    layout: Layout = "torch"
    fans: Fans | None = None
    groups: int = 1
    blocks: int = 1
    stride: Sequence[int] | int | None = None
    activation: ActivationLike | None = None

    def fans_of(self, shape: Sequence[int]) -> Fans:
        if self.fans is not None:
            return self.fans
        return compute_fans(shape, self.layout, groups=self.groups, blocks=self.blocks, stride=self.stride)

    def torch_fans_of(self, shape: Sequence[int]) -> Fans:
        """Fans as ``torch.nn.init._calculate_fan_in_and_fan_out`` computes them from the stored shape
        (dim 1 x k, dim 0 x k; layout, groups, blocks and stride ignored), unless ``fans`` is given."""
        return self.fans if self.fans is not None else compute_fans(shape, "torch")


def _check_std(std: float, what: str = "std") -> None:
    if isinstance(std, bool) or not (isinstance(std, int | float) and math.isfinite(std)) or std < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {std!r}: pass e.g. {what}=0.02")


def _check_finite(**values: float) -> None:
    for name, v in values.items():
        if isinstance(v, bool) or not (isinstance(v, int | float) and math.isfinite(v)):
            raise ValueError(f"{name} must be a finite number, got {v!r}")


class Initializer:
    """Base class: ``resolve(shape, ctx) -> Draw``; a config round-trips through :func:`.registry.get`."""

    config_name: ClassVar[str] = ""

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        raise NotImplementedError

    def resolve_complex(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        """The draw for a complex weight, as JAX draws it (``jax.nn.initializers`` with a complex dtype):
        constants as they are, zero-mean normal / uniform / truncated-normal variance scaling as
        :class:`~.draws.ComplexCircular` with ``E|w|^2`` the real variance, orthogonal as a Haar unitary.
        Schemes JAX refuses complex dtypes for (``uniform``, ``truncated_normal``...) raise."""
        raise TypeError(f"{self.config_name or type(self).__name__} has no complex form in JAX (jax.random "
                        "refuses complex dtypes for it): use a zero-mean normal, variance-scaling, "
                        "orthogonal or constant scheme (e.g. 'jax:glorot_normal') for complex weights")

    def uses_fans(self) -> bool:
        return False

    def get_config(self) -> dict[str, Any]:
        return asdict(self) if is_dataclass(self) else {}

    def to_config(self) -> dict[str, Any]:
        return {"name": self.config_name, "params": self.get_config()}


@dataclass(frozen=True)
class ConstantInit(Initializer):
    config_name: ClassVar[str] = "constant"
    value: float = 0.0

    def __post_init__(self) -> None:
        _check_finite(value=self.value)

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        return d.Constant(float(self.value))

    def resolve_complex(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        return self.resolve(shape, ctx)  # jnp.full(shape, value, complex dtype)


@dataclass(frozen=True)
class NormalInit(Initializer):
    config_name: ClassVar[str] = "normal"
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        _check_finite(mean=self.mean)
        _check_std(self.std)

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        return d.Normal(float(self.mean), float(self.std))

    def resolve_complex(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        if self.mean != 0:
            return super().resolve_complex(shape, ctx)  # jax.nn.initializers.normal has no mean
        return d.ComplexCircular(float(self.std), "normal")  # jax.random.normal: (N + iN) / sqrt(2)


@dataclass(frozen=True)
class UniformInit(Initializer):
    config_name: ClassVar[str] = "uniform"
    low: float = 0.0
    high: float = 1.0

    def __post_init__(self) -> None:
        _check_finite(low=self.low, high=self.high)
        if self.low > self.high:
            raise ValueError(f"uniform needs low <= high, got low={self.low}, high={self.high}: swap them")

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        return d.Uniform(float(self.low), float(self.high))


@dataclass(frozen=True)
class TruncatedNormalInit(Initializer):
    """``N(mean, std^2)`` conditioned on ``[a, b]``: bounds in std units (JAX/TF), or absolute (torch)."""

    config_name: ClassVar[str] = "truncated_normal"
    mean: float = 0.0
    std: float = 1.0
    a: float = -2.0
    b: float = 2.0
    absolute: bool = False

    def __post_init__(self) -> None:
        _check_finite(mean=self.mean, a=self.a, b=self.b)
        _check_std(self.std)
        if not self.a < self.b:
            raise ValueError(f"truncation bounds must satisfy a < b, got a={self.a}, b={self.b}: swap them")
        if self.std > 0 and not self.absolute:
            d.truncated_std(self.a, self.b)  # raises if [a, b] has no mass

    def get_config(self) -> dict[str, Any]:
        return {"mean": self.mean, "std": self.std, "a": self.a, "b": self.b}

    def to_config(self) -> dict[str, Any]:
        name = "truncated_normal_abs" if self.absolute else "truncated_normal"
        return {"name": name, "params": self.get_config()}

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        if self.std == 0:
            value = min(max(self.mean, self.a), self.b) if self.absolute else self.mean
            return d.Constant(float(value))
        if self.absolute:
            lo, hi = (self.a - self.mean) / self.std, (self.b - self.mean) / self.std
        else:
            lo, hi = self.a, self.b
        d.truncated_std(lo, hi)  # raises when [a, b] has no mass at float64 precision
        return d.TruncatedNormal(float(self.mean), float(self.std), float(lo), float(hi))


@dataclass(frozen=True)
class VarianceScaling(Initializer):
    """Zero-mean draw with ``Var = scale * gain^2 / n``, ``n`` the fan chosen by ``mode``.

    ``distribution``: ``normal`` (std = sqrt(var)), ``uniform`` (bound = sqrt(3 var)), ``truncated_normal``
    (cut at +-``truncation`` std; with ``correct=True`` the parent std is divided by the truncated std so the
    result has exactly ``var``, which for +-2 is the 0.87962566103423978 of Keras/JAX).
    ``gain``: a number, or ``"activation"`` to use the gain of the activation that follows the weight
    (classic table where it has one, the variance-preserving gain otherwise; ``default_activation`` when
    none is known). ``axes``: explicit fan axes that override the layout.
    """

    config_name: ClassVar[str] = "variance_scaling"
    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "truncated_normal"
    truncation: float = 2.0
    correct: bool = True
    gain: float | str = 1.0
    default_activation: str = "relu"
    gain_table: Literal["classic", "variance"] = "classic"
    axes: Axes | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"unknown mode {self.mode!r}; use one of {', '.join(MODES)}")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {self.distribution!r}; "
                             f"use one of {', '.join(DISTRIBUTIONS)}")
        if not (math.isfinite(self.scale) and self.scale >= 0):
            raise ValueError(f"scale must be a finite number >= 0, got {self.scale!r}")
        if not self.truncation > 0:
            raise ValueError(f"truncation must be > 0 standard deviations, got {self.truncation!r}")
        if isinstance(self.gain, str) and self.gain != "activation":
            raise ValueError(f"gain must be a number or 'activation', got {self.gain!r}")
        if not isinstance(self.gain, str):
            _check_finite(gain=self.gain)
        if self.gain_table not in ("classic", "variance"):
            raise ValueError(f"gain_table must be 'classic' or 'variance', got {self.gain_table!r}")

    def uses_fans(self) -> bool:
        return True

    def gain_for(self, act: ActivationLike | None) -> float:
        if not isinstance(self.gain, str):
            return float(self.gain)
        return one_gain(as_activation(act if act is not None else self.default_activation), self.gain_table)

    def variance(self, shape: Sequence[int], ctx: Context | None = None) -> float:
        ctx = ctx or Context()
        if self.axes is not None and ctx.fans is None:
            fans = compute_fans(shape, self.axes)
        else:
            fans = ctx.fans_of(shape)
        n = max(1.0, fans.by_mode(self.mode))
        return self.scale * self.gain_for(ctx.activation) ** 2 / n

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        var = self.variance(shape, ctx)
        std = math.sqrt(var)
        if self.distribution == "normal":
            return d.Normal(0.0, std)
        if self.distribution == "uniform":
            bound = math.sqrt(3.0 * var)
            return d.Uniform(-bound, bound)
        t = float(self.truncation)
        parent = std / d.truncated_std(-t, t) if self.correct else std
        return d.TruncatedNormal(0.0, parent, -t, t)

    def resolve_complex(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        """JAX's complex variance scaling: a circular normal, a uniform disk, or the circular normal cut at
        modulus 2 (JAX's only truncation: +-2, corrected), each with ``E|w|^2`` the real variance."""
        if self.distribution == "truncated_normal" and not (self.truncation == 2.0 and self.correct):
            return super().resolve_complex(shape, ctx)
        radial = {"normal": "normal", "uniform": "disk", "truncated_normal": "truncated"}[self.distribution]
        return d.ComplexCircular(math.sqrt(self.variance(shape, ctx)), radial)  # type: ignore[arg-type]

    def get_config(self) -> dict[str, Any]:
        cfg = asdict(self)
        if self.axes is None:
            cfg.pop("axes")
        else:
            cfg["axes"] = asdict(self.axes)
        return cfg


@dataclass(frozen=True)
class KaimingTorch(Initializer):
    """torch ``kaiming_*_(a, mode, nonlinearity)``: gain from torch's table, untruncated."""

    config_name: ClassVar[str] = "torch:kaiming_normal"
    a: float = 0.0
    mode: str = "fan_in"
    nonlinearity: str = "leaky_relu"
    distribution: str = "normal"

    def __post_init__(self) -> None:
        if str(self.mode).lower() not in ("fan_in", "fan_out"):
            raise ValueError(f"Mode {self.mode} not supported, please use one of ['fan_in', 'fan_out']")
        if self.distribution not in ("normal", "uniform"):
            raise ValueError(f"distribution must be 'normal' or 'uniform', got {self.distribution!r}")
        self.gain()  # validates nonlinearity and a

    def gain(self) -> float:
        return classic_gain(self.nonlinearity, self.a if self.nonlinearity == "leaky_relu" else None)

    def uses_fans(self) -> bool:
        return True

    def to_config(self) -> dict[str, Any]:
        params = {"a": self.a, "mode": self.mode, "nonlinearity": self.nonlinearity}
        return {"name": f"torch:kaiming_{self.distribution}", "params": params}

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        fans = (ctx or Context()).torch_fans_of(shape)
        fan = fans.fan_in if str(self.mode).lower() == "fan_in" else fans.fan_out
        return _torch_draw(self.gain() / math.sqrt(max(fan, 1)), self.distribution)


def _torch_draw(std: float, distribution: str) -> d.Draw:
    """torch.nn.init's float arithmetic, so compat values are bit-identical: bound = sqrt(3) * std."""
    if distribution == "uniform":
        bound = math.sqrt(3.0) * std
        return d.Uniform(-bound, bound)
    return d.Normal(0.0, std)


@dataclass(frozen=True)
class XavierTorch(Initializer):
    """torch ``xavier_*_(gain)``: std = gain * sqrt(2 / (fan_in + fan_out)) with torch's fans, untruncated."""

    gain: float = 1.0
    distribution: str = "uniform"

    def __post_init__(self) -> None:
        _check_finite(gain=self.gain)

    def uses_fans(self) -> bool:
        return True

    def to_config(self) -> dict[str, Any]:
        return {"name": f"torch:xavier_{self.distribution}", "params": {"gain": self.gain}}

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        fans = (ctx or Context()).torch_fans_of(shape)
        return _torch_draw(self.gain * math.sqrt(2.0 / max(float(fans.fan_in + fans.fan_out), 1.0)),
                           self.distribution)


@dataclass(frozen=True)
class TorchFans(Initializer):
    """Wraps a fan-based initializer so it sees torch's fans of the stored shape (``torch:`` dialects):
    torch's
    helper knows no layout, groups, gate blocks or stride, and parity means reproducing that."""

    inner: Initializer
    name: str = ""

    def uses_fans(self) -> bool:
        return True

    def to_config(self) -> dict[str, Any]:
        return self.inner.to_config()

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        ctx = ctx or Context()
        return self.inner.resolve(shape, Context(fans=ctx.torch_fans_of(shape), activation=ctx.activation))


@dataclass(frozen=True)
class OrthogonalInit(Initializer):
    config_name: ClassVar[str] = "orthogonal"
    gain: float = 1.0
    flatten: Literal["torch", "keras"] = "torch"
    native: str = ""  # a keras:/jax: name: "keras" flattening means "the framework's kernel", layout-aware

    def __post_init__(self) -> None:
        _check_finite(gain=self.gain)
        if self.flatten not in ("torch", "keras"):
            raise ValueError(f"flatten must be 'torch' or 'keras', got {self.flatten!r}")

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        if len(shape) < 2:
            raise ValueError(f"orthogonal needs a weight with at least 2 dims, got shape {tuple(shape)}: "
                             "use it on matrices or conv kernels, not on biases")
        flatten = self.flatten
        ctx = ctx or Context()
        if self.native and ctx.fans is None and ctx.layout == "torch":
            native_fans(shape, ctx, self.native)  # says which layout it assumed
        if self.native and flatten == "keras" and ctx.layout in ("torch", "torch_transposed"):
            # Keras/JAX flatten their (*k, in, out) kernel to (prod(k) in, out); the same kernel stored the
            # torch way is its transpose, (out, in prod(k)) up to a column permutation: the same Haar law.
            flatten = "torch"
        return d.Orthogonal(float(self.gain), flatten)

    def resolve_complex(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        return self.resolve(shape, ctx)  # on a complex weight the backends draw a Haar unitary


@dataclass(frozen=True)
class IdentityInit(Initializer):
    config_name: ClassVar[str] = "identity"
    gain: float = 1.0

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        if len(shape) != 2:
            raise ValueError(f"identity needs a 2-D weight, got shape {tuple(shape)}; use 'dirac' for convs")
        return d.Eye(float(self.gain))


@dataclass(frozen=True)
class DiracInit(Initializer):
    config_name: ClassVar[str] = "dirac"
    groups: int = 1
    gain: float = 1.0

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        if len(shape) not in (3, 4, 5):
            raise ValueError(f"dirac needs a 3-, 4- or 5-D conv weight, got shape {tuple(shape)}; "
                             "use 'identity' for 2-D weights")
        if self.groups < 1 or shape[0] % self.groups:
            raise ValueError(f"dim 0 ({shape[0]}) must be divisible by groups ({self.groups})")
        return d.Dirac(int(self.groups), float(self.gain))


@dataclass(frozen=True)
class DeltaOrthogonalInit(Initializer):
    config_name: ClassVar[str] = "delta_orthogonal"
    gain: float = 1.0

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        ctx = ctx or Context()
        if len(shape) not in (3, 4, 5):
            raise ValueError(f"delta_orthogonal needs a 3-, 4- or 5-D conv weight, got shape {tuple(shape)}")
        n_out, n_in = (shape[0], shape[1]) if ctx.layout == "torch" else (shape[-1], shape[-2])
        if n_out < n_in:
            raise ValueError(f"delta_orthogonal needs out_channels >= in_channels, got {n_out} < {n_in}")
        return d.DeltaOrthogonal(float(self.gain), ctx.layout in ("keras", "jax"))

    def resolve_complex(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        return self.resolve(shape, ctx)


@dataclass(frozen=True)
class SparseInit(Initializer):
    config_name: ClassVar[str] = "sparse"
    sparsity: float = 0.1
    std: float = 0.01

    def __post_init__(self) -> None:
        if not 0 <= self.sparsity <= 1:
            raise ValueError(f"sparsity must be in [0, 1], got {self.sparsity}")
        _check_std(self.std)

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        if len(shape) != 2:
            raise ValueError(f"sparse needs a 2-D weight, got shape {tuple(shape)}")
        return d.Sparse(float(self.sparsity), float(self.std))


@dataclass(frozen=True)
class ZerOInit(Initializer):
    config_name: ClassVar[str] = "zero_hadamard"

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        if len(shape) != 2:
            raise ValueError(f"zero_hadamard (ZerO) needs a 2-D weight, got shape {tuple(shape)}")
        return d.ZerO((ctx or Context()).layout in ("keras", "jax", "in_out"))


class LayoutWarning(UserWarning):
    """A framework-dialect scheme was given a bare shape and had to assume which layout it is stored in."""


def native_fans(shape: Sequence[int], ctx: Context, name: str) -> Fans:
    """Fans for a ``keras:``/``jax:`` scheme: the context's (fans, or the layout's), and a
    :class:`LayoutWarning` when nothing says whether ``shape`` is torch's ``(out, in, *k)`` or the framework's
    ``(*k, in, out)`` (init_model always says: it passes the layer's fans)."""
    if ctx.fans is not None:
        return ctx.fans
    if ctx.layout == "torch" and len(shape) >= 2:
        warnings.warn(f"{name} on shape {tuple(shape)}: read in torch's layout (out, in, *k); for a "
                      "Keras/JAX "
                      "kernel (*k, in, out) pass layout='keras'", LayoutWarning, stacklevel=4)
    return ctx.fans_of(shape)


@dataclass(frozen=True)
class KerasVarianceScaling(Initializer):
    """Keras 3 ``VarianceScaling``: "normal" means truncated (Keras maps it to truncated_normal),
    ``untruncated_normal`` is the plain normal; ``scale > 0``; modes fan_in/fan_out/fan_avg only;
    ``input_axes``/``output_axes`` (both given) make the fans products of those axes of the shape as given
    (EinsumDense/MultiHeadAttention kernels); a 1-D shape has fan_in = fan_out = its length."""

    config_name: ClassVar[str] = "keras:variance_scaling"
    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "truncated_normal"
    input_axes: tuple[int, ...] | None = None
    output_axes: tuple[int, ...] | None = None
    name: str = "keras:variance_scaling"

    def __post_init__(self) -> None:
        _check_finite(scale=self.scale)
        # Keras' own messages (its tests match them), each with the fix
        if not self.scale > 0:
            raise ValueError(f"Argument `scale` must be positive float. Received: scale={self.scale}")
        if self.mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f"Invalid `mode` argument: {self.mode}. Please use one of fan_in, fan_out, "
                             "fan_avg "
                             "(fan_geo_avg is JAX's: use jax:variance_scaling)")
        if self.distribution not in ("normal", "truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError(f"Invalid `distribution` argument: {self.distribution}. Please use one of "
                             "truncated_normal, untruncated_normal, uniform")

    def uses_fans(self) -> bool:
        return True

    def fans(self, shape: Sequence[int], ctx: Context) -> Fans:
        if self.input_axes is not None and self.output_axes is not None:
            n = len(shape)
            fi = math.prod(int(shape[a]) for a in _axes(self.input_axes, n))
            fo = math.prod(int(shape[a]) for a in _axes(self.output_axes, n))
            return Fans(fi, fo)
        if len(shape) < 2 and ctx.fans is None:
            size = int(shape[0]) if len(shape) == 1 else 1
            return Fans(size, size)
        return native_fans(shape, ctx, self.name)

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        ctx = ctx or Context()
        dist = {"normal": "truncated_normal", "untruncated_normal": "normal"}.get(self.distribution,
                                                                                    self.distribution)
        inner = VarianceScaling(float(self.scale), self.mode, dist)
        return inner.resolve(shape, Context(fans=self.fans(shape, ctx)))


def _axes(axes: Sequence[int], ndim: int) -> tuple[int, ...]:
    out = []
    for a in axes:
        if not -ndim <= int(a) < ndim:
            raise ValueError(f"axis {a} is out of range for a {ndim}-D weight")
        out.append(int(a) % ndim)
    return tuple(out)


@dataclass(frozen=True)
class JaxVarianceScaling(Initializer):
    """``jax.nn.initializers.variance_scaling``: "normal" is untruncated, fan_geo_avg allowed, and
    ``in_axis``/``out_axis``/``batch_axis`` (as JAX, with the receptive field the product of the other axes)
    index the shape as given. With the default axes the context's layout decides (torch's by default)."""

    config_name: ClassVar[str] = "jax:variance_scaling"
    scale: float = 1.0
    mode: str = "fan_in"
    distribution: str = "truncated_normal"
    in_axis: int | tuple[int, ...] = -2
    out_axis: int | tuple[int, ...] = -1
    batch_axis: tuple[int, ...] = ()
    name: str = "jax:variance_scaling"

    def __post_init__(self) -> None:
        VarianceScaling(self.scale, self.mode, self.distribution)  # validates

    def uses_fans(self) -> bool:
        return True

    def _fans(self, shape: Sequence[int], ctx: Context) -> Fans:
        default = (self.in_axis, self.out_axis, tuple(self.batch_axis)) == (-2, -1, ())
        if not default:
            return compute_fans(shape, Axes(self.in_axis, self.out_axis, tuple(self.batch_axis)))
        if len(shape) < 2 and ctx.fans is None:
            raise ValueError(f"{self.name}: JAX computes fans from in_axis=-2, out_axis=-1, which a "
                             f"{len(shape)}-D shape {tuple(shape)} does not have; pass fans=... or use "
                             "'zeros'")
        return native_fans(shape, ctx, self.name)

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        inner = VarianceScaling(float(self.scale), self.mode, self.distribution)
        return inner.resolve(shape, Context(fans=self._fans(shape, ctx or Context())))

    def resolve_complex(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        inner = VarianceScaling(float(self.scale), self.mode, self.distribution)
        return inner.resolve_complex(shape, Context(fans=self._fans(shape, ctx or Context())))

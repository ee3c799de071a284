"""Draws: the few primitive distributions every scheme resolves to, and the only thing backends implement.

A scheme (``he_normal``, ``orthogonal``, ``keras:glorot_normal``...) plus a weight's shape and fans resolves
to
one :class:`Draw`; a backend (numpy, torch, the counter-based generator) knows how to fill a tensor from each
draw type. Elementwise draws know their exact mean and standard deviation, which the tests and the model-level
report use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Union


def normal_cdf(x: float) -> float:
    """Phi(x), the standard normal CDF, evaluated like ``scipy.special.ndtr`` (erf near 0, erfc in the tails,
    so that tail probabilities keep their relative precision) with the standard library's erf/erfc: drawing
    weights does not import scipy."""
    z = x * math.sqrt(0.5)
    if abs(z) < math.sqrt(0.5):
        return 0.5 + 0.5 * math.erf(z)
    tail = 0.5 * math.erfc(abs(z))
    return 1.0 - tail if z > 0 else tail


def truncated_std(low: float, high: float) -> float:
    """Standard deviation of N(0, 1) truncated to ``[low, high]`` (0.87962566103423978 for +-2)."""
    z = normal_cdf(high) - normal_cdf(low)
    if not z > 0:
        raise ValueError(f"truncation [{low}, {high}] has no probability mass")
    root = math.sqrt(2 * math.pi)
    pa, pb = math.exp(-low * low / 2) / root, math.exp(-high * high / 2) / root
    la = low * pa if math.isfinite(low) else 0.0
    lb = high * pb if math.isfinite(high) else 0.0
    mean = (pa - pb) / z
    return math.sqrt(max(1 + (la - lb) / z - mean * mean, 0.0))


def truncated_mean(low: float, high: float) -> float:
    """Mean of N(0, 1) truncated to ``[low, high]``."""
    z = normal_cdf(high) - normal_cdf(low)
    pa, pb = math.exp(-low * low / 2), math.exp(-high * high / 2)
    return (pa - pb) / math.sqrt(2 * math.pi) / z


@dataclass(frozen=True)
class Constant:
    value: float

    @property
    def mean(self) -> float:
        return self.value

    @property
    def std(self) -> float:
        return 0.0


@dataclass(frozen=True)
class Normal:
    mean: float
    std: float


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    @property
    def std(self) -> float:
        return (self.high - self.low) / math.sqrt(12)


@dataclass(frozen=True)
class TruncatedNormal:
    """``loc + scale * Z`` with ``Z ~ N(0, 1)`` conditioned on ``low <= Z <= high`` (bounds in std units)."""

    loc: float
    scale: float
    low: float = -2.0
    high: float = 2.0

    @property
    def mean(self) -> float:
        return self.loc + self.scale * truncated_mean(self.low, self.high)

    @property
    def std(self) -> float:
        return self.scale * truncated_std(self.low, self.high)

    @property
    def bounds(self) -> tuple[float, float]:
        """Absolute bounds of the values."""
        return self.loc + self.scale * self.low, self.loc + self.scale * self.high


@dataclass(frozen=True)
class Orthogonal:
    """Haar-distributed (semi-)orthogonal matrix times ``gain``.

    ``flatten="torch"``: rows = shape[0], cols = prod(shape[1:]); ``"keras"``: rows = prod(shape[:-1]),
    cols = shape[-1]. Rows are orthonormal if rows <= cols, else columns.
    """

    gain: float = 1.0
    flatten: Literal["torch", "keras"] = "torch"


@dataclass(frozen=True)
class Eye:
    """``gain * I`` on a 2-D weight (rectangular: ones on the main diagonal)."""

    gain: float = 1.0


@dataclass(frozen=True)
class Dirac:
    """Conv kernel that passes channel i to output i: delta at the centre ``k // 2`` (torch ``dirac_``)."""

    groups: int = 1
    gain: float = 1.0


@dataclass(frozen=True)
class DeltaOrthogonal:
    """Orthogonal (out, in) matrix at the spatial centre ``(k - 1) // 2`` (JAX), zeros elsewhere (Xiao
    2018)."""

    gain: float = 1.0
    channels_last: bool = False


@dataclass(frozen=True)
class Sparse:
    """Martens (2010): per column, ``ceil(sparsity * rows)`` entries are zero, the rest N(0, std^2)."""

    sparsity: float
    std: float = 0.01


@dataclass(frozen=True)
class ZerO:
    """ZerO (Zhao et al. 2022): deterministic identity for square weights, identity plus a scaled Hadamard
    transform when the output is wider than the input, a truncated identity when it is narrower."""

    channels_last: bool = False


@dataclass(frozen=True)
class Values:
    """Fixed values (row-major, of ``shape``) broadcast to the weight's shape by numpy's rules: the
    array-valued ``Constant`` of Keras and JAX, Keras' STFT kernel. A tuple, so the draw stays hashable."""

    values: tuple[float, ...]
    shape: tuple[int, ...]


# JAX's divisor for its complex truncated normal (jax.nn.initializers.variance_scaling), commented there as
# the std of the circular standard normal cut at modulus 2. That std is sqrt(1 - 4 e^-4 / (1 - e^-4)) =
# 0.96196, so JAX's draws have E|w|^2 = 1.0187 x the variance asked for: reproduced on purpose (JAX's law).
COMPLEX_TRUNC2_STD = 0.95311164380491208


@dataclass(frozen=True)
class ComplexCircular:
    """JAX's complex forms of zero-mean draws: ``z = std * r * exp(2 pi i u)``, ``u`` uniform, ``E|z|^2 =
    std^2``. ``radial``: "normal" (a circular normal, real and imaginary parts each N(0, std^2 / 2):
    ``r^2 ~ Exp(1)``), "disk" (uniform on the disk of radius sqrt(2) std: ``r = sqrt(2 u')``), "truncated"
    (the circular normal cut at modulus 2, rescaled by :data:`COMPLEX_TRUNC2_STD`)."""

    std: float
    radial: Literal["normal", "disk", "truncated"] = "normal"

    @property
    def mean(self) -> float:
        return 0.0


Draw = Union[  # noqa: UP007 - a runtime alias used in isinstance-free annotations
    Constant, Normal, Uniform, TruncatedNormal, Orthogonal, Eye, Dirac, DeltaOrthogonal, Sparse, ZerO, Values,
    ComplexCircular]
ELEMENTWISE = (Constant, Normal, Uniform, TruncatedNormal)


# A normal draw exceeds 6.1 std about once in 1e9 values; 8 std: under 1e-15 per value.
NORMAL_REACH = 8.0


def reach(draw: Draw) -> float:
    """The largest ``|value|`` the draw writes (normals: ``|mean| + 8 std``, beyond which no value lands in
    practice); NaN when a parameter is NaN."""
    if isinstance(draw, Constant):
        return abs(draw.value)
    if isinstance(draw, Normal):
        return abs(draw.mean) + NORMAL_REACH * abs(draw.std)
    if isinstance(draw, Uniform):
        return max(abs(draw.low), abs(draw.high), draw.high - draw.low)  # torch also forms high - low
    if isinstance(draw, TruncatedNormal):
        tails = abs(draw.loc) + NORMAL_REACH * abs(draw.scale)
        lo, hi = draw.bounds
        return min(tails, max(abs(lo), abs(hi))) if math.isfinite(lo) and math.isfinite(hi) else tails
    if isinstance(draw, Sparse):
        return NORMAL_REACH * abs(draw.std)
    if isinstance(draw, ZerO):
        return 1.0
    if isinstance(draw, Values):
        return max((abs(v) for v in draw.values), default=0.0)
    if isinstance(draw, ComplexCircular):
        return abs(draw.std) * (2.0 / COMPLEX_TRUNC2_STD if draw.radial == "truncated" else
                                math.sqrt(2.0) if draw.radial == "disk" else NORMAL_REACH)
    return abs(getattr(draw, "gain", 1.0))  # orthogonal, eye, dirac, delta-orthogonal: |values| <= gain


def check_representable(draw: Draw, largest: float, dtype: str) -> None:
    """Raise before anything is written if ``draw`` would put inf or NaN into a tensor of ``dtype``, whose
    largest finite value is ``largest``."""
    from ..errors import InitlabValueError

    r = reach(draw)
    if not r <= largest:  # also catches NaN
        what = "NaN parameters" if math.isnan(r) else f"values up to {r:.3g}"
        raise InitlabValueError(
            f"{draw} gives {what}, which {dtype} cannot hold (largest finite value {largest:.3g}): use a "
            "smaller std/bound/gain" + (" or a float64 tensor" if largest < 1e300 and r < 1e308 else ""))

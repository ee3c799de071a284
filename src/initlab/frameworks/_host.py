"""Host-side draws for framework initializers: a catalog scheme sampled by the numpy backend for a weight in
the channels-last layout (Keras, JAX, Flax: ``(*kernel, in, out)``), real or complex."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backends.numpy_backend import draw_array
from ..catalog import draws as d
from ..catalog import get
from ..catalog.fans import compute_fans
from ..catalog.initializers import Context

# std of |z| for JAX's complex truncated normal cut at modulus 2 (jax.nn.initializers.variance_scaling)
_COMPLEX_TRUNC2 = 0.95311164380491208


def resolve(scheme: Any, shape: Sequence[int], activation: Any = None) -> d.Draw:
    """The catalog draw of ``scheme`` for a channels-last weight: fans from that layout (passed explicitly, so
    that ``torch:`` dialects size a Keras kernel by its layer, not by torch's reading of the stored shape)."""
    shape = tuple(int(s) for s in shape)
    init = get(scheme)
    explicit_axes = getattr(getattr(init, "initializer", init), "axes", None) is not None  # flax:embed
    fans = compute_fans(shape, "keras") if len(shape) >= 2 and not explicit_axes else None
    return init.resolve(shape, Context("keras", fans, activation=activation))


def host_sample(scheme: Any, shape: Sequence[int], entropy: Sequence[int] | int, dtype: Any,
                activation: Any = None) -> np.ndarray:
    """``scheme`` drawn for ``shape`` with ``numpy.random.default_rng(entropy)``, cast to ``dtype``."""
    shape = tuple(int(s) for s in shape)
    rng = np.random.default_rng(entropy)
    draw = resolve(scheme, shape, activation)
    dt = np.dtype(dtype)
    if dt.kind == "c":
        return complex_array(draw, shape, rng).astype(dt)
    if dt.kind not in "fV":  # "V": ml_dtypes' bfloat16 and friends
        raise TypeError(f"cannot draw {scheme!s} in dtype {dt}: use a floating-point (or complex) dtype")
    return draw_array(draw, shape, rng).astype(dt)


def complex_array(draw: d.Draw, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """JAX's complex forms with E|z|^2 equal to the real draw's variance: a circular normal, a uniform disk,
    a normal truncated in modulus; constants as is. Anything else (non-zero mean, structured) has no standard
    complex form and raises."""
    if isinstance(draw, d.Constant):
        return np.full(shape, complex(draw.value))
    centred = isinstance(draw, d.Normal | d.Uniform | d.TruncatedNormal) and abs(float(draw.mean)) < 1e-300
    if not centred or (isinstance(draw, d.TruncatedNormal) and not -draw.low == draw.high == 2.0):
        raise TypeError(f"{draw} has no complex form in JAX: use a zero-mean normal, uniform or truncated "
                        "normal scheme (e.g. 'jax:glorot_normal') for complex weights")
    assert isinstance(draw, d.Normal | d.Uniform | d.TruncatedNormal)
    var = float(draw.std) ** 2
    phase = np.exp(2j * math.pi * rng.uniform(size=shape))
    if isinstance(draw, d.Normal):
        modulus = np.sqrt(var * rng.exponential(size=shape))  # |z|^2 ~ Exp(var): a circular normal
    elif isinstance(draw, d.Uniform):
        modulus = np.sqrt(2 * var * rng.uniform(size=shape))  # uniform on the disk, E|z|^2 = var
    else:
        u = rng.uniform(size=shape)
        modulus = np.sqrt(-np.log1p(-u * -np.expm1(-4.0))) * math.sqrt(var) / _COMPLEX_TRUNC2
    return modulus * phase

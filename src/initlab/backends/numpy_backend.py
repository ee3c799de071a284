"""Sample numpy arrays from a scheme: ``sample("he_normal", (256, 128), rng)``.

The reference implementation of every draw (float64 internally, cast at the end); the torch backend and the
counter-based generator are checked against the same distributions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..catalog import draws as d
from ..catalog import get
from ..catalog.fans import Fans, Layout
from ..catalog.gains import ActivationLike
from ..catalog.initializers import Context, Initializer
from ..errors import InitlabTypeError, InitlabValueError
from .checks import check_seed

RngLike = np.random.Generator | int | None


def _rng(rng: RngLike) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, int | np.integer) and not isinstance(rng, bool):
        return np.random.default_rng(check_seed(rng))
    raise TypeError(f"rng must be a numpy Generator, an int seed or None, not {type(rng).__name__}")


def sample(scheme: str | Initializer | dict, shape: Sequence[int], rng: RngLike = None, *,
           dtype: Any = np.float32, layout: Layout = "torch", fans: Fans | None = None, groups: int = 1,
           blocks: int = 1, stride: Any = None, activation: ActivationLike | None = None) -> np.ndarray:
    """An array of ``shape`` drawn from ``scheme`` with ``rng`` (a ``numpy.random.Generator`` or a seed).

    >>> w = sample("glorot_uniform", (200, 100), 0)
    >>> bool(abs(w).max() <= (6 / 300) ** 0.5)
    True
    """
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"cannot sample dtype {dt}: use a floating-point dtype")
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InitlabTypeError(f"shape must be a sequence of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise InitlabValueError(f"shape must not have negative sizes, got {shape}")
    draw = get(scheme).resolve(shape, Context(layout, fans, groups, blocks, stride, activation))
    d.check_representable(draw, float(np.finfo(dt).max), str(dt))
    return draw_array(draw, shape, _rng(rng)).astype(dt, copy=False)


def draw_array(draw: d.Draw, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A float64 array of ``shape`` from a resolved draw."""
    if isinstance(draw, d.Constant):
        return np.full(shape, draw.value)
    if isinstance(draw, d.Normal):
        return rng.normal(draw.mean, draw.std, shape)
    if isinstance(draw, d.Uniform):
        return rng.uniform(draw.low, draw.high, shape)
    if isinstance(draw, d.TruncatedNormal):
        return draw.loc + draw.scale * truncated_standard_normal(draw.low, draw.high, shape, rng)
    if isinstance(draw, d.Orthogonal | d.DeltaOrthogonal):
        return _orthogonal(draw, shape, rng, complex_=False)
    if isinstance(draw, d.Values):
        return np.broadcast_to(np.asarray(draw.values, dtype=np.float64).reshape(draw.shape), shape).copy()
    if isinstance(draw, d.Eye):
        return draw.gain * np.eye(shape[0], shape[1])
    if isinstance(draw, d.Dirac):
        out = np.zeros(shape)
        per = shape[0] // draw.groups
        centre = tuple(k // 2 for k in shape[2:])
        for grp in range(draw.groups):
            for i in range(min(per, shape[1])):
                out[(grp * per + i, i, *centre)] = draw.gain
        return out
    if isinstance(draw, d.Sparse):
        rows, cols = shape
        out = rng.normal(0.0, draw.std, shape)
        n_zero = math.ceil(draw.sparsity * rows)
        for j in range(cols):
            out[rng.permutation(rows)[:n_zero], j] = 0.0
        return out
    if isinstance(draw, d.ZerO):
        p, q = (shape[1], shape[0]) if draw.channels_last else shape
        if p <= q:
            w = np.eye(p, q)
        else:
            m = math.ceil(math.log2(p))
            h = np.ones((1, 1))
            for _ in range(m):
                h = np.block([[h, h], [h, -h]])
            w = 2.0 ** (-(m - 1) / 2) * h[:p, :q]
        return w.T.copy() if draw.channels_last else w
    raise TypeError(f"no sampler for {draw!r}")


def _orthogonal(draw: d.Orthogonal | d.DeltaOrthogonal, shape: tuple[int, ...], rng: np.random.Generator,
                complex_: bool) -> np.ndarray:
    if isinstance(draw, d.Orthogonal):
        if draw.flatten == "torch":
            rows, cols = shape[0], math.prod(shape[1:])
        else:
            rows, cols = math.prod(shape[:-1]), shape[-1]
        return (draw.gain * haar_orthogonal(rows, cols, rng, complex_)).reshape(shape)
    out = np.zeros(shape, dtype=np.complex128 if complex_ else np.float64)
    if draw.channels_last:
        centre = tuple((k - 1) // 2 for k in shape[:-2])
        out[centre] = draw.gain * haar_orthogonal(shape[-2], shape[-1], rng, complex_)
    else:
        index: tuple[Any, ...] = (slice(None), slice(None), *((k - 1) // 2 for k in shape[2:]))
        out[index] = draw.gain * haar_orthogonal(shape[0], shape[1], rng, complex_)
    return out


def complex_array(draw: d.Draw, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """A complex128 array of ``shape`` from a draw of ``Initializer.resolve_complex``: JAX's complex forms."""
    if isinstance(draw, d.Constant | d.Values):
        return draw_array(draw, shape, rng).astype(np.complex128)
    if isinstance(draw, d.Orthogonal | d.DeltaOrthogonal):
        return _orthogonal(draw, shape, rng, complex_=True)
    if not isinstance(draw, d.ComplexCircular):
        raise TypeError(f"{draw} has no complex form: resolve the scheme with resolve_complex")
    u = rng.uniform(size=shape)
    if draw.radial == "normal":
        r = np.sqrt(-np.log1p(-u))  # r^2 ~ Exp(1): the modulus of a circular normal with E|z|^2 = 1
    elif draw.radial == "disk":
        r = np.sqrt(2.0 * u)  # uniform on the disk of radius sqrt(2): E|z|^2 = 1
    else:  # r^2 ~ Exp(1) cut at 4 (modulus 2), then rescaled to E|z|^2 = 1
        r = np.sqrt(-np.log1p(u * np.expm1(-4.0))) / d.COMPLEX_TRUNC2_STD
    return draw.std * r * np.exp(2j * math.pi * rng.uniform(size=shape))


def truncated_standard_normal(low: float, high: float, shape: tuple[int, ...],
                              rng: np.random.Generator) -> np.ndarray:
    """N(0, 1) conditioned on [low, high] by the inverse CDF, sampled on the side with relative precision."""
    from scipy import special  # on first use, like the rest of scipy

    flip = low > 0
    lo, hi = (-high, -low) if flip else (low, high)
    u = rng.uniform(d.normal_cdf(lo), d.normal_cdf(hi), shape)
    z = np.clip(special.ndtri(u), lo, hi)
    return -z if flip else z


def haar_orthogonal(rows: int, cols: int, rng: np.random.Generator, complex_: bool = False) -> np.ndarray:
    """QR of a Gaussian matrix with the sign fix: Haar rows (rows <= cols) or columns. ``complex_``: a Haar
    unitary, from a circular complex Gaussian with the phases of diag R divided out (Mezzadri 2007; JAX's
    ``random.orthogonal`` on a complex dtype). Complex results are transposed, not conjugated: rows of a
    wide matrix are then orthonormal under the Hermitian product too."""
    transpose = rows < cols
    n, k = (cols, rows) if transpose else (rows, cols)
    g = rng.standard_normal((n, k))
    if complex_:
        g = (g + 1j * rng.standard_normal((n, k))) / math.sqrt(2.0)
    q, r = np.linalg.qr(g)
    diag = np.diag(r)
    if complex_:
        q = q * np.where(diag != 0, diag / np.where(diag != 0, np.abs(diag), 1.0), 1.0)
    else:
        q = q * np.where(diag >= 0, 1.0, -1.0)
    return q.T if transpose else q

"""The counter-based transforms: how Philox words become uniform, normal and truncated-normal float32 values.

Element ``i`` of a parameter (its global row-major index) is lane ``i % 4`` of Philox4x32-10 applied to
the counter ``(lo32(i // 4), hi32(i // 4), stream, 0)`` under the key derived from ``(seed, name)``; so every
value is a pure function of ``(seed, name, i)`` and any slice can be generated alone. Values are float32
quantities whatever the tensor's dtype (float64 tensors hold them exactly, half types are rounded from them).

- uniform: ``k = word >> 8`` (24 bits), ``v = k * 2**-24`` in ``[0, 1 - 2**-24]`` exactly, value
  ``low + (high - low) * v`` in float32 (so in ``[low, high)`` before the final rounding, which may give
  ``high``).
- normal: Box-Muller on the fixed pairs (word0, word1) -> lanes 0, 1 and (word2, word3) -> lanes 2, 3:
  ``u1 = (k1 + 1) * 2**-24`` in ``(0, 1]``, angle ``2 pi k2 * 2**-24``; ``r = sqrt(-2 ln u1)``, lanes get
  ``r cos``, ``r sin``. ``|z| <= sqrt(48 ln 2) = 5.77``. ``ln``, ``sin``, ``cos`` are float32 polynomials
  (Cephes) evaluated with integer range reduction, so the numba kernel, this numpy reference and the Triton
  kernel do the same IEEE operations.
- truncated normal: inverse CDF, one word per element: ``u = Phi(a) + (Phi(b) - Phi(a)) (k + 1/2) 2**-24`` in
  float64, ``z = Phi^-1(u)`` by Acklam's rational approximation (relative error < 1.2e-9, i.e. below float32
  resolution), value ``loc + scale z`` clamped to the bounds, then rounded to float32. No rejection, no extra
  memory. Bounds above the mean are mirrored to below it so that the CDF keeps its relative precision.

This module is the numpy reference (and the fallback without numba); :mod:`.kernels_numba` must match it
bit for bit, which the tests check.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...catalog import draws as d
from .philox import derive_key, philox4x32

UNIFORM, NORMAL, TRUNCATED = 0, 1, 2
VALUES, AUX = 0, 1  # stream word: the values, or auxiliary draws of structured schemes (sparse masks)

F32 = np.float32
TWO_M24 = F32(2.0**-24)
ANGLE_STEP = F32(math.pi / 2 * 2.0**-22)  # one unit of the 22-bit in-quadrant angle offset
SQRTHF = F32(0.707106781186547524)
LN2_HI, LN2_LO = F32(0.693359375), F32(-2.12194440e-4)
LOG_C = tuple(F32(c) for c in (7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1, -1.2420140846e-1,
                                 1.4249322787e-1, -1.6668057665e-1, 2.0000714765e-1, -2.4999993993e-1,
                                 3.3333331174e-1))
SIN_C = tuple(F32(c) for c in (-1.9515295891e-4, 8.3321608736e-3, -1.6666654611e-1))
COS_C = tuple(F32(c) for c in (2.443315711809948e-5, -1.388731625493765e-3, 4.166664568298827e-2))
HALF, ONE, MINUS_TWO = F32(0.5), F32(1.0), F32(-2.0)

# Acklam's inverse normal CDF
ACK_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
         -3.066479806614716e01, 2.506628277459239e00)
ACK_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
         -1.328068155288572e01)
ACK_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
         4.374664141464968e00, 2.938163982698783e00)
ACK_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
P_LOW = 0.02425
P_HIGH = 1.0 - P_LOW


@dataclass(frozen=True)
class CounterPlan:
    """A resolved elementwise draw, ready for a kernel: the transform, its six float64 parameters, the key."""

    kind: int
    params: tuple[float, float, float, float, float, float]
    key: tuple[int, int]
    stream: int = VALUES
    constant: float | None = None


def plan(draw: d.Draw, seed: int, name: str, stream: int = VALUES) -> CounterPlan:
    """Parameters of the transform for ``draw`` (Constant, Uniform, Normal, TruncatedNormal)."""
    key = derive_key(seed, name)
    if isinstance(draw, d.Constant):
        return CounterPlan(UNIFORM, (0.0,) * 6, key, stream, constant=float(draw.value))
    if isinstance(draw, d.Uniform):
        if not draw.high >= draw.low:
            raise ValueError(f"uniform bounds must satisfy low <= high, got {draw}")
        width = float(draw.high) - float(draw.low)
        return CounterPlan(UNIFORM, (float(draw.low), width, 0, 0, 0, 0), key, stream)
    if isinstance(draw, d.Normal):
        return CounterPlan(NORMAL, (float(draw.mean), float(draw.std), 0, 0, 0, 0), key, stream)
    if isinstance(draw, d.TruncatedNormal):
        lo, hi = float(draw.low), float(draw.high)
        if not hi > lo:
            raise ValueError(f"truncation bounds must satisfy low < high, got {draw}")
        sign = 1.0
        if lo > 0:  # mirror so that the CDF works on the side where it has relative precision
            lo, hi, sign = -hi, -lo, -1.0
        pa, pb = d.normal_cdf(lo), d.normal_cdf(hi)
        if not pb > pa:
            raise ValueError(f"truncation [{draw.low}, {draw.high}] has no probability mass in float64")
        a_abs, b_abs = sorted((draw.loc + sign * draw.scale * lo, draw.loc + sign * draw.scale * hi))
        params = (pa, pb - pa, float(draw.loc), sign * float(draw.scale), a_abs, b_abs)
        return CounterPlan(TRUNCATED, params, key, stream)
    raise TypeError(f"the counter generator draws elementwise distributions, not {type(draw).__name__}")


# ------------------------------------------------------------------------------------------- numpy reference

def _horner(x: np.ndarray, coeffs: tuple) -> np.ndarray:
    y = np.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        y = y * x + c
    return y


def log_u24(k: np.ndarray) -> np.ndarray:
    """``ln(k * 2**-24)`` in float32 for integers ``1 <= k <= 2**24`` (Cephes logf, exponent found by integer
    shifts)."""
    k = k.astype(np.uint64)
    e = np.zeros_like(k)
    t = k.copy()
    for s in (16, 8, 4, 2, 1):
        step = np.where(t >= np.uint64(1 << s), np.uint64(s), np.uint64(0))
        e += step
        t >>= step
    x = ((k << np.uint64(23)) >> e).astype(F32) * TWO_M24  # mantissa in [0.5, 1), exact
    ee = e.astype(np.int64) - 23
    small = x < SQRTHF
    ee = np.where(small, ee - 1, ee).astype(F32)
    x = np.where(small, x + x - ONE, x - ONE)
    z = x * x
    y = _horner(x, LOG_C) * x * z
    y = y + LN2_LO * ee
    y = y - HALF * z
    x = x + y
    return x + LN2_HI * ee


def sincos_24(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sin, cos)`` of ``2 pi k * 2**-24`` in float32 for 24-bit integers ``k``: nearest quadrant by integer
    arithmetic, Cephes polynomials on ``[-pi/4, pi/4]``."""
    m = k.astype(np.int64)
    j = (m + (1 << 21)) >> 22
    theta = (m - (j << 22)).astype(F32) * ANGLE_STEP
    z = theta * theta
    s = ((SIN_C[0] * z + SIN_C[1]) * z + SIN_C[2]) * z * theta + theta
    c = ((COS_C[0] * z + COS_C[1]) * z + COS_C[2]) * z * z - HALF * z + ONE
    q = j & 3
    swap = (q & 1) == 1
    ss, cc = np.where(swap, c, s), np.where(swap, s, c)
    return np.where(q >= 2, -ss, ss), np.where((q == 1) | (q == 2), -cc, cc)


def ndtri_acklam(u: np.ndarray) -> np.ndarray:
    """Acklam's approximation of the inverse standard normal CDF in float64 (relative error < 1.2e-9)."""
    q = u - 0.5
    r = q * q
    num = _horner(r, ACK_A) * q
    den = _horner(r, (*ACK_B, 1.0))
    z = num / den
    lo, hi = u < P_LOW, u > P_HIGH
    if lo.any() or hi.any():
        tail = lo | hi
        p = np.where(lo, u, 1.0 - u)[tail]
        t = np.sqrt(-2.0 * np.log(p))
        zt = _horner(t, ACK_C) / _horner(t, (*ACK_D, 1.0))
        z[tail] = np.where(lo[tail], zt, -zt)
    return z


def words(key: tuple[int, int], index: np.ndarray, stream: int = VALUES) -> tuple[np.ndarray, ...]:
    """The four Philox words of the counter that holds each global index."""
    ctr = index.astype(np.uint64) >> np.uint64(2)
    zeros = np.zeros_like(ctr)
    lo, hi = ctr & np.uint64(0xFFFFFFFF), ctr >> np.uint64(32)
    return philox4x32((lo, hi, zeros + np.uint64(stream), zeros), key)


def values(p: CounterPlan, index: np.ndarray) -> np.ndarray:
    """float32 values at the given global indices (any order, any shape)."""
    index = np.asarray(index, dtype=np.int64)
    if p.constant is not None:
        return np.full(index.shape, p.constant, dtype=F32)
    x0, x1, x2, x3 = words(p.key, index, p.stream)
    lane = (index & 3).astype(np.uint8)
    if p.kind == NORMAL:
        first = lane < 2
        a = np.where(first, x0, x2) >> 8
        b = np.where(first, x1, x3) >> 8
        r = np.sqrt(MINUS_TWO * log_u24(a.astype(np.uint64) + np.uint64(1)))
        s, c = sincos_24(b)
        z = r * np.where(lane % 2 == 0, c, s)
        return F32(p.params[0]) + F32(p.params[1]) * z
    x = np.choose(lane, (x0, x1, x2, x3)) >> 8
    if p.kind == UNIFORM:
        return F32(p.params[0]) + F32(p.params[1]) * (x.astype(F32) * TWO_M24)
    pa, span, loc, scale, lo, hi = p.params
    u = pa + span * ((x.astype(np.float64) + 0.5) * 2.0**-24)
    return np.clip(loc + scale * ndtri_acklam(u), lo, hi).astype(F32)


def fill_numpy(out: np.ndarray, starts: np.ndarray, p: CounterPlan, chunk: int = 1 << 18) -> None:
    """Reference fill of a 2-D ``out``: row ``r`` holds global indices ``starts[r] + arange(cols)``."""
    rows, length = out.shape
    if length == 0:
        return
    per = max(1, chunk // length)
    cols = np.arange(length, dtype=np.int64)
    for r0 in range(0, rows, per):
        idx = starts[r0:r0 + per, None] + cols[None, :] if length <= chunk else None
        if idx is not None:
            out[r0:r0 + per] = values(p, idx)
            continue
        for c0 in range(0, length, chunk):  # one very long row
            n = min(chunk, length - c0)
            out[r0, c0:c0 + n] = values(p, starts[r0] + c0 + cols[:n])

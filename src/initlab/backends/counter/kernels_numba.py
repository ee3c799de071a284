"""The CPU kernel: Philox4x32-10 and the transforms of :mod:`.counter`, compiled by numba,
parallel over cores, writing straight into the output's memory. It performs the same IEEE operations in the
same order as the numpy reference (no fast-math, no FMA contraction), so the values agree bit for bit; only
``log`` in the tails of the truncated normal (``u < 0.02425`` or ``u > 0.97575``) is libm's here and numpy's
there (no difference seen in 16M values).

Work is split into tasks of ``CHUNK`` elements of one row; a task computes whole Philox counters in a loop
that LLVM vectorizes (indices are unsigned and the error model is numpy's, so no checks block it), and the
partial counters at its two ends one by one. Normal and truncated normal take two passes per task (Philox
words into a small buffer, then the transform), which keeps register pressure down.
"""

from __future__ import annotations

import math
import os
import threading

import numba
import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .counter import (
    ACK_A,
    ACK_B,
    ACK_C,
    ACK_D,
    ANGLE_STEP,
    COS_C,
    HALF,
    LN2_HI,
    LN2_LO,
    LOG_C,
    MINUS_TWO,
    NORMAL,
    ONE,
    P_HIGH,
    P_LOW,
    SIN_C,
    SQRTHF,
    TWO_M24,
    UNIFORM,
)
from .philox import M0, M1, W0, W1

CHUNK = 1 << 14
# numba's GNU OpenMP layer kills any child forked after a parallel launch (DataLoader workers, fork-started
# ranks); the workqueue layer is fork-safe but not re-entrant, hence the lock around launches.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"  # type: ignore[attr-defined]
LAUNCH = threading.Lock()
_M0, _M1, _W0, _W1 = np.uint64(M0), np.uint64(M1), np.uint64(W0), np.uint64(W1)
_MASK, _S32, _S8 = np.uint64(0xFFFFFFFF), np.uint64(32), np.uint64(8)
_L0, _L1, _L2, _L3, _L4, _L5, _L6, _L7, _L8 = LOG_C
_S0, _S1, _S2 = SIN_C
_C0, _C1, _C2 = COS_C
_A0, _A1, _A2, _A3, _A4, _A5 = ACK_A
_B0, _B1, _B2, _B3, _B4 = ACK_B
_D0, _D1, _D2, _D3, _D4, _D5 = ACK_C
_E0, _E1, _E2, _E3 = ACK_D
_U0, _U1, _U2 = np.uint64(0), np.uint64(1), np.uint64(2)
_U3, _F32_1 = np.uint64(3), np.float32(1.0)
_I1, _I2, _I3, _I8, _I21, _I22 = (np.int32(1), np.int32(2), np.int32(3), np.uint32(8), np.int32(1 << 21),
                                  np.int32(22))


@njit(inline="always", cache=True, error_model="numpy")
def _philox(ctr, stream, k0, k1):
    c0 = np.uint64(ctr) & _MASK
    c1 = np.uint64(ctr) >> _S32
    c2 = stream
    c3 = _U0
    for _ in range(10):
        p0 = c0 * _M0
        p1 = c2 * _M1
        c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _MASK, (p0 >> _S32) ^ c3 ^ k1, p0 & _MASK
        k0 = (k0 + _W0) & _MASK
        k1 = (k1 + _W1) & _MASK
    return c0, c1, c2, c3


@njit(inline="always", cache=True, error_model="numpy")
def _uniform(x, low, span):
    return low + span * (np.float32(x >> _S8) * TWO_M24)


@intrinsic
def _bits(typingctx, x):
    """float32 -> its IEEE bits (uint32)."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@intrinsic
def _from_bits(typingctx, b):
    """uint32 IEEE bits -> float32."""
    if b != types.uint32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


@njit(inline="always", cache=True, error_model="numpy")
def _radius(x):
    """sqrt(-2 ln((k + 1) 2**-24)) for the 24-bit k = x >> 8: exponent and mantissa of float32(k + 1) (exact)
    from its bits, which equals the reference's integer frexp."""
    b = _bits(np.float32(np.uint32(np.uint32(x) >> _I8) + np.uint32(1)))  # type: ignore[call-arg,var-annotated]
    ee = np.int32(b >> np.uint32(23)) - np.int32(150)  # exponent of the mantissa in [0.5, 1), minus 24
    m = _from_bits(np.uint32((b & np.uint32(0x007FFFFF)) | np.uint32(0x3F000000)))
    if m < SQRTHF:
        ee -= np.int32(1)
        m = m + m - _F32_1
    else:
        m = m - _F32_1
    fe = np.float32(ee)
    z = m * m
    y = ((((((((_L0 * m + _L1) * m + _L2) * m + _L3) * m + _L4) * m + _L5) * m + _L6) * m + _L7) * m + _L8)
    y = y * m * z
    y = y + LN2_LO * fe
    y = y - HALF * z
    m = m + y
    return math.sqrt(MINUS_TWO * (m + LN2_HI * fe))


@njit(inline="always", cache=True, error_model="numpy")
def _sincos(x):
    m = np.int32(np.uint32(x) >> _I8)  # explicit 32-bit casts let LLVM keep 32-bit lanes
    j = np.int32(np.int32(m + _I21) >> _I22)
    th = np.float32(np.int32(m - np.int32(j << _I22))) * ANGLE_STEP
    z = th * th
    s = ((_S0 * z + _S1) * z + _S2) * z * th + th
    c = ((_C0 * z + _C1) * z + _C2) * z * z - HALF * z + ONE
    q = np.int32(j & _I3)
    odd = np.int32(q & _I1) == _I1
    ss = c if odd else s
    cc = s if odd else c
    return (-ss if q >= _I2 else ss), (-cc if (q == _I1) | (q == _I2) else cc)


@njit(inline="always", cache=True, error_model="numpy")
def _trunc_u(x, pa, span):
    return pa + span * ((np.float64(x >> _S8) + 0.5) * 2.0**-24)


@njit(inline="always", cache=True, error_model="numpy")
def _central(u):
    q = u - 0.5
    r = q * q
    num = (((((_A0 * r + _A1) * r + _A2) * r + _A3) * r + _A4) * r + _A5) * q
    den = (((((_B0 * r + _B1) * r + _B2) * r + _B3) * r + _B4) * r + 1.0)
    return num / den


@njit(cache=True, error_model="numpy")
def _ndtri(u):
    if u < P_LOW or u > P_HIGH:
        p = u if u < P_LOW else 1.0 - u
        t = math.sqrt(-2.0 * math.log(p))
        num = ((((_D0 * t + _D1) * t + _D2) * t + _D3) * t + _D4) * t + _D5
        z = num / ((((_E0 * t + _E1) * t + _E2) * t + _E3) * t + 1.0)
        return z if u < P_LOW else -z
    return _central(u)


@njit(inline="always", cache=True, error_model="numpy")
def _trunc_value(z, loc, scale, lo, hi):
    return np.float32(min(max(loc + scale * z, lo), hi))


@njit(cache=True, error_model="numpy")
def _four(kind, ctr, stream, k0, k1, p):
    """The four float32 values of one counter (scalar path for partial counters)."""
    x0, x1, x2, x3 = _philox(ctr, stream, k0, k1)
    if kind == UNIFORM:
        lo, sp = np.float32(p[0]), np.float32(p[1])
        return _uniform(x0, lo, sp), _uniform(x1, lo, sp), _uniform(x2, lo, sp), _uniform(x3, lo, sp)
    if kind == NORMAL:
        mu, sd = np.float32(p[0]), np.float32(p[1])
        r0, r1 = _radius(x0), _radius(x2)
        s0, c0 = _sincos(x1)
        s1, c1 = _sincos(x3)
        return mu + sd * (r0 * c0), mu + sd * (r0 * s0), mu + sd * (r1 * c1), mu + sd * (r1 * s1)
    v = (_ndtri(_trunc_u(x0, p[0], p[1])), _ndtri(_trunc_u(x1, p[0], p[1])), _ndtri(_trunc_u(x2, p[0], p[1])),
         _ndtri(_trunc_u(x3, p[0], p[1])))
    return (_trunc_value(v[0], p[2], p[3], p[4], p[5]), _trunc_value(v[1], p[2], p[3], p[4], p[5]),
            _trunc_value(v[2], p[2], p[3], p[4], p[5]), _trunc_value(v[3], p[2], p[3], p[4], p[5]))


@njit(cache=True, error_model="numpy")
def _words(first, count, stream, k0, k1):
    """The Philox words of ``count`` counters from ``first``, in lane order."""
    ws = np.empty(4 * count, np.uint32)
    for i in range(count):
        x0, x1, x2, x3 = _philox(first + i, stream, k0, k1)
        j = np.uint64(4 * i)
        ws[j] = np.uint32(x0)
        ws[j + _U1] = np.uint32(x1)
        ws[j + _U2] = np.uint32(x2)
        ws[j + _U3] = np.uint32(x3)
    return ws


@njit(cache=True, error_model="numpy")
def _fill_range(row, lo, n, g0, kind, stream, k0, k1, p):
    """``row[lo:lo + n]`` holds global indices ``g0 .. g0 + n - 1``."""
    first = (g0 + 3) // 4
    last = (g0 + n) // 4
    if first > last:  # inside one counter
        first = last = g0 // 4 + 1
    head = min(4 * first, g0 + n)
    for g in range(g0, head):  # partial counter at the start
        v = _four(kind, g // 4, stream, k0, k1, p)
        row[lo + g - g0] = v[g % 4]
    base = lo + 4 * first - g0
    count = last - first
    if kind == UNIFORM:
        lw, sp = np.float32(p[0]), np.float32(p[1])
        for i in range(count):
            x0, x1, x2, x3 = _philox(first + i, stream, k0, k1)
            j = np.uint64(base + 4 * i)  # unsigned: no wraparound check, so the stores vectorize
            row[j] = _uniform(x0, lw, sp)
            row[j + _U1] = _uniform(x1, lw, sp)
            row[j + _U2] = _uniform(x2, lw, sp)
            row[j + _U3] = _uniform(x3, lw, sp)
    elif kind == NORMAL:
        # two passes (Philox words, then transform): fewer live registers, 32-bit lanes in the second
        ws = _words(first, count, stream, k0, k1)
        mu, sd = np.float32(p[0]), np.float32(p[1])
        for q in range(2 * count):
            j = np.uint64(2 * q)
            r = _radius(ws[j])
            s, c = _sincos(ws[j + _U1])
            o = np.uint64(base) + j
            row[o] = mu + sd * (r * c)
            row[o + _U1] = mu + sd * (r * s)
    else:
        pa, span, loc, scale, a, b = p[0], p[1], p[2], p[3], p[4], p[5]
        ws = _words(first, count, stream, k0, k1)
        for q in range(4 * count):
            o = np.uint64(base + q)
            row[o] = _trunc_value(_central(_trunc_u(ws[q], pa, span)), loc, scale, a, b)
        if pa < P_LOW or pa + span > P_HIGH:  # redo the few values in the tails of the CDF
            # find them first: with the log call in the same loop, LLVM if-converts it and runs it everywhere
            tails = np.empty(4 * count, np.int32)
            m = 0
            for q in range(4 * count):
                u = _trunc_u(ws[q], pa, span)
                if u < P_LOW or u > P_HIGH:
                    tails[m] = q
                    m += 1
            for t in range(m):
                q = tails[t]
                row[base + q] = _trunc_value(_ndtri(_trunc_u(ws[q], pa, span)), loc, scale, a, b)
    for g in range(max(4 * last, head), g0 + n):  # partial counter at the end
        v = _four(kind, g // 4, stream, k0, k1, p)
        row[lo + g - g0] = v[g % 4]


@njit(parallel=True, cache=True, error_model="numpy")
def fill(out, starts, kind, stream, k0, k1, p):
    """Fill the 2-D array ``out``: row ``r`` holds global indices ``starts[r] + arange(out.shape[1])``."""
    rows, length = out.shape
    per_row = (length + CHUNK - 1) // CHUNK
    st, q0, q1 = np.uint64(stream), np.uint64(k0), np.uint64(k1)
    for t in prange(rows * per_row):
        r = t // per_row
        lo = (t % per_row) * CHUNK
        _fill_range(out[r], lo, min(CHUNK, length - lo), starts[r] + lo, kind, st, q0, q1, p)


@njit(cache=True, error_model="numpy")
def fill_serial(out, starts, kind, stream, k0, k1, p):
    """:func:`fill` on the calling thread: no parallel launch (~0.1 ms), for one thread or small tensors."""
    rows, length = out.shape
    st, q0, q1 = np.uint64(stream), np.uint64(k0), np.uint64(k1)
    for r in range(rows):
        for lo in range(0, length, CHUNK):
            _fill_range(out[r], lo, min(CHUNK, length - lo), starts[r] + lo, kind, st, q0, q1, p)

"""The CUDA kernel: the same Philox4x32-10 and transforms as :mod:`.counter`, written in Triton.

Importable without triton or CUDA (``available()`` is then False and ``counter_fill_`` generates on the CPU
and copies). Each program handles ``BLOCK`` output elements; every element runs its own Philox counter and
keeps its lane (4x redundant Philox, cheap on a GPU, no cross-lane shuffles). All constants -- the float32
polynomial coefficients, Acklam's float64 coefficients and the draw's float64 parameters -- are loaded from
small tensors built from :mod:`.counter`, so nothing is copied by hand and no float64 value passes through a
float32 kernel argument. Launched with ``enable_fp_fusion=False`` (no FMA contraction) and correctly rounded
``sqrt``, to perform the CPU kernel's IEEE operations.

Checked in Triton's interpreter (``TRITON_INTERPRET=1``: the kernel's code run with numpy on the CPU,
``tests/scale/test_triton_interpreter.py``): bit-identical to the CPU kernel for uniform, normal and
truncated normal (tails included), whole tensors, flat and box pieces, float32/float64/bfloat16. Not yet run
on a GPU, so still opt-in (``INITLAB_TRITON=1``): what the interpreter cannot check is the GPU code
generation (libdevice's ``log`` in the truncated normal's tails; FMA contraction is disabled at launch).
``tests/scale/test_triton_cuda.py`` checks it on a GPU (skipped elsewhere): uniform bit for bit, normal and
truncated normal within stated ulp bounds.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from . import counter

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - CPU-only installs
    triton = None
    tl = None

F32_CONSTANTS = (*counter.LOG_C, *counter.SIN_C, *counter.COS_C, counter.ANGLE_STEP, counter.SQRTHF,
                 counter.LN2_HI, counter.LN2_LO)
F64_CONSTANTS = (*counter.ACK_A, *counter.ACK_B, *counter.ACK_C, *counter.ACK_D, counter.P_LOW,
                 counter.P_HIGH)


def available() -> bool:
    """Opt-in (``INITLAB_TRITON=1``) until the kernel has been checked on a GPU; otherwise CUDA tensors are
    generated on the CPU and copied, with the same values."""
    return os.environ.get("INITLAB_TRITON") == "1" and triton is not None and torch.cuda.is_available()


def fill_cuda_(tensor: torch.Tensor, starts: np.ndarray, length: int, p: counter.CounterPlan) -> None:
    """Fill a CUDA tensor whose rows of ``length`` elements start at the global indices ``starts``."""
    if p.constant is not None:
        tensor.fill_(p.constant)
        return
    dev = tensor.device
    # float32 values; float64 holds them exactly; narrower types are cast by torch (round to nearest even), as
    # the CPU path does, rather than by the kernel (the interpreter truncates)
    direct = tensor.is_contiguous() and tensor.dtype in (torch.float32, torch.float64)
    out = tensor if direct else torch.empty(tensor.shape, dtype=torch.float32, device=dev)
    starts_dev = torch.from_numpy(np.ascontiguousarray(starts, dtype=np.int64)).to(dev)
    c32 = torch.tensor(np.array(F32_CONSTANTS, dtype=np.float32), device=dev)
    c64 = torch.tensor(np.array((*p.params, *F64_CONSTANTS), dtype=np.float64), device=dev)
    n = out.numel()
    block = 1024
    _kernel[(triton.cdiv(n, block),)](out, starts_dev, c32, c64, n, length, p.stream, p.key[0], p.key[1],
                                        KIND=p.kind, BLOCK=block, enable_fp_fusion=False)
    if out is not tensor:
        tensor.copy_(out)


if triton is not None:  # pragma: no cover - needs triton (a GPU, or TRITON_INTERPRET=1 on the CPU)
    @triton.jit
    def _horner3(x, c_ptr, first):
        return (tl.load(c_ptr + first) * x + tl.load(c_ptr + first + 1)) * x + tl.load(c_ptr + first + 2)

    @triton.jit
    def _kernel(out_ptr, starts_ptr, c32, c64, n, length, stream, key0, key1, KIND: tl.constexpr,
               BLOCK: tl.constexpr):
        e = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        mask = e < n
        g = tl.load(starts_ptr + e // length, mask=mask, other=0) + e % length
        ctr = g >> 2
        lane = g & 3
        c0 = (ctr & 0xFFFFFFFF).to(tl.uint32)
        c1 = (ctr >> 32).to(tl.uint32)
        c2 = (tl.zeros_like(ctr) + stream).to(tl.uint32)  # ints may arrive as constexpr (1): no .to() on them
        c3 = tl.zeros_like(c0)
        k0 = (tl.zeros_like(ctr) + key0).to(tl.uint32)
        k1 = (tl.zeros_like(ctr) + key1).to(tl.uint32)
        for _ in tl.static_range(10):  # Philox4x32-10, as Random123
            a0 = c0
            a2 = c2
            c0 = tl.umulhi(a2, 0xCD9E8D57) ^ c1 ^ k0
            c2 = tl.umulhi(a0, 0xD2511F53) ^ c3 ^ k1
            c1 = a2 * 0xCD9E8D57
            c3 = a0 * 0xD2511F53
            k0 = k0 + 0x9E3779B9
            k1 = k1 + 0xBB67AE85
        two_m24 = 5.9604644775390625e-08  # 2**-24, exact in float32
        if KIND == 1:  # normal: Box-Muller on (word0, word1) and (word2, word3)
            first = lane < 2
            k = (tl.where(first, c0, c2) >> 8).to(tl.int64) + 1
            t = k
            ex = tl.zeros_like(k)
            for s in tl.static_range(5):
                step = tl.where(t >= (1 << (16 >> s)), 16 >> s, 0)
                ex += step
                t >>= step
            m = ((k << 23) >> ex).to(tl.float32) * two_m24
            ee = ex - 23
            small = m < tl.load(c32 + 16)
            fe = tl.where(small, ee - 1, ee).to(tl.float32)
            m = tl.where(small, m + m - 1.0, m - 1.0)
            z = m * m
            y = tl.load(c32 + 0) * m + tl.load(c32 + 1)
            for i in tl.static_range(2, 9):
                y = y * m + tl.load(c32 + i)
            y = y * m * z
            y = y + tl.load(c32 + 18) * fe
            y = y - 0.5 * z
            m = m + y
            r = tl.sqrt_rn(-2.0 * (m + tl.load(c32 + 17) * fe))
            mm = (tl.where(first, c1, c3) >> 8).to(tl.int64)
            j = (mm + (1 << 21)) >> 22
            th = (mm - (j << 22)).to(tl.float32) * tl.load(c32 + 15)
            z = th * th
            sn = _horner3(z, c32, 9) * z * th + th
            cs = _horner3(z, c32, 12) * z * z - 0.5 * z + 1.0
            q = j & 3
            swap = (q & 1) == 1
            ss = tl.where(swap, cs, sn)
            cc = tl.where(swap, sn, cs)
            sn = tl.where(q >= 2, -ss, ss)
            cs = tl.where((q == 1) | (q == 2), -cc, cc)
            zn = r * tl.where((lane & 1) == 0, cs, sn)
            val = tl.load(c64 + 0).to(tl.float32) + tl.load(c64 + 1).to(tl.float32) * zn
        else:
            x = tl.where(lane == 0, c0, tl.where(lane == 1, c1, tl.where(lane == 2, c2, c3))) >> 8
            if KIND == 0:  # uniform
                v01 = x.to(tl.float32) * two_m24
                val = tl.load(c64 + 0).to(tl.float32) + tl.load(c64 + 1).to(tl.float32) * v01
            else:  # truncated normal: Acklam's inverse CDF in float64
                u = tl.load(c64 + 0) + tl.load(c64 + 1) * ((x.to(tl.float64) + 0.5) * two_m24)
                qc = u - 0.5
                rr = qc * qc
                num = tl.load(c64 + 6) * rr + tl.load(c64 + 7)
                for i in tl.static_range(8, 12):
                    num = num * rr + tl.load(c64 + i)
                den = tl.load(c64 + 12) * rr + tl.load(c64 + 13)
                for i in tl.static_range(14, 17):
                    den = den * rr + tl.load(c64 + i)
                central = num * qc / (den * rr + 1.0)
                p_low = tl.load(c64 + 27)
                low = u < p_low
                pt = tl.where(low, u, 1.0 - u)
                pt = tl.where((pt > 0.0) & (pt < 0.5), pt, 0.25)  # keep log finite where unused
                tt = tl.sqrt(-2.0 * tl.log(pt))  # float64: IEEE sqrt (sqrt_rn is float32 only)
                tn = tl.load(c64 + 17) * tt + tl.load(c64 + 18)
                for i in tl.static_range(19, 23):
                    tn = tn * tt + tl.load(c64 + i)
                td = tl.load(c64 + 23) * tt + tl.load(c64 + 24)
                for i in tl.static_range(25, 27):
                    td = td * tt + tl.load(c64 + i)
                tail = tn / (td * tt + 1.0)
                zz = tl.where(low | (u > tl.load(c64 + 28)), tl.where(low, tail, -tail), central)
                v = tl.load(c64 + 2) + tl.load(c64 + 3) * zz
                val = tl.minimum(tl.maximum(v, tl.load(c64 + 4)), tl.load(c64 + 5)).to(tl.float32)
        tl.store(out_ptr + e, val.to(out_ptr.dtype.element_ty), mask=mask)

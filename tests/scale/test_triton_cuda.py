"""The Triton kernel on a real GPU against the CPU kernel: what the interpreter test cannot check (the GPU's
code generation, libdevice's float64 ``log`` in the truncated normal's tails). Skipped without CUDA and triton
(CI has neither); run it on a GPU machine with ``pytest tests/scale/test_triton_cuda.py -s``, which prints the
measured ulp distances."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA device", allow_module_level=True)

from initlab.backends.counter import kernels_triton
from initlab.backends.counter.fill import counter_fill_
from initlab.catalog import draws as d

DRAWS = {  # name: (draw, largest distance in ulp allowed)
    "uniform": (d.Uniform(-0.3, 0.7), 0),  # Philox and one multiply-add: exact on any IEEE device
    "normal": (d.Normal(0.1, 2.0), 2),  # float32 polynomials without FMA contraction: expected exact
    "trunc2": (d.TruncatedNormal(0.0, 1.0, -2.0, 2.0), 2),
    "trunc_tail": (d.TruncatedNormal(0.0, 1.0, 2.5, 6.0), 4),  # float64 log in the tail: libdevice vs libm
}
PIECES = {  # (local shape, global shape, offset)
    "whole": ((1025, 999), (1025, 999), 0),
    "flat": ((17, 999), (1025, 999), 31 * 999),
    "box": ((1025, 100), (1025, 999), (0, 613)),
}
BITS = {torch.float32: torch.int32, torch.float64: torch.int64, torch.bfloat16: torch.int16}


@pytest.mark.parametrize("dtype", list(BITS), ids=lambda t: str(t)[6:])
@pytest.mark.parametrize("piece", list(PIECES))
@pytest.mark.parametrize("dname", list(DRAWS))
def test_gpu_kernel_matches_cpu_kernel(monkeypatch, dname, piece, dtype):
    monkeypatch.setenv("INITLAB_TRITON", "1")
    assert kernels_triton.available()
    draw, bound = DRAWS[dname]
    local, glob, offset = PIECES[piece]
    kwargs = dict(seed=5, name="blk.w", offset=offset, global_shape=glob)
    cpu = counter_fill_(torch.empty(local, dtype=dtype), draw, **kwargs)
    gpu = counter_fill_(torch.empty(local, dtype=dtype, device="cuda"), draw, **kwargs).cpu()
    ulp = (gpu.view(BITS[dtype]).long() - cpu.view(BITS[dtype]).long()).abs().max().item()
    print(f"{dname}/{piece}/{dtype}: max {ulp} ulp, {(gpu != cpu).float().mean().item():.2e} differ")
    assert ulp <= bound

"""The Triton kernel against the CPU kernel, run by Triton's interpreter (``TRITON_INTERPRET=1``: the
kernel's own code executed with numpy on the CPU). It checks the kernel's Philox, transforms, indexing and
casts bit for bit; what it cannot check is the GPU code generation (libdevice's ``log``, FMA contraction),
which needs a GPU. Skipped where triton is not installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

SCRIPT = r"""
import json
import torch
from initlab.catalog import draws as d
from initlab.backends.counter import counter, kernels_triton
from initlab.backends.counter.fill import counter_fill_, row_starts

DRAWS = {
    "uniform": d.Uniform(-0.3, 0.7),
    "normal": d.Normal(0.1, 2.0),
    "trunc2": d.TruncatedNormal(0.0, 1.0, -2.0, 2.0),
    "trunc_tail": d.TruncatedNormal(0.0, 1.0, 2.5, 6.0),
    "trunc_wide": d.TruncatedNormal(0.0, 0.02, -1.0, 1.0),
}
PIECES = {  # (local shape, global shape, offset)
    "whole": ((33, 77), (33, 77), 0),
    "flat_odd": ((5, 77), (33, 77), 3 * 77),
    "box": ((33, 10), (33, 77), (0, 13)),
    "box_3d": ((3, 4, 5), (6, 7, 9), (1, 2, 3)),
}
out = {}
for dname, draw in DRAWS.items():
    for pname, (local, glob, offset) in PIECES.items():
        for dtype in (torch.float32, torch.float64, torch.bfloat16):
            ref = counter_fill_(torch.empty(local, dtype=dtype), draw, seed=11, name="blk.w", offset=offset,
                                global_shape=glob)
            p = counter.plan(draw, 11, "blk.w")
            starts, length = row_starts(local, glob, offset)
            got = torch.empty(local, dtype=dtype)
            kernels_triton.fill_cuda_(got, starts, length, p)
            bits = {torch.bfloat16: torch.int16, torch.float32: torch.int32,
                    torch.float64: torch.int64}[dtype]
            ulp = (got.view(bits).long() - ref.view(bits).long()).abs().max().item()
            out[f"{dname}/{pname}/{str(dtype)[6:]}"] = [bool(torch.equal(got, ref)), ulp]
print(json.dumps(out))
"""


def test_triton_kernel_matches_the_cpu_kernel_bit_for_bit_in_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(results) == 5 * 4 * 3
    differ = {k: v for k, v in results.items() if not v[0]}
    assert not differ, differ

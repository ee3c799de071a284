"""Same seed, same weights on 1 or 2 torch threads and under any PYTHONHASHSEED (issue 14 item 3): "auto" on
deep plain chains (orthogonal / looks-linear), "orthogonal" and LSUV, with both generators."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

from initlab.backends.torch_backend import haar_orthogonal, one_thread

CHILD = Path(__file__).with_name("_threads_child.py")


def _start(threads: int, hashseed: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONHASHSEED": hashseed, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen([sys.executable, str(CHILD), str(threads)], stdout=subprocess.PIPE, text=True,
                            env=env)


def _result(proc: subprocess.Popen[str]) -> dict[str, str]:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0
    return dict(line.split(" ", 1) for line in out.strip().splitlines())


def test_bit_identical_across_thread_counts_and_processes():  # type: ignore[no-untyped-def]
    procs = _start(1, "1"), _start(2, "987")  # in parallel: the test costs one child's time
    one, two = (_result(p) for p in procs)
    assert set(one) == {"auto-ReLU-torch", "auto-Tanh-torch", "orthogonal-torch", "auto-ReLU-counter",
                        "auto-Tanh-counter", "orthogonal-counter", "lsuv"}
    differ = {k: sum(a != b for a, b in zip(one[k].split(), two[k].split(), strict=True)) for k in one}
    assert differ == dict.fromkeys(one, 0)


def test_one_thread_restores_the_count():  # type: ignore[no-untyped-def]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with one_thread():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        try:
            with one_thread():
                raise KeyError("inside")
        except KeyError:
            pass
        assert torch.get_num_threads() == 2
        haar_orthogonal(8, 8, torch.Generator().manual_seed(0))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

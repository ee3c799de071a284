"""Throughput of the counter-based generator (initlab.scale) against torch's CPU generator, same run.

Rows: uniform, normal and +-2 sigma truncated normal into one float32 tensor (default 1 GiB), with 1 and 2
threads, beside torch's ``uniform_``/``normal_``/``nn.init.trunc_normal_`` (torch's generator is serial:
one thread) and ``fill_`` (the write floor). GB/s = 1e9 bytes of output per second into an already-touched
tensor; median of ``--repeat`` runs after a warm-up, ours and torch's interleaved so that both see the same
load. Extra memory: in a fresh subprocess per case that allocates and touches the tensor, warms the kernel on
a small tensor, resets the peak-RSS counter (``/proc/self/clear_refs`` <- 5) and reads ``VmHWM`` after the
fill. (``benchmarks/throughput.py --counter`` runs it after the torch backend's rows.)

    python benchmarks/scale_throughput.py                   # 1 GiB (torch's trunc_normal_ alone takes ~25 s)
    python benchmarks/scale_throughput.py --size-mib 64     # quick
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from initlab.catalog import draws as d
from initlab.scale import counter_fill_

ROOT = Path(__file__).resolve().parents[1]
DRAWS = {"uniform": d.Uniform(-1.0, 1.0), "normal": d.Normal(0.0, 1.0),
         "trunc_normal": d.TruncatedNormal(0.0, 1.0, -2.0, 2.0)}


def torch_op(kind: str, t: torch.Tensor, g: torch.Generator) -> None:
    if kind == "uniform":
        t.uniform_(-1.0, 1.0, generator=g)
    elif kind == "normal":
        t.normal_(0.0, 1.0, generator=g)
    elif kind == "trunc_normal":
        torch.nn.init.trunc_normal_(t, 0.0, 1.0, -2.0, 2.0, generator=g)
    else:
        t.fill_(0.5)


def ours(kind: str, t: torch.Tensor, threads: int) -> None:
    counter_fill_(t, DRAWS[kind], seed=0, name="bench.weight", threads=threads)


def timed(fn: Callable[[], None]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def extra_memory(which: str, kind: str, numel: int, threads: int) -> float:
    """Peak RSS added by one fill, MiB, measured in a fresh process."""
    call = f"ours({kind!r}, {{}}, {threads})" if which == "ours" else f"torch_op({kind!r}, {{}}, g)"
    code = f"""
import torch, sys
sys.path.insert(0, {str(ROOT / 'benchmarks')!r})
from scale_throughput import ours, torch_op
torch.set_num_threads({threads})
t = torch.empty({numel}).fill_(1.0)
g = torch.Generator().manual_seed(0)
small = torch.empty(4096)
{call.format('small')}
def rss(field):
    for line in open('/proc/self/status'):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
open('/proc/self/clear_refs', 'w').write('5')
before = rss('VmRSS:')
{call.format('t')}
print(rss('VmHWM:') - before)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--torch-trunc-repeat", type=int, default=1, help="torch's trunc_normal_ is slow")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    numel = args.size_mib * (1 << 20) // 4
    gb = numel * 4 / 1e9
    torch.set_num_threads(1)
    t = torch.empty(numel).fill_(1.0)
    g = torch.Generator().manual_seed(0)
    rows = []
    floor = statistics.median(timed(lambda: torch_op("fill", t, g)) for _ in range(args.repeat))
    for kind in DRAWS:
        ours(kind, t[:4096], 1)  # compile / load the kernel
        base_runs = args.torch_trunc_repeat if kind == "trunc_normal" else args.repeat
        torch_times: list[float] = []
        mine: dict[int, list[float]] = {1: [], 2: []}
        for r in range(max(args.repeat, base_runs)):
            for threads in (1, 2):
                if r < args.repeat:
                    mine[threads].append(timed(lambda k=kind, n=threads: ours(k, t, n)))
            if r < base_runs:
                torch_times.append(timed(lambda k=kind: torch_op(k, t, g)))
        base = statistics.median(torch_times)
        for threads in (1, 2):
            rows.append({
                "kind": kind, "threads": threads, "ours_gbs": gb / statistics.median(mine[threads]),
                "torch_gbs": gb / base, "speedup": base / statistics.median(mine[threads]),
                "ours_extra_mib": extra_memory("ours", kind, numel, threads),
            })
        rows[-1]["torch_extra_mib"] = rows[-2]["torch_extra_mib"] = extra_memory("torch", kind, numel, 1)
    table = Table(title=f"counter generator vs torch, {args.size_mib} MiB float32 (write floor: fill_ "
                        f"{gb / floor:.2f} GB/s)")
    for col in ("draw", "threads", "counter GB/s", "torch GB/s (1 thr)", "speed-up", "extra MiB: counter",
                "extra MiB: torch"):
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(row["kind"], str(row["threads"]), f"{row['ours_gbs']:.2f}", f"{row['torch_gbs']:.3f}",
                      f"{row['speedup']:.2f}x", f"{row['ours_extra_mib']:.1f}",
                      f"{row['torch_extra_mib']:.0f}")
    Console().print(table)
    if args.json:
        summary = {"size_mib": args.size_mib, "fill_gbs": gb / floor, "rows": rows}
        args.json.write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()

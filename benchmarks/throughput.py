"""Throughput of initlab's schemes against torch.nn.init, measured in the same run.

For each case: GB/s (1e9 bytes of output per second into an already-touched float32 tensor; best of
``--repeat`` runs after a warm-up, initlab and torch interleaved so both see the same load) for initlab
(``init_``) and for the torch.nn.init equivalent, beside
``fill_`` (the write-bandwidth floor), and the extra peak memory each needs.

Extra memory: ``tracemalloc`` does not see torch's allocator, and torch's allocator statistics exist only on
CUDA. So each case also runs once in a fresh subprocess that allocates and touches the tensor, resets the
kernel's peak-RSS counter (``/proc/self/clear_refs`` <- 5, Linux >= 4.0), runs the init and reads the new peak
(``VmHWM``): extra = peak - RSS before. A fresh process per case keeps freed memory of one case from hiding
the next one's.

    python benchmarks/throughput.py            # 4096x4096 and 64M elements (about 3-5 minutes on 2 cores)
    python benchmarks/throughput.py --quick    # 1024x1024 and 4M elements
    python benchmarks/throughput.py --only zzz --counter 1024   # only the counter generator's rows, 1 GiB
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from initlab.backends.torch_backend import init_
from initlab.catalog import get

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Case:
    label: str
    ours: str  # initlab scheme
    theirs: str  # python expression of torch.nn.init (``init``) on tensor ``t`` with generator ``g``
    big: bool = True  # also run on the large tensor


def cases(shape: tuple[int, int]) -> list[Case]:
    fan_in = shape[1]
    s = 0.02
    he = math.sqrt(2 / fan_in)
    keras_parent = he / 0.87962566103423978
    return [
        Case("uniform(-1, 1)", "uniform(-1, 1)", "init.uniform_(t, -1, 1, generator=g)"),
        Case("normal(0, 0.02)", "normal(0, 0.02)", "init.normal_(t, 0, 0.02, generator=g)"),
        Case("glorot_uniform", "glorot_uniform", "init.xavier_uniform_(t, generator=g)"),
        Case("glorot_normal", "glorot_normal", "init.xavier_normal_(t, generator=g)"),
        Case("he_uniform", "he_uniform", "init.kaiming_uniform_(t, nonlinearity='relu', generator=g)"),
        Case("he_normal", "he_normal", "init.kaiming_normal_(t, nonlinearity='relu', generator=g)"),
        Case("torch:default", "torch:default", "init.kaiming_uniform_(t, a=math.sqrt(5), generator=g)"),
        Case("truncated_normal +-2 std (0.02)", f"truncated_normal(0, {s}, -2, 2)",
             f"init.trunc_normal_(t, 0, {s}, {-2 * s}, {2 * s}, generator=g)"),
        Case("keras:he_normal (trunc., corrected)", "keras:he_normal",
             f"init.trunc_normal_(t, 0, {keras_parent}, {-2 * keras_parent}, {2 * keras_parent}, "
             "generator=g)"),
        Case("vit_trunc_normal (abs. +-2, std 0.02)", "vit_trunc_normal",
             "init.trunc_normal_(t, 0, 0.02, -2, 2, generator=g)"),
        Case("zeros", "zeros", "init.zeros_(t)"),
        Case("orthogonal", "orthogonal", "init.orthogonal_(t, generator=g)", big=False),
        Case("sparse(0.1)", "sparse(0.1)", "init.sparse_(t, 0.1, generator=g)", big=False),
    ]


def _once(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _timed(fn: Callable[[], Any], repeat: int) -> float:
    fn()  # warm-up
    return min(_once(fn) for _ in range(repeat))


def _paired(ours: Callable[[], Any], theirs: Callable[[], Any], repeat: int, repeat_theirs: int
            ) -> tuple[float, float]:
    """Interleaved runs (the machine is shared and noisy), best of each: both sides see the same load."""
    ours(), theirs()
    a, b = [], []
    for i in range(max(repeat, repeat_theirs)):
        if i < repeat:
            a.append(_once(ours))
        if i < repeat_theirs:
            b.append(_once(theirs))
    return min(a), min(b)


def run_ours(t: torch.Tensor, case: Case, g: torch.Generator) -> Callable[[], Any]:
    scheme = get(case.ours)
    return lambda: init_(t, scheme, g)


def run_theirs(t: torch.Tensor, case: Case, g: torch.Generator) -> Callable[[], Any]:
    code = compile(case.theirs, "<torch>", "eval")
    env = {"init": torch.nn.init, "t": t, "g": g, "math": math}
    return lambda: eval(code, env)


# ---- extra memory, one subprocess per case ---------------------------------------------------------------
_MEMORY_SCRIPT = """
import json, math, sys, torch
sys.path[:0] = [{benchmarks!r}]
from throughput import Case, run_ours, run_theirs
torch.set_num_threads({threads})
case = Case(**json.loads({case!r}))
t = torch.empty({shape!r})
t.fill_(1.0)
g = torch.Generator().manual_seed(0)
fn = run_ours(t, case, g) if {side!r} == "ours" else run_theirs(t, case, g)
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
open("/proc/self/clear_refs", "w").write("5")
before = status("VmRSS:")
fn()
print(json.dumps({{"extra": status("VmHWM:") - before}}))
"""


def extra_memory(case: Case, shape: tuple[int, ...], side: str, threads: int) -> int | None:
    script = _MEMORY_SCRIPT.format(benchmarks=str(Path(__file__).parent), threads=threads, shape=shape,
                                   case=json.dumps(case.__dict__), side=side)
    try:
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                             check=True).stdout
        return int(json.loads(out.strip().splitlines()[-1])["extra"])
    except (subprocess.SubprocessError, ValueError, IndexError, OSError):
        return None


def measure(shape: tuple[int, ...], repeat: int, threads: int, memory: bool,
            only: str | None = None) -> list[dict[str, Any]]:
    t = torch.empty(shape)
    t.fill_(1.0)  # touch the pages: measure generation, not page faults
    gbytes = t.numel() * t.element_size() / 1e9
    g = torch.Generator().manual_seed(0)
    rows = [{"case": "fill_ (write floor)", "ours_gbs": gbytes / _timed(lambda: t.fill_(0.5), repeat)}]
    big = t.numel() > 20_000_000
    for case in cases((shape[0], math.prod(shape[1:]))):
        if (big and not case.big) or (only and only not in case.label):
            continue
        tight_trunc = case.theirs.startswith("init.trunc_normal_") and "-2, 2" not in case.theirs
        slow = tight_trunc or case.label in ("orthogonal", "sparse(0.1)")
        reps = 1 if slow and big else repeat
        ours, theirs = _paired(run_ours(t, case, g), run_theirs(t, case, g), repeat, reps)
        row: dict[str, Any] = {"case": case.label, "ours_gbs": gbytes / ours, "torch_gbs": gbytes / theirs,
                               "speedup": theirs / ours, "ours_s": ours, "torch_s": theirs}
        if case.label == "orthogonal":
            q = t.view(shape[0], -1).double()
            row["orth_err"] = float((q @ q.T - torch.eye(shape[0], dtype=torch.float64)).abs().max())
        if memory:
            row["ours_extra"] = extra_memory(case, shape, "ours", threads)
            row["torch_extra"] = extra_memory(case, shape, "torch", threads)
            row["tensor_bytes"] = t.numel() * t.element_size()
        rows.append(row)
    return rows


def _mib(x: int | None) -> str:
    return "-" if x is None else f"{x / 2**20:.0f}"


def print_table(shape: tuple[int, ...], rows: list[dict[str, Any]], console: Console) -> None:
    n = math.prod(shape)
    table = Table(title=f"float32 {'x'.join(map(str, shape))} ({n / 1e6:.1f}M elements, "
                        f"{n * 4 / 2**20:.0f} MiB), {torch.get_num_threads()} thread(s)")
    for col in ["scheme", "initlab GB/s", "torch GB/s", "speed-up", "initlab extra MiB", "torch extra MiB"]:
        table.add_column(col, justify="left" if col == "scheme" else "right")
    for r in rows:
        if "torch_gbs" not in r:
            table.add_row(r["case"], f"{r['ours_gbs']:.2f}", "", "", "", "")
            continue
        note = f" (|QQᵀ-I| {r['orth_err']:.1e})" if "orth_err" in r else ""
        table.add_row(r["case"] + note, f"{r['ours_gbs']:.3f}", f"{r['torch_gbs']:.3f}",
                      f"{r['speedup']:.2f}x", _mib(r.get("ours_extra")), _mib(r.get("torch_extra")))
    console.print(table)


def orthogonal_thread_cost(sizes: list[tuple[int, int]], repeat: int, console: Console
                           ) -> list[dict[str, Any]]:
    """Orthogonal draws run on one intra-op thread (so the values do not depend on the thread count,
    :func:`initlab.backends.torch_backend.one_thread`): seconds per draw against the same construction on
    ``torch.get_num_threads()`` threads (the code before that change), interleaved in the same run."""
    from initlab.backends import torch_backend as tb

    threads = torch.get_num_threads()
    table = Table(title=f"orthogonal: one thread (deterministic) vs {threads} thread(s) (before), float32")
    for col in ["shape", "one thread ms", f"{threads} threads ms", "cost (ratio)"]:
        table.add_column(col, justify="right")
    rows = []
    for rows_, cols in sizes:
        g = torch.Generator().manual_seed(0)
        fixed, free = _paired(lambda r=rows_, c=cols, g=g: tb.haar_orthogonal(r, c, g),  # type: ignore[misc]
                              lambda r=rows_, c=cols, g=g: tb._haar_orthogonal(  # type: ignore[misc]
                                  r, c, g, torch.float32, "cpu", None),
                              repeat, repeat)
        rows.append({"shape": [rows_, cols], "one_thread_s": fixed, "threads_s": free, "ratio": fixed / free})
        table.add_row(f"{rows_}x{cols}", f"{fixed * 1e3:.1f}", f"{free * 1e3:.1f}", f"{fixed / free:.2f}x")
    console.print(table)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: 1024x1024 and 4M elements")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the same for both sides)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-case memory subprocesses")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    parser.add_argument("--only", help="only the cases whose label contains this")
    parser.add_argument("--counter", type=int, metavar="MIB", default=0,
                        help="then the counter-based generator's rows (uniform, normal, +-2 sigma truncated "
                             "normal; 1 and 2 threads) into a float32 tensor of MIB MiB, e.g. 1024 "
                             "(benchmarks/scale_throughput.py)")
    parser.add_argument("--orthogonal-threads", action="store_true",
                        help="only the cost of thread-count-independent orthogonal draws "
                             "(run with --threads 2)")
    parser.add_argument("--large", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the 64M-element tensor (default: yes)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    shapes = [(1024, 1024), (2048, 2048)] if args.quick else [(4096, 4096), (8192, 8192)]
    shapes = shapes if args.large else shapes[:1]
    console = Console(width=None if sys.stdout.isatty() else 120)
    if args.orthogonal_threads:
        sizes = [(256, 256), (1024, 1024), (2048, 2048), (4096, 1024)]
        rows = orthogonal_thread_cost(sizes[:3] if args.quick else sizes, args.repeat, console)
        if args.json:
            args.json.write_text(json.dumps({"torch": torch.__version__, "threads": args.threads,
                                             "orthogonal_threads": rows}, indent=1))
        return 0
    results = {}
    for i, shape in enumerate(shapes):
        rows = measure(shape, args.repeat, args.threads, not args.no_memory and (i == 0 or not args.quick),
                       args.only)
        print_table(shape, rows, console)
        results["x".join(map(str, shape))] = rows
    if args.json:
        meta = {"torch": torch.__version__, "threads": args.threads}
        args.json.write_text(json.dumps({**meta, **results}, indent=1))
    if args.counter:
        import scale_throughput  # the same folder

        scale_throughput.main(["--size-mib", str(args.counter)])
    return 0


if __name__ == "__main__":
    sys.exit(main())

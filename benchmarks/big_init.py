"""Whole-model init: default construction vs meta build + ``initlab.materialize``, same run, one core.

Models: a minimal GPT-2-small (124.4M parameters, lm_head tied to wte) and a 1.07B-parameter stack of 16
``Linear(8192, 8192)``. Variants, each in a fresh subprocess (so that peak RSS is its own; ``VmHWM``):

- ``default``: ``build()`` on the CPU (torch's default init, mt19937);
- ``initlab``: ``build()`` under ``initlab.on_meta()`` (the meta device, torch.nn.init's functions skipped)
  then ``materialize(model, "cpu", scheme, seed=0)``
  (plan from shapes, module-by-module allocation, counter-based generator, one thread), with the same
  distributions as default construction (``torch:default``); for GPT-2 also ``hf:gpt2`` (normal 0.02);
- ``safetensors``: the same plan streamed to a file, the model never held (``--file``);
- ``floor``: the same build, then ``torch.empty(...).zero_()`` for every tensor: allocating and first touching
  the memory, which any init pays (on this VM the first touch of memory the guest has not used recently is
  host-backed and costs ~0.3-0.5 GB/s).

Each run also reports its CPU time split into user (drawing, planning) and system time (page faults: the
kernel zeroing and, on this VM, the host backing fresh pages); "user speed-up" compares user times.

``--repeats N`` runs every variant N times, in a rotated order (a variant's memory is warmer or colder
depending on what ran just before it), and reports the median and the range.

Times exclude one-off costs, reported apart: imports (``initlab.model``, ``torch.fx``, numba) and loading the
compiled kernel; peak RSS includes them. Tying is checked.

    python benchmarks/big_init.py                    # GPT-2 small
    python benchmarks/big_init.py --model linear1b   # 1B parameters: ~4.3 GB per variant; run alone
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.table import Table
from torch import nn


class Attention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.c_attn(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(d), Attention(d, heads), nn.LayerNorm(d)
        self.c_fc, self.c_proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class GPT2(nn.Module):
    def __init__(self, vocab: int = 50257, ctx: int = 1024, d: int = 768, layers: int = 12, heads: int = 12):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.h = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def build(name: str) -> nn.Module:
    if name == "gpt2":
        return GPT2()
    return nn.Sequential(*(nn.Linear(8192, 8192) for _ in range(16)))


def rss_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def run_variant(model_name: str, variant: str, scheme: str, path: str, threads: int = 1) -> dict:
    """Runs in the subprocess."""
    import resource
    import time

    torch.set_num_threads(1)
    warm = time.perf_counter()
    if variant != "default":  # one-off: imports (initlab.model, torch.fx, numba), loading the compiled kernel
        import initlab.model
        import initlab.scale.big_model
        from initlab.catalog import draws as d
        from initlab.scale import counter_fill_

        # 2^19 elements: the parallel kernel when threads > 1, the serial one otherwise
        counter_fill_(torch.empty(1 << 19), d.Normal(0.0, 1.0), seed=0, name="warm", threads=threads)
        initlab.model.init_model(nn.Linear(2, 2), "torch:default", seed=0, dry_run=True)
        import scipy.special  # noqa: F401  (the moments of GELU, SiLU, sigmoid use scipy's erf and expit)
    warm = time.perf_counter() - warm
    base = rss_mib("VmRSS:")
    floor: list[torch.Tensor] = []
    cpu = resource.getrusage(resource.RUSAGE_SELF)
    start = time.perf_counter()
    if variant == "default":
        model = build(model_name)
    else:
        from initlab import materialize, on_meta

        with on_meta():  # torch.device("meta") without running torch.nn.init's functions
            model = build(model_name)
        if variant == "initlab":
            materialize(model, "cpu", scheme, seed=0, threads=threads, progress=False)
        elif variant == "floor":  # the same bytes allocated and first touched (tied once), model on meta
            tensors = (*model.parameters(), *model.buffers())
            floor = [torch.empty(t.shape, dtype=t.dtype).zero_() for t in tensors]
        else:
            materialize(model, scheme=scheme, seed=0, path=path, threads=threads, progress=False)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    del floor
    params = sum(p.numel() for p in model.parameters())
    tied = None if model_name != "gpt2" else model.lm_head.weight is model.wte.weight
    return {"seconds": seconds, "warmup_s": warm, "params": params, "tied": tied,
            "user_s": after.ru_utime - cpu.ru_utime, "sys_s": after.ru_stime - cpu.ru_stime,
            "page_faults": after.ru_minflt - cpu.ru_minflt,
            "peak_rss_mib": rss_mib("VmHWM:"), "base_rss_mib": base}


def measure(model_name: str, variant: str, scheme: str, threads: int = 1) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "model.safetensors")
        call = f"big_init.run_variant({model_name!r}, {variant!r}, {scheme!r}, {path!r}, {threads})"
        code = (f"import sys, json; sys.path.insert(0, {str(Path(__file__).parent)!r}); import big_init; "
                f"print(json.dumps({call}))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=["gpt2", "linear1b"], default="gpt2")
    parser.add_argument("--file", action="store_true", help="also stream to a safetensors file")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--threads", type=int, default=0, help="also run initlab with this many threads")
    parser.add_argument("--repeats", type=int, default=1, help="runs per variant, in rotated order")
    args = parser.parse_args()
    variants = [("default", "torch:default", 1), ("initlab", "torch:default", 1)]
    if args.model == "gpt2":
        variants.append(("initlab", "hf:gpt2", 1))
    if args.file:
        variants.append(("safetensors", "torch:default", 1))
    if args.threads > 1:
        variants.append(("initlab", "torch:default", args.threads))
    variants.append(("floor", "(zero_)", 1))
    rows = measure_all(args.model, variants, args.repeats)
    base = rows[0]["seconds"]
    title = (f"{args.model}: {rows[0]['params'] / 1e6:.1f}M parameters, fresh process each, "
             f"median of {args.repeats}")
    table = Table(title=title)
    for col in ("variant", "scheme", "s", "range s", "speed-up", "user s", "sys s", "user speed-up",
                "peak RSS MiB", "RSS before MiB", "one-off warm-up s", "tied"):
        table.add_column(col, justify="right")
    for r in rows:
        spread = f"{min(r['all_seconds']):.2f}-{max(r['all_seconds']):.2f}"
        table.add_row(r["variant"], r["scheme"], f"{r['seconds']:.3f}", spread, f"{base / r['seconds']:.2f}x",
                      f"{r['user_s']:.2f}", f"{r['sys_s']:.2f}", f"{rows[0]['user_s'] / r['user_s']:.2f}x",
                      f"{r['peak_rss_mib']:.0f}", f"{r['base_rss_mib']:.0f}", f"{r['warmup_s']:.2f}",
                      str(r["tied"]))
    Console(width=170).print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def measure_all(model_name: str, variants: list[tuple[str, str, int]], repeats: int) -> list[dict]:
    """Every variant ``repeats`` times, round k starting at variant k (mod the count); medians."""
    runs: list[list[dict]] = [[] for _ in variants]
    for k in range(repeats):
        for j in range(len(variants)):
            i = (j + k) % len(variants)
            runs[i].append(measure(model_name, *variants[i]))
    rows = []
    for (variant, scheme, threads), got in zip(variants, runs, strict=True):
        seconds = sorted(r["seconds"] for r in got)
        row = dict(got[0], seconds=statistics.median(seconds), all_seconds=seconds,
                   peak_rss_mib=max(r["peak_rss_mib"] for r in got),
                   **{k: statistics.median(r[k] for r in got) for k in ("user_s", "sys_s")})
        row.update(variant=variant if threads == 1 else f"{variant} ({threads} thr)",
                   scheme=scheme if variant != "default" else "(torch defaults)")
        rows.append(row)
    return rows


if __name__ == "__main__":
    main()

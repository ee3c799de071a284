"""Cost of ``initlab.diagnose`` against one plain forward+backward pass of the same model, same run.

    python benchmarks/diagnose_overhead.py            # 12-layer d=768 TransformerEncoder, batch 16 x 128
    python benchmarks/diagnose_overhead.py --small    # 4 layers, d=256, batch 8 x 64 (a slow shared CPU)

Target: diagnose costs at most 4x the plain pass. The plain pass is what diagnose must do anyway (forward,
then backward with a unit random cotangent); the rest is hooks, per-layer reductions, weight statistics
(norms, symmetry groups, Gram eigendecompositions for the effective ranks, batched across layers),
discovery and the exact state snapshot. On a shared, oversubscribed CPU use ``--threads 1``: OpenMP threads
that spin-wait for a busy core make single timings swing by 5x.
``--breakdown`` times each of those alone as well, to show where the overhead goes.

    python benchmarks/diagnose_overhead.py --zoo bert-mlm,gpt2,vit,resnet18,mobilenet_v3_small
    python benchmarks/diagnose_overhead.py --zoo tv/squeezenet1_0,timm/test_vit   # any torchvision/timm model

times diagnose against one plain forward+backward on models of benchmarks/zoo.py instead (issue 13 target:
<= 3x at the median); run it with PYTHONPATH pointing at two checkouts to compare before and after. With
``--breakdown`` it also prints, per model, the CPU time of each part alone (thread time, which a busy shared
core inflates less than wall time): the hooked pass against the plain one, the weight statistics, discovery
and the state snapshot.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

import initlab
from initlab.diagnostics.recorder import Recorder, weight_fields
from initlab.diagnostics.sites import layer_sites
from initlab.model.state import ModelState


def build(layers: int, d: int, heads: int) -> nn.Module:
    layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def timed(fn: Callable[[], object], warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def weight_statistics(sites: list[object], grad_of: Callable[[torch.Tensor], torch.Tensor | None]) -> None:
    """What diagnose computes after the backward pass: batched over layers where the checkout batches them."""
    try:
        from initlab.diagnostics._weights import weight_fields_many
    except ImportError:  # an older checkout: layer by layer, as its diagnose does
        for site in sites:
            weight_fields(site, grad_of)  # type: ignore[arg-type]
        return
    weight_fields_many(sites, grad_of)  # type: ignore[arg-type]


def cpu_ms(fn: Callable[[], object], n: int = 5) -> float:
    fn()
    best = math.inf
    for _ in range(n):
        start = time.thread_time()
        fn()
        best = min(best, time.thread_time() - start)
    return best * 1e3


def zoo_breakdown(model: nn.Module, x: object) -> str:
    from initlab.diagnostics import core

    sites, _ = layer_sites(model, x)

    def passes(hooked: bool) -> None:
        with torch.enable_grad(), Recorder(sites) as rec:
            rec.armed = hooked
            core._forward_backward(model, x, None, None, 0)  # disarmed hooks: the plain pass diagnose makes

    grads = {id(p): p for p in model.parameters()}  # the weight as its own gradient: the same work
    parts = {
        "plain": cpu_ms(lambda: passes(False)),
        "hooked": cpu_ms(lambda: passes(True)),
        "weights": cpu_ms(lambda: weight_statistics(sites, lambda p: grads.get(id(p)))),
        "discovery": cpu_ms(lambda: layer_sites(model, x)),
        "state": cpu_ms(lambda: ModelState.capture(model).restore(model)),
    }
    return "      cpu ms: " + "  ".join(f"{k} {v:.1f}" for k, v in parts.items()) + f"  ({len(sites)} layers)"


def by_name(zm: Any, name: str) -> Any:
    """A torchvision classification model (``tv/resnet18``) or a timm model (``timm/test_vit``)."""
    source, _, model = name.partition("/")
    if source == "tv":
        return zm.Entry(name, "torchvision", "classification", lambda: zm._tv_build(model),
                        zm.image(zm._tv_size(model)))
    if source == "timm":
        return zm.timm_entry(model)
    raise SystemExit(f"unknown model {name!r}: a benchmarks/zoo.py HF or subset name, tv/NAME or timm/NAME")


def zoo_ratios(names: list[str], repeat: int, breakdown: bool = False) -> None:
    import os
    import sys

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import _zoo_models as zm
    from zoo import fwd_bwd

    entries = {e.name: e for e in zm.subset_entries() + zm.hf_entries()}
    ratios = []
    for name in names:
        entry = entries.get(name) or by_name(zm, name)
        torch.manual_seed(0)
        model = entry.build()
        x = entry.make_input(model, torch.Generator().manual_seed(1))
        fwd_bwd(model, x)  # warm-up: allocator, kernels
        initlab.diagnose(model, x, seed=0)  # warm-up: imports, activation profiles
        pairs = [(timed(lambda m=model, b=x: fwd_bwd(m, b), 0),
                  timed(lambda m=model, b=x: initlab.diagnose(m, b, seed=0), 0)) for _ in range(repeat)]
        ratio = statistics.median(d / p for p, d in pairs)
        ratios.append(ratio)
        print(f"  {name:<22} plain {statistics.median(p for p, _ in pairs):7.3f} s   diagnose "
              f"{statistics.median(d for _, d in pairs):7.3f} s   ratio {ratio:5.2f}x", flush=True)
        if breakdown:
            print(zoo_breakdown(model, x), flush=True)
    print(f"median ratio {statistics.median(ratios):.2f}x over {len(ratios)} models (target <= 3x)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--small", action="store_true", help="4 layers, d=256, batch 8x64")
    p.add_argument("--repeat", type=int, default=3, help="interleaved (plain, diagnose) pairs")
    p.add_argument("--breakdown", action="store_true", help="time the overhead's parts alone")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--zoo", default="", help="comma-separated benchmarks/zoo.py models instead")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.zoo:
        zoo_ratios(args.zoo.split(","), args.repeat, args.breakdown)
        return
    layers, d, heads, batch, seq = (4, 256, 4, 8, 64) if args.small else (12, 768, 12, 16, 128)
    device = torch.device(args.device)
    model = build(layers, d, heads).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    x = torch.randn(batch, seq, d, generator=g, device=device)
    v = torch.randn(batch, seq, d, generator=g, device=device)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    def plain() -> None:
        model.zero_grad(set_to_none=True)
        (model(x) * v).sum().backward()
        sync()

    def diagnose() -> None:
        initlab.diagnose(model, x, seed=0)
        sync()

    sites, _ = layer_sites(model, x)
    params = dict(model.named_parameters())

    def weights_only() -> None:
        weight_statistics(sites, lambda p: p)  # the weight as its own "gradient": same cost as the real one
        sync()

    plain()  # warm-up: allocator, kernels
    diagnose()  # warm-up: activation profiles, imports
    pairs = []
    for _ in range(args.repeat):  # interleaved, so that a change in machine load hits both alike
        pairs.append((timed(plain, 0), timed(diagnose, 0)))
    t_plain = statistics.median(p for p, _ in pairs)
    t_diag = statistics.median(d for _, d in pairs)
    ratio = statistics.median(d / p for p, d in pairs)
    n = sum(p.numel() for p in params.values())
    print(f"TransformerEncoder: {layers} layers, d={d}, batch {batch}x{seq}, {n / 1e6:.1f}M parameters, "
          f"{torch.get_num_threads()} threads, {device}")
    print(f"  plain forward+backward   {t_plain:8.3f} s   (baseline, median of {args.repeat})")
    print(f"  initlab.diagnose         {t_diag:8.3f} s   ratio {ratio:.2f}x (median of the paired ratios; "
          "target <= 4x)")
    print("  pairs (plain, diagnose): " + ", ".join(f"({p:.2f}, {d:.2f})" for p, d in pairs))
    if args.breakdown:
        print_parts(model, x, weights_only)


def print_parts(model: nn.Module, x: torch.Tensor, weights_only: Callable[[], None]) -> None:
    print("  timed alone:")
    print(f"    discovery              {timed(lambda: layer_sites(model, x), 1):8.3f} s")
    print(f"    weight statistics      {timed(weights_only, 1):8.3f} s   (norms, symmetry groups, "
          "effective rank)")
    t_state = timed(lambda: ModelState.capture(model).restore(model), 1)
    print(f"    state snapshot+restore {t_state:8.3f} s")


if __name__ == "__main__":
    main()

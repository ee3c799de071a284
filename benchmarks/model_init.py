"""Cost of init_model beside the model's own default init, measured in the same run (1 thread, medians).

Models: a 24-layer width-1024 ReLU MLP, a 12-layer d=768 TransformerEncoder, a 20-block ResNet without
normalization. Baseline: every module's own ``reset_parameters()``. Printed: seconds and the ratio to the
baseline for "auto" and "he_uniform" on a first call (the model's graph discovered, the plan made) and on
repeated calls (the cached graph and plan reused: only the draws), named schemes, a profile, each with the
default counter-based generator and with torch's (``generator="torch"``), and anyinit when it is installed.

Big models (``--big gpt2,linear1b``): GPT-2 small (124M, tied) and a 1.07B-parameter Linear stack built under
``initlab.on_meta()`` and materialized by ``initlab.materialize`` beside default construction, each variant
in a fresh process (``benchmarks/big_init.py`` has more variants: hf:gpt2, 2 threads, safetensors).

    python benchmarks/model_init.py [--repeats 3] [--models mlp,transformer,resnet] [--no-anyinit]
    python benchmarks/model_init.py --models none --big gpt2,linear1b

Against another version of initlab (``--baseline path/to/other/src``, e.g. a checkout of an older commit):
each model is built in two worker processes, one importing this tree's ``initlab`` and one the baseline's,
and every variant is timed in both, alternately (new, old, old, new, ...), ``--rounds`` times; printed: the
median seconds of each and the min and median over rounds of the time ratio new/old. On a shared machine the
interleaving is what makes the ratio meaningful: both sides see the same load.

    python benchmarks/model_init.py --baseline /tmp/old/src --rounds 5 [--models resnet]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from initlab.model import init_model


def mlp() -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(23):
        layers += [nn.Linear(1024, 1024), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(1024, 10))


def transformer() -> nn.Module:
    layer = nn.TransformerEncoderLayer(768, 12, 3072, batch_first=True)
    return nn.TransformerEncoder(layer, 12, enable_nested_tensor=False)


class Block(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.relu(self.c1(x)))


def resnet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), *[Block(64) for _ in range(20)],
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


MODELS: dict[str, tuple[Callable[[], nn.Module], tuple[int, ...]]] = {
    "mlp 24x1024": (mlp, (8, 1024)),
    "transformer 12x768": (transformer, (2, 16, 768)),
    "resnet 20 blocks, no norm": (resnet, (2, 3, 32, 32)),
}


def reset(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.MultiheadAttention):
            m._reset_parameters()
        elif hasattr(m, "reset_parameters"):
            m.reset_parameters()


def cold(model: nn.Module, scheme: str) -> None:
    from initlab.model import graph

    graph._CACHE.clear()  # the graph and the plans made from it
    init_model(model, scheme, seed=0)


def median_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def variants(model: nn.Module) -> dict[str, Callable[[], object]]:
    return {
        "auto, first call (graph discovered)": lambda m=model: cold(m, "auto"),
        "he_uniform, first call (graph discovered)": lambda m=model: cold(m, "he_uniform"),
        "auto": lambda m=model: init_model(m, "auto", seed=0),
        "he_uniform": lambda m=model: init_model(m, "he_uniform", seed=0),
        "he_normal": lambda m=model: init_model(m, "he_normal", seed=0),
        "torch:default": lambda m=model: init_model(m, "torch:default", seed=0),
        "auto, torch's generator": lambda m=model: init_model(m, "auto", seed=0, generator="torch"),
        "he_uniform, torch's generator": lambda m=model: init_model(m, "he_uniform", seed=0,
                                                                    generator="torch"),
        "he_normal, torch's generator": lambda m=model: init_model(m, "he_normal", seed=0,
                                                                  generator="torch"),
        "torch:default, torch's generator": lambda m=model: init_model(m, "torch:default", seed=0,
                                                                      generator="torch"),
        "auto, dry run (plan only)": lambda m=model: init_model(m, "auto", dry_run=True),
    }


def selected(models: str) -> list[str]:
    return [n for n in MODELS if not models or any(k in n for k in models.split(","))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="")
    ap.add_argument("--no-anyinit", action="store_true")
    ap.add_argument("--big", default="", help="gpt2,linear1b: meta + materialize vs default construction")
    ap.add_argument("--baseline", default="", help="another initlab's src folder: time new/old, interleaved")
    ap.add_argument("--rounds", type=int, default=5, help="with --baseline: interleaved rounds per variant")
    ap.add_argument("--worker", default="", help=argparse.SUPPRESS)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.worker:
        worker(args.worker, args.repeats)
        return
    if args.baseline:
        compare(args.baseline, selected(args.models), args.repeats, args.rounds)
        return
    anyinit = None
    if not args.no_anyinit:
        with contextlib.suppress(ImportError):
            import anyinit  # type: ignore[no-redef]
    print("| model | params | reset_parameters (s) | variant | s | ratio |")
    print("|---|---|---|---|---|---|")
    for name in selected(args.models):
        build, shape = MODELS[name]
        model = build()
        n = sum(p.numel() for p in model.parameters())
        base = median_time(lambda m=model: reset(m), args.repeats)
        cases = variants(model)
        if anyinit is not None:
            x = torch.randn(*shape)
            cases["anyinit"] = lambda m=model, x=x: anyinit.initialize(m, input_spec=x, seed=0)
        for vname, fn in cases.items():
            reps = 1 if vname == "anyinit" else args.repeats
            t = median_time(fn, reps)
            row = f"| {name} | {n / 1e6:.1f}M | {base:.3f} | {vname} | {t:.3f} | {t / base:.2f}x |"
            print(row, flush=True)
    if args.big:
        big(args.big.split(","))


def worker(name: str, repeats: int) -> None:
    """One side of ``--baseline``: build ``name``, then for each variant named on stdin print the median
    seconds of ``repeats`` calls (after a warm-up)."""
    torch.manual_seed(0)
    model = MODELS[name][0]()
    cases = variants(model)
    for line in sys.stdin:
        print(median_time(cases[line.strip()], repeats), flush=True)


def compare(baseline: str, names: list[str], repeats: int, rounds: int) -> None:
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "src")
    print(f"| model | variant | new s | old s | new/old min | new/old median |  ({rounds} rounds)")
    print("|---|---|---|---|---|---|")
    for name in names:
        sides = {side: subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", name, "--repeats", str(repeats)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=os.path.abspath(src)))
            for side, src in (("new", here), ("old", baseline))}
        for vname in variants(nn.Identity()):
            times: dict[str, list[float]] = {"new": [], "old": []}
            for r in range(rounds):
                for side in ("new", "old") if r % 2 == 0 else ("old", "new"):
                    proc = sides[side]
                    assert proc.stdin is not None and proc.stdout is not None
                    proc.stdin.write(vname + "\n")
                    proc.stdin.flush()
                    times[side].append(float(proc.stdout.readline()))
            ratios = [a / b for a, b in zip(times["new"], times["old"], strict=True)]
            new, old = statistics.median(times["new"]), statistics.median(times["old"])
            print(f"| {name} | {vname} | {new:.4f} | {old:.4f} | {min(ratios):.2f} | "
                  f"{statistics.median(ratios):.2f} |", flush=True)
        for proc in sides.values():
            assert proc.stdin is not None
            proc.stdin.close()
            proc.wait()


def big(names: list[str]) -> None:
    import big_init  # the same folder

    print("\n| model | params | variant | s | speed-up | peak RSS MiB | RSS before MiB | tied |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        default = big_init.measure(name, "default", "torch:default")
        ours = big_init.measure(name, "initlab", "torch:default")
        for label, r in (("default construction", default), ("on_meta + materialize", ours)):
            print(f"| {name} | {r['params'] / 1e6:.1f}M | {label} | {r['seconds']:.3f} | "
                  f"{default['seconds'] / r['seconds']:.2f}x | {r['peak_rss_mib']:.0f} | "
                  f"{r['base_rss_mib']:.0f} | {r['tied']} |", flush=True)


if __name__ == "__main__":
    main()

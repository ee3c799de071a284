"""Fixup vs BatchNorm vs plain He init on deep residual nets without normalization, trained on mnist1d.

Nets (``--nets``, two weight layers per block, ReLU after the add): ``mlp`` a residual MLP of 100 blocks,
``cnn`` a 1-D CNN ResNet of 30 blocks with a linear head on the flattened features, ``cnn_pool`` the same CNN
with a global-average-pool head. Plain SGD at lr 0.1 (no momentum, constant rate), batch 128, 3 seeds.
Variants: ``fixup`` (initlab.fixup: the Fixup init plus its scalar multipliers and biases, no normalization),
``batchnorm`` (the same net with BatchNorm after every layer, He init), ``he`` (He init, no normalization).
Prints a table and writes JSON.

    PYTHONPATH=src python benchmarks/fixup_mnist1d.py [--nets mlp,cnn] [--quick] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

import initlab
from _mnist1d import ResCNN, ResMLP, load, train
from initlab.methods import fixup

NETS = {
    "mlp": ("ResMLP-100 (width 32)", lambda norm: ResMLP(100, 32, norm), 600),
    "cnn": ("ResCNN-30 (16 channels, flatten head)", lambda norm: ResCNN(30, 16, norm), 400),
    "cnn_pool": ("ResCNN-30 (16 channels, global-average head)",
                 lambda norm: ResCNN(30, 16, norm, pool=True), 400),
}


def build(arch: str, variant: str, example: torch.Tensor, seed: int) -> nn.Module:
    _, make, _ = NETS[arch]
    with torch.random.fork_rng():
        torch.manual_seed(seed)  # benchmark script: module construction draws from the global RNG
        model = make(variant == "batchnorm")
    if variant == "fixup":
        fixup(model, example, seed=seed)
    else:
        initlab.init_model(model, "he_normal", example_input=example, seed=seed)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a few steps, one seed (smoke test)")
    parser.add_argument("--nets", default="mlp,cnn", help=f"comma-separated, from {', '.join(NETS)}")
    parser.add_argument("--out", default="benchmarks/results/fixup_mnist1d.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = load()
    example = data["x"][:16]
    seeds = range(1 if args.quick else args.seeds)
    results: list[dict[str, object]] = []
    console = Console()
    for arch in args.nets.split(","):
        label, _, steps = NETS[arch]
        steps = 20 if args.quick else steps
        for variant in ("fixup", "batchnorm", "he"):
            for seed in seeds:
                start = time.perf_counter()
                model = build(arch, variant, example, seed)
                curve = train(model, data, steps=steps, seed=seed, eval_every=max(steps // 10, 1))
                row = {"arch": label, "variant": variant, "seed": seed, "steps": steps, "final": curve.final,
                       "curve": curve.accuracy, "diverged_at": curve.diverged_at, "loss": curve.final_loss,
                       "seconds": time.perf_counter() - start}
                results.append(row)
                console.print(f"{label} {variant} seed {seed}: acc {curve.final:.3f} "
                              f"loss {curve.final_loss:.3g} diverged at {curve.diverged_at} "
                              f"({row['seconds']:.0f} s)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    console.print(summary(results))


def summary(results: list[dict[str, object]]) -> Table:
    table = Table(title="mnist1d test accuracy, SGD lr 0.1, mean ± std over seeds")
    for col in ("net", "variant", "test accuracy", "per seed", "diverged"):
        table.add_column(col)
    for arch in dict.fromkeys(r["arch"] for r in results):
        for variant in ("fixup", "batchnorm", "he"):
            rows = [r for r in results if r["arch"] == arch and r["variant"] == variant]
            accs = [float(r["final"]) for r in rows]  # type: ignore[arg-type]
            ok = [a for a in accs if a == a]
            mean = f"{statistics.mean(ok):.3f} ± {statistics.pstdev(ok):.3f}" if ok else "—"
            diverged = [f"step {r['diverged_at']}" for r in rows if r["diverged_at"] is not None]
            table.add_row(str(arch), variant, mean, " ".join(f"{a:.3f}" for a in accs), ", ".join(diverged))
    return table


if __name__ == "__main__":
    main()

"""Transfer vs from scratch on mnist1d: does a transferred trunk converge faster on a new, relabelled task?

Source: a small 1-D CNN trained on split A of mnist1d (10 classes). Target: split B (disjoint samples, only
``--target-samples`` of them), relabelled into 5 classes (digit // 2), with a new 5-class head. ``transfer``
loads the trunk (name and shape match; the 10-class head is shape-mismatched and re-initialized), ``scratch``
initializes the same net the same way without the transfer. Both train with the same SGD settings and batch
order; reported: test accuracy over steps, and steps to reach 80% of the final accuracy (each run's own, and
the from-scratch run's, a common bar). 3 seeds. Prints a table and writes JSON.

    PYTHONPATH=src python benchmarks/transfer_mnist1d.py [--quick]
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
from _mnist1d import Curve, load, train


class Net(nn.Module):
    def __init__(self, classes: int) -> None:
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv1d(1, 32, 5, stride=2, padding=2), nn.ReLU(), nn.Conv1d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(), nn.Conv1d(32, 32, 3, padding=1), nn.ReLU(), nn.Flatten())
        self.head = nn.Linear(32 * 10, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x.unsqueeze(1)))


def steps_to(curve: Curve, bar: float) -> int | None:
    return next((s for s, a in zip(curve.steps, curve.accuracy, strict=True) if a >= bar), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--source-steps", type=int, default=1500)
    parser.add_argument("--target-steps", type=int, default=400)
    parser.add_argument("--target-samples", type=int, default=500)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/transfer_mnist1d.json")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.source_steps, args.target_steps = 1, 50, 40
    torch.set_num_threads(1)
    data = load()
    half = len(data["x"]) // 2
    source = {"x": data["x"][:half], "y": data["y"][:half], "x_test": data["x_test"],
              "y_test": data["y_test"]}
    chosen = slice(half, half + args.target_samples)
    target = {"x": data["x"][chosen], "y": data["y"][chosen] // 2,  # relabelled: 5 classes (digit // 2)
              "x_test": data["x_test"], "y_test": data["y_test"] // 2}
    console = Console()
    results = []
    for seed in range(args.seeds):
        start = time.perf_counter()
        src = Net(10)
        initlab.init_model(src, "he_normal", seed=seed)
        src_curve = train(src, source, steps=args.source_steps, lr=0.05, momentum=0.9, seed=seed,
                          eval_every=100)
        runs = {}
        for variant in ("scratch", "transfer"):
            model = Net(5)
            initlab.init_model(model, "he_normal", seed=1000 + seed)  # the same start for both, head included
            if variant == "transfer":
                report = initlab.transfer(model, src.state_dict(), reinit="he_normal", seed=2000 + seed)
                assert sorted(report.shape_mismatched) == ["head.bias", "head.weight"], report
            runs[variant] = train(model, target, steps=args.target_steps, lr=0.05, momentum=0.9,
                                  seed=3000 + seed, eval_every=10)
        common = 0.8 * runs["scratch"].final
        row = {"seed": seed, "source_accuracy": src_curve.final, "seconds": time.perf_counter() - start}
        for variant, curve in runs.items():
            row[variant] = {"final": curve.final, "steps_to_80pct_own": steps_to(curve, 0.8 * curve.final),
                            "steps_to_80pct_scratch_final": steps_to(curve, common),
                            "steps": curve.steps, "accuracy": curve.accuracy}
        results.append(row)
        console.print(f"seed {seed}: source {src_curve.final:.3f}; "
                      + "; ".join(f"{v} final {row[v]['final']:.3f}, steps to 80% own "  # type: ignore[index]
                                  f"{row[v]['steps_to_80pct_own']}, to 80% of scratch "  # type: ignore[index]
                                  f"{row[v]['steps_to_80pct_scratch_final']}" for v in runs))  # type: ignore[index]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    console.print(summary(results, args))


def summary(results: list[dict], args: argparse.Namespace) -> Table:
    table = Table(title=f"mnist1d transfer: 5-class relabelled task, {args.target_samples} target samples, "
                        f"{args.target_steps} SGD steps (mean over {len(results)} seeds)")
    for col in ("start", "final test acc", "steps to 80% of own final", "steps to 80% of scratch final",
                "acc at step 50"):
        table.add_column(col)

    def mean(values: list) -> str:
        ok = [v for v in values if v is not None]
        if not ok:
            return "—"
        return f"{statistics.mean(ok):.3g}" + ("" if len(ok) == len(values) else f" ({len(ok)} reached)")

    for variant in ("scratch", "transfer"):
        rows = [r[variant] for r in results]
        at50 = [r["accuracy"][r["steps"].index(50)] if 50 in r["steps"] else None for r in rows]
        table.add_row(variant, mean([r["final"] for r in rows]),
                      mean([r["steps_to_80pct_own"] for r in rows]),
                      mean([r["steps_to_80pct_scratch_final"] for r in rows]), mean(at50))
    return table


if __name__ == "__main__":
    main()

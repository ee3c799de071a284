"""Cost of hook discovery against the number of recorded ops, measured in one run (issue 13 item 7).

A model that fx cannot trace runs a loop of ``steps`` residual steps ``x = x + tanh(fc(x))`` (3 recorded ops
each); discovery records one forward pass with hooks and analyses the dataflow. Printed per size: seconds of
``discover`` (median of ``--repeats``), seconds of one plain forward of the same model (the baseline), their
ratio, the walker's node visits per recorded op, and the growth of discovery time against the growth of
``steps`` (1.0 = linear; the quadratic analysis this replaced grew ~2x faster per doubling: 800 steps
0.96 s, 1600 4.6 s, 3200 21.9 s).

    python benchmarks/discovery_cost.py [--steps 200,400,800,1600,3200] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from initlab.model import discover


class Loop(nn.Module):
    def __init__(self, steps: int):
        super().__init__()
        self.steps = steps
        self.fc = nn.Linear(16, 16)

    def forward(self, x):
        if x.sum() > 1e9:  # data-dependent: fx cannot trace, discovery runs hooks
            return x
        for _ in range(self.steps):
            x = x + torch.tanh(self.fc(x))
        return x


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", default="200,400,800,1600,3200")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    x = torch.randn(2, 16)
    rows = []
    for steps in [int(s) for s in args.steps.split(",")]:
        model = Loop(steps)
        with torch.no_grad():
            fwd = _median(lambda m=model: m(x), args.repeats)
        disc = _median(lambda m=model: discover(m, x), args.repeats)
        graph = discover(model, x)
        rows.append((steps, disc, fwd, graph.visits / max(len(graph.nodes), 1)))
    head = ("steps", "discover s", "forward s", "ratio", "visits/op", "growth/steps")
    print(" ".join(f"{h:>{w}}" for h, w in zip(head, (6, 11, 10, 7, 10, 13), strict=True)))
    for k, (steps, disc, fwd, per_op) in enumerate(rows):
        growth = "" if k == 0 else f"{(disc / rows[0][1]) / (steps / rows[0][0]):.2f}"
        print(f"{steps:>6} {disc:>11.3f} {fwd:>10.4f} {disc / fwd:>7.1f} {per_op:>10.2f} {growth:>13}")


if __name__ == "__main__":
    main()

"""LSUV cost on a 50-layer MLP: the one-sweep algorithm vs one plain forward pass and vs the O(L^2) reference.

Layer evaluations are counted by wrapping every Linear's ``forward`` (independently of what the algorithms
report); times are medians of repeated runs, all measured in this process, one thread.

    PYTHONPATH=src python benchmarks/lsuv_cost.py [--depth 50 --width 256 --batch 1024 --repeats 7]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from initlab.methods import lsuv, lsuv_reference


def mlp(depth: int, width: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth - 1):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def count_evaluations(model: nn.Module) -> list[int]:
    counter = [0]
    for m in model.modules():
        if isinstance(m, nn.Linear):
            inner = m.forward

            def counted(*args: Any, _inner: Callable[..., Any] = inner, **kwargs: Any) -> Any:
                counter[0] += 1
                return _inner(*args, **kwargs)

            m.forward = counted  # type: ignore[method-assign]
    return counter


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--depth", type=int, default=50)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    with torch.random.fork_rng():
        torch.manual_seed(0)  # benchmark script: builds the model
        base = mlp(args.depth, args.width)
    x = torch.randn(args.batch, args.width, generator=torch.Generator().manual_seed(1))

    def fresh() -> nn.Module:
        return copy.deepcopy(base)

    model = fresh()
    with torch.no_grad():
        t_forward = median_time(lambda: model(x), args.repeats)
    models = [fresh() for _ in range(args.repeats + 1)]
    it = iter(models)
    t_sweep = median_time(lambda: lsuv(next(it), x, pre_init=None), args.repeats)
    models = [fresh() for _ in range(args.repeats + 1)]
    it = iter(models)
    t_full = median_time(lambda: lsuv(next(it), x, seed=0), args.repeats)
    t_ortho = median_time(lambda: _orthogonal_only(fresh(), x), args.repeats)

    sweep_model, ref_model = fresh(), fresh()
    sweep_count, ref_count = count_evaluations(sweep_model), count_evaluations(ref_model)
    sweep = lsuv(sweep_model, x, seed=0)
    start = time.perf_counter()
    ref = lsuv_reference(ref_model, x, seed=0)
    t_ref = time.perf_counter() - start
    drift = max(float((a - b).detach().abs().max() / b.detach().abs().max())
                for a, b in zip(sweep_model.parameters(), ref_model.parameters(), strict=True))

    title = f"LSUV on a {args.depth}-layer MLP, width {args.width}, batch {args.batch} (1 thread)"
    table = Table(title=title)
    for col in ("run", "time (ms)", "x forward", "layer evaluations"):
        table.add_column(col, justify="right" if col != "run" else "left")
    table.add_row("plain forward pass", f"{t_forward * 1e3:.1f}", "1.00", str(args.depth))
    table.add_row("LSUV sweep (calibration, pre_init=None)", f"{t_sweep * 1e3:.1f}",
                  f"{t_sweep / t_forward:.2f}", "")
    table.add_row("LSUV sweep incl. orthogonal pre-init", f"{t_full * 1e3:.1f}", f"{t_full / t_forward:.2f}",
                  f"{sweep_count[0]} (report {sweep.evaluations})")
    table.add_row("  of which orthogonal pre-init", f"{t_ortho * 1e3:.1f}", f"{t_ortho / t_forward:.2f}", "")
    table.add_row("O(L^2) reference (incl. pre-init, 1 run)", f"{t_ref * 1e3:.1f}",
                  f"{t_ref / t_forward:.2f}", f"{ref_count[0]} (report {ref.evaluations})")
    console = Console()
    console.print(table)
    console.print(f"evaluations: reference / sweep = {ref_count[0] / sweep_count[0]:.1f}x; "
                  f"forward passes {ref.forward_passes} vs {sweep.forward_passes}; "
                  f"max relative weight difference sweep vs reference {drift:.2e}; "
                  f"sweep converged: {sweep.converged}, reference converged: {ref.converged}")


def _orthogonal_only(model: nn.Module, x: torch.Tensor) -> None:
    from initlab.methods.lsuv import _plan, _pre_init

    _pre_init(_plan(model, x, 0.1, 10, 1.0, None), "orthogonal", 0, None)


if __name__ == "__main__":
    main()

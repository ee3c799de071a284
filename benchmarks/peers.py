"""initlab's auto and LSUV against PyTorch's default init, anyinit (analytic and empirical) and the `lsuv`
package, on a trainability suite on mnist1d: final test accuracy over seeds and the time each init takes.

    PYTHONPATH=src python benchmarks/peers.py [--seeds 3] [--epochs 10] [--out docs/results/peers]

Peers come from the `bench` extra (`pip install -e ".[bench]"`); a missing peer is reported, not faked.
The `lsuv` package and PyTorch's default init draw from torch's global RNG, so every model is built and
initialized inside ``torch.random.fork_rng()`` seeded with the run's seed: the global state is left as it was.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from initlab.lab.experiments._common import dataset
from initlab.lab.stats import summarize
from initlab.lab.train import ResidualMLP, mlp, train


class CNN1d(nn.Module):
    """mnist1d as a 1-channel sequence: ``depth`` conv layers (kernel 5, ReLU), global average pool, head."""

    def __init__(self, channels: int = 32, depth: int = 6, n_out: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Conv1d(1 if i == 0 else channels, channels, 5, padding=2), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.unsqueeze(1)).mean(dim=2))


MODELS: dict[str, Callable[[], nn.Module]] = {
    "MLP 30×128 ReLU": lambda: mlp(40, 128, 30, 10, "relu"),
    "MLP 30×128 tanh": lambda: mlp(40, 128, 30, 10, "tanh"),
    "ResMLP 16 blocks, no norm": lambda: ResidualMLP(40, 128, 16, 10),
    "CNN 6×32 conv1d": lambda: CNN1d(),
}


def _initlab(name: str) -> Any:
    import initlab

    return getattr(initlab, name)


def _anyinit(mode: str) -> Callable[[nn.Module, torch.Tensor, int], Any]:
    def init(model: nn.Module, batch: torch.Tensor, seed: int) -> Any:
        import anyinit

        return anyinit.initialize(model, mode, batch, seed=seed)

    return init


def _lsuv_package(model: nn.Module, batch: torch.Tensor, seed: int) -> Any:
    import lsuv

    return lsuv.lsuv_with_singlebatch(model, batch, verbose=False)


INITS: dict[str, Callable[[nn.Module, torch.Tensor, int], Any]] = {
    "torch default": lambda model, batch, seed: None,
    "initlab auto": lambda model, batch, seed: _initlab("init_model")(model, "auto", seed=seed),
    "initlab LSUV": lambda model, batch, seed: _initlab("lsuv")(model, batch, seed=seed),
    "anyinit analytic": _anyinit("analytic"),
    "anyinit empirical": _anyinit("empirical"),
    "lsuv (PyPI)": _lsuv_package,
}


def one(model_name: str, init_name: str, seed: int, epochs: int, lr: float) -> dict[str, Any]:
    data = dataset()
    g = torch.Generator().manual_seed(seed)
    batch = data.x_train[torch.randperm(len(data.x_train), generator=g)[:256]]
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = MODELS[model_name]()
        start = time.perf_counter()
        try:
            INITS[init_name](model, batch, seed)
        except Exception as exc:  # a peer that cannot handle a model is a result, not a crash
            return {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"}
        init_s = time.perf_counter() - start
    history = train(model, data, epochs=epochs, lr=lr, seed=seed)
    return {"init_s": init_s, "acc": history.final_acc, "diverged": history.diverged}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--out", type=Path, default=None, help="write results.json and table.md here")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--render", type=Path, default=None, help="only print the table of a results.json")
    args = parser.parse_args()
    if args.render:
        saved = json.loads(args.render.read_text())
        render(saved["results"], saved["args"], None)
        return
    torch.set_num_threads(1)
    results: Results = {}
    total, done = len(args.models) * len(INITS) * args.seeds, 0
    for model_name in args.models:
        for init_name in INITS:
            runs = [one(model_name, init_name, s, args.epochs, args.lr) for s in range(args.seeds)]
            results.setdefault(model_name, {})[init_name] = runs
            done += args.seeds
            print(f"[{done}/{total}] {model_name} / {init_name}: "
                  + ", ".join(r.get("error") or f"{r['acc']:.3f}" for r in runs), flush=True)
    render(results, {k: str(v) for k, v in vars(args).items()}, args.out)


Results = dict[str, dict[str, list[dict[str, Any]]]]


def render(results: Results, args: dict[str, str], out: Path | None) -> None:
    title = (f"Trainability on mnist1d: final test accuracy (mean ± 95% CI, {args['seeds']} seeds, SGD lr "
             f"{args['lr']}, {args['epochs']} epochs) / median init time")
    table = Table(title=title)
    table.add_column("model")
    inits = list(next(iter(results.values())))
    for init_name in inits:
        table.add_column(init_name)
    md = ["| model | " + " | ".join(inits) + " |", "|---" * (len(inits) + 1) + "|"]
    for model_name, by_init in results.items():
        cells = [_cell(runs, timed=init_name != "torch default") for init_name, runs in by_init.items()]
        table.add_row(model_name, *cells)
        md.append(f"| {model_name} | " + " | ".join(c.replace("\n", "<br>") for c in cells) + " |")
    Console(width=200).print(table)
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"args": args, "results": results}, indent=1))
        (out / "table.md").write_text(f"{title}\n\n" + "\n".join(md) + "\n")


def _cell(runs: list[dict[str, Any]], *, timed: bool = True) -> str:
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        return f"failed: {errors[0]}"
    acc = summarize([r["acc"] for r in runs]).format(1, percent=True)
    t = statistics.median(r["init_s"] for r in runs)
    div = sum(r["diverged"] for r in runs)
    when = _seconds(t) if timed else "at construction"
    return f"{acc}\n{when}" + (f", {div} diverged" if div else "")


def _seconds(t: float) -> str:
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.1f} s"


if __name__ == "__main__":
    main()

"""Trainability of a deep plain MLP on mnist1d under different initializations.

A 50-layer width-128 MLP (no normalization, no residuals), batch 128, ``--steps`` steps, ``--seeds`` seeds;
mean test accuracy per (activation, optimizer) configuration and initialization: PyTorch's default, initlab
"auto", a plain He / 5/3 gain table (initlab "he_normal": classic gain of the following activation), and
anyinit when it is installed. mnist1d is generated offline.

    python benchmarks/trainability.py          # the full run: 2000 steps, 3 seeds (about an hour on 1 core)
    python benchmarks/trainability.py --steps 200 --seeds 1 --configs relu-adam
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from initlab.model import init_model

CONFIGS = {
    "relu-adam": ("relu", "adam", 1e-3),
    "tanh-sgd": ("tanh", "sgd", 1e-2),
    "tanh-adam": ("tanh", "adam", 1e-3),
    "tanh-adam-lr1e-4": ("tanh", "adam", 1e-4),
}
ACTS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh}


def data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from mnist1d.data import get_dataset_args, make_dataset

    d = make_dataset(get_dataset_args())
    x, xt = (torch.tensor(np.asarray(d[k]), dtype=torch.float32) for k in ("x", "x_test"))
    mean, std = x.mean(0), x.std(0)
    y, yt = (torch.tensor(np.asarray(d[k]), dtype=torch.long) for k in ("y", "y_test"))
    return (x - mean) / std, y, (xt - mean) / std, yt


def mlp(act: str, depth: int = 50, width: int = 128) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(40, width), ACTS[act]()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), ACTS[act]()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def initializers(x: torch.Tensor) -> dict[str, Callable[[nn.Module, int], None]]:
    out: dict[str, Callable[[nn.Module, int], None]] = {
        "pytorch default": lambda m, s: None,
        "initlab auto": lambda m, s: init_model(m, "auto", seed=s) and None,
        "He / 5/3 table": lambda m, s: init_model(m, "he_normal", seed=s) and None,
        # auto with a lower stable point for saturating activations (closer to the linear regime)
        "auto q*=0.25": lambda m, s: init_model(m, "auto", seed=s, q_saturating=0.25) and None,
        "auto q*=0.05": lambda m, s: init_model(m, "auto", seed=s, q_saturating=0.05) and None,
    }
    try:
        import anyinit

        out["anyinit"] = lambda m, s: anyinit.initialize(m, input_spec=x[:128], seed=s) and None
    except ImportError:
        pass
    return out


def batch_indices(seed: int, n: int, steps: int, batch: int = 128) -> torch.Tensor:
    """The ``steps`` batches of ``seed``: ``batch`` indices in [0, n) each, drawn with replacement from a
    private generator (benchmarks/trainability_frameworks.py trains Keras and Flax on the same ones)."""
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randint(0, n, (batch,), generator=g) for _ in range(steps)])


def train(model: nn.Module, opt_name: str, lr: float, steps: int, seed: int,
          x: torch.Tensor, y: torch.Tensor, xt: torch.Tensor, yt: torch.Tensor) -> float:
    opt = (torch.optim.Adam if opt_name == "adam" else torch.optim.SGD)(model.parameters(), lr=lr)
    model.train()
    for idx in batch_indices(seed, len(x), steps):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--configs", default="relu-adam,tanh-sgd,tanh-adam",
                    help=f"comma-separated subset of {list(CONFIGS)}")
    ap.add_argument("--inits", default="", help="comma-separated subset of the initializations")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default="", help="write the results here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y, xt, yt = data()
    inits = initializers(x)
    if args.inits:
        inits = {k: v for k, v in inits.items() if k in args.inits.split(",")}
    else:
        inits = {k: v for k, v in inits.items() if k != "auto q*=0.05"}
    results: dict[str, dict[str, list[float]]] = {}
    for cname in args.configs.split(","):
        act, opt_name, lr = CONFIGS[cname]
        for iname, init in inits.items():
            if iname.startswith("auto q*") and act == "relu":
                continue  # q* of saturating activations: no effect on ReLU
            accs = []
            for seed in range(args.seeds):
                torch.manual_seed(seed)  # the script's RNG: module construction, PyTorch's default init
                model = mlp(act)
                t0 = time.perf_counter()
                init(model, seed)
                t_init = time.perf_counter() - t0
                accs.append(train(model, opt_name, lr, args.steps, seed, x, y, xt, yt))
                print(f"{cname:10s} {iname:16s} seed {seed}: test acc {accs[-1]:.3f}  (init {t_init:.2f} s)",
                      flush=True)
            results.setdefault(cname, {})[iname] = accs
    print(f"\n| config ({args.steps} steps, {args.seeds} seeds) | " + " | ".join(inits) + " |")
    print("|---|" + "---|" * len(inits))
    for cname, row in results.items():
        act, opt_name, lr = CONFIGS[cname]
        cells = [f"{np.mean(row[k]):.3f}" if k in row else "-" for k in inits]
        print(f"| {act}, {opt_name} lr {lr:g} | " + " | ".join(cells) + " |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"steps": args.steps, "seeds": args.seeds, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()

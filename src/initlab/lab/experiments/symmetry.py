"""Why random and not all 0.5? Constant init gives every hidden unit the same input weights and the same
gradient, so the units stay copies of one another for the whole training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..plots import band, figure, save
from ..report import Result
from ..runner import Spec, map_runs
from ..stats import summarize
from ..train import init_weights_, mlp, train
from ._common import dataset, describe_acc, pct

NAME = "symmetry"
QUESTION = "Why initialize at random, and not all weights 0 or all 0.5?"
INITS = {"all-zero": "zeros", "all-0.5": "constant(0.5)", "random (Glorot normal)": "glorot_normal"}


def sizes(quick: bool) -> dict[str, Any]:
    return (
        {"width": 32, "depth": 2, "epochs": 8, "lr": 0.05}
        if quick
        else {"width": 64, "depth": 2, "epochs": 30, "lr": 0.05}
    )


def distinct_units(layer: nn.Linear, rtol: float = 1e-6) -> int:
    """Groups of units whose incoming weights and bias agree within ``rtol`` of the largest entry."""
    rows = torch.cat([layer.weight, layer.bias[:, None]], dim=1).detach().double()
    tol = rtol * max(rows.abs().max().item(), 1e-30)
    dist = torch.cdist(rows, rows, p=float("inf"))
    unassigned = torch.ones(len(rows), dtype=torch.bool)
    groups = 0
    while unassigned.any():
        first = int(unassigned.nonzero()[0])
        unassigned &= dist[first] > tol
        groups += 1
    return groups


def hidden_layers(model: nn.Sequential) -> list[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)][:-1]


def one_run(scheme: str, seed: int, width: int, depth: int, epochs: int, lr: float) -> dict[str, Any]:
    data = dataset()
    model = init_weights_(mlp(data.n_features, width, depth, data.n_classes, "tanh"), scheme, seed=seed)
    before = [distinct_units(layer) for layer in hidden_layers(model)]
    history = train(model, data, epochs=epochs, lr=lr, seed=seed)
    after = [distinct_units(layer) for layer in hidden_layers(model)]
    return {"before": before, "after": after, **history.to_dict()}


def run(spec: Spec) -> Result:
    cfg = sizes(spec.quick)
    jobs = [{"scheme": scheme, "seed": s, **cfg} for scheme in INITS.values() for s in spec.seeds]
    runs = map_runs(one_run, jobs, spec, NAME)
    by_init = {label: runs[i * len(spec.seeds) : (i + 1) * len(spec.seeds)] for i, label in enumerate(INITS)}
    width = cfg["width"]
    rows, summary = [], {}
    for label, rs in by_init.items():
        acc = summarize([r["test_acc"][-1] for r in rs])
        after = np.array([r["after"] for r in rs])  # seeds x layers
        summary[label] = {
            "acc": acc.to_dict(),
            "distinct_before": [r["before"] for r in rs],
            "distinct_after": after.tolist(),
        }
        rows.append([label, _range([r["before"] for r in rs]), _range(after.tolist()), pct(acc)])
    answer = _answer(by_init, summary, width, cfg["depth"])
    setup = (
        f"mnist1d (4000 train / 1000 test), MLP 40 → {cfg['depth']}×{width} tanh → 10, biases 0, "
        f"SGD momentum 0.9, lr {cfg['lr']}, batch 128, {cfg['epochs']} epochs. A unit's identity is its "
        "incoming weights and bias; units count as copies when they agree to 1e-6 of the largest weight."
    )
    return Result(
        NAME,
        QUESTION,
        setup,
        ["init", f"distinct units per hidden layer at init (of {width})", "after training", "test accuracy"],
        rows,
        answer,
        {"config": cfg, "inits": INITS, "summary": summary, "runs": by_init},
    )


def _range(counts: list[list[int]]) -> str:
    flat = [c for per_seed in counts for c in per_seed]
    return str(min(flat)) if min(flat) == max(flat) else f"{min(flat)}–{max(flat)}"


def _answer(by_init: dict[str, list[dict[str, Any]]], summary: dict[str, Any], width: int, depth: int) -> str:
    parts = []
    for label, rs in by_init.items():
        most = max(c for r in rs for c in r["after"])
        acc = summarize([r["test_acc"][-1] for r in rs])
        if most == 1:
            parts.append(
                f"with {label} init every one of the {width} units in each of the {depth} hidden layers "
                f"was still a copy of the others after training (1 distinct unit per layer), and the "
                f"net reached {describe_acc(acc)}"
            )
        else:
            least = min(c for r in rs for c in r["after"])
            kept = str(most) if least == most else f"{least}–{most}"
            parts.append(
                f"with {label} init the layers kept {kept} distinct units of {width} and "
                f"reached {describe_acc(acc)}"
            )
    constant_broke = any(max(c for r in by_init[k] for c in r["after"]) > 1 for k in list(by_init)[:2])
    verdict = (
        "Constant init never broke the symmetry: identical units receive identical gradients, so a "
        "wide layer behaves like a single unit."
        if not constant_broke
        else "Constant init did not keep every unit identical in this run: see the table."
    )
    return "Measured: " + "; ".join(parts) + ". " + verdict


def plot(result: Result, out: Path) -> list[str]:
    fig, (ax,) = figure()
    for label, rs in result.data["runs"].items():
        curves = [r["test_acc"] for r in rs]
        band(ax, list(range(len(curves[0]))), curves, label)
    ax.axhline(0.1, color="gray", linestyle=":", label="chance")
    ax.set(xlabel="epoch", ylabel="test accuracy", title="Symmetry: constant vs random init")
    ax.legend()
    return [save(fig, out, "symmetry_curves.png")]

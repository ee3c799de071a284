"""What do Fixup, LSUV, initlab's auto and pretrained weights buy? Every method initializes the same residual
MLP without normalization, which then trains on the same task; we compare the learning curves.

The data-driven and residual methods come from :mod:`initlab.methods` and :func:`initlab.init_model`; a method
whose API is missing from this installation is reported as unavailable, never replaced by something else.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..plots import band, figure, save
from ..report import Result
from ..runner import Spec, map_runs
from ..stats import summarize
from ..train import ResidualBlock, ResidualMLP, init_weights_, train
from ._common import CHANCE, dataset, describe_acc, pct

NAME = "methods"
QUESTION = (
    "Zero, small random, Xavier, Kaiming, Fixup, LSUV, initlab auto or a pretrained trunk: which "
    "initialization trains a deep residual net without normalization fastest?"
)
SOURCE_CLASSES = [0, 1, 2, 3, 4]  # the pretraining task: half the classes, from an independent mnist1d draw
SOURCE_SEED = 7
METHODS: dict[str, str] = {
    "zero": "all weights and biases 0",
    "N(0, 0.01)": "every weight N(0, 0.01²)",
    "Xavier": "glorot_uniform on every Linear",
    "Kaiming": "he_normal on every Linear (gain √2 before ReLU)",
    "Fixup": "initlab.fixup(model)",
    "LSUV": "initlab.lsuv(model, batch): orthogonal, then unit output variance layer by layer",
    "initlab auto": "initlab.init_model(model, 'auto')",
    "transfer": "initlab.transfer(model, trunk pretrained on classes 0–4 of another mnist1d draw); new head",
}
API = {"Fixup": "fixup", "LSUV": "lsuv", "initlab auto": "init_model", "transfer": "transfer"}


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"width": 64, "blocks": 16, "epochs": 5, "lr": 0.02, "pretrain_epochs": 4}
    return {"width": 128, "blocks": 16, "epochs": 15, "lr": 0.02, "pretrain_epochs": 10}


def availability() -> dict[str, str | None]:
    """Method -> None when usable, else why not."""
    out: dict[str, str | None] = dict.fromkeys(METHODS)
    for method, api in API.items():
        try:
            _initlab(api)
        except (AttributeError, ImportError) as exc:
            out[method] = f"initlab.{api} is not available in this installation ({exc})"
    return out


def _initlab(name: str) -> Callable[..., Any]:
    return getattr(importlib.import_module("initlab"), name)  # looked up late: absent APIs are reported


def pretrained_trunk(seed: int, width: int, blocks: int, epochs: int, lr: float) -> dict[str, torch.Tensor]:
    """A net trained on the source task (5 classes of an independent mnist1d draw), as a state dict."""
    source = dataset(seed=SOURCE_SEED).subset_classes(SOURCE_CLASSES)
    net = init_weights_(
        ResidualMLP(source.n_features, width, blocks, len(SOURCE_CLASSES)),
        "he_normal",
        seed=seed + 1000,
    )
    _residual_scale_(net, blocks)
    train(net, source, epochs=epochs, lr=lr, seed=seed + 1000)
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


@torch.no_grad()
def _residual_scale_(net: ResidualMLP, blocks: int) -> None:
    """Scale each branch's last layer by 1/sqrt(blocks) so the pretraining itself is stable."""
    for block in net.blocks:
        assert isinstance(block, ResidualBlock)
        block.fc2.weight.mul_(1 / math.sqrt(blocks))


def initialize(
    method: str, model: ResidualMLP, seed: int, batch: torch.Tensor, trunk: dict[str, torch.Tensor] | None
) -> str:
    """Apply ``method`` to ``model``; returns a one-line note of what it did."""
    plain = {
        "zero": "zeros",
        "N(0, 0.01)": "normal(0, 0.01)",
        "Xavier": "glorot_uniform",
        "Kaiming": "he_normal",
    }
    if method in plain:
        init_weights_(model, plain[method], seed=seed)
        if method == "zero":
            return "all zero"
        return plain[method]
    if method == "Fixup":
        report = _initlab("fixup")(model, seed=seed)
    elif method == "LSUV":
        report = _initlab("lsuv")(model, batch, seed=seed)
    elif method == "initlab auto":
        report = _initlab("init_model")(model, "auto", seed=seed)
    elif method == "transfer":
        assert trunk is not None
        report = _initlab("transfer")(model, trunk, seed=seed)
    else:
        raise ValueError(f"unknown method {method!r}")
    return str(report).splitlines()[0] if str(report) else method


def one_run(
    method: str, seed: int, width: int, blocks: int, epochs: int, lr: float, pretrain_epochs: int
) -> dict[str, Any]:
    data = dataset()
    model = ResidualMLP(data.n_features, width, blocks, data.n_classes)
    g = torch.Generator().manual_seed(seed)
    batch = data.x_train[torch.randperm(len(data.x_train), generator=g)[:256]]
    trunk = pretrained_trunk(seed, width, blocks, pretrain_epochs, lr) if method == "transfer" else None
    note = initialize(method, model, seed, batch, trunk)
    with torch.no_grad():
        logit_std = float(model(data.x_test[:512]).std())
    history = train(model, data, epochs=epochs, lr=lr, seed=seed)
    return {"note": note, "logit_std_init": logit_std, **history.to_dict()}


def run(spec: Spec) -> Result:
    cfg = sizes(spec.quick)
    available = availability()
    usable = [m for m in METHODS if available[m] is None]
    jobs = [{"method": m, "seed": s, **cfg} for m in usable for s in spec.seeds]
    outs = iter(map_runs(one_run, jobs, spec, NAME))
    runs = {m: [next(outs) for _ in spec.seeds] for m in usable}
    rows: list[list[str]] = []
    summary: dict[str, Any] = {}
    for m in METHODS:
        if m not in runs:
            rows.append([m, "unavailable", "–", "–", "–"])
            summary[m] = {"unavailable": available[m]}
            continue
        rs = runs[m]
        final = summarize([r["test_acc"][-1] for r in rs])
        first = summarize([r["test_acc"][1] for r in rs])
        summary[m] = {
            "final": final.to_dict(),
            "after_1_epoch": first.to_dict(),
            "diverged": sum(r["diverged"] for r in rs),
        }
        rows.append(
            [
                m,
                f"{float(torch.tensor([r['logit_std_init'] for r in rs]).median()):.2g}",
                pct(first),
                pct(final),
                f"{sum(r['diverged'] for r in rs)}/{len(rs)}",
            ]
        )
    setup = (
        f"mnist1d, residual MLP without normalization: Linear 40→{cfg['width']}, {cfg['blocks']} blocks "
        f"x + W₂ReLU(W₁x) of width {cfg['width']}, ReLU, Linear → 10. SGD momentum 0.9, "
        f"lr {cfg['lr']}, batch 128, {cfg['epochs']} epochs, {len(spec.seeds)} seeds (same batch order for "
        f"every method). Transfer: the same net pretrained {cfg['pretrain_epochs']} epochs on classes 0–4 "
        "of an independent mnist1d draw (seed 7), all tensors but the head loaded. "
        "LSUV uses 256 training inputs. "
        "Methods: " + "; ".join(f"{m}: {what}" for m, what in METHODS.items()) + "."
    )
    headers = ["method", "logit std at init", "test acc after 1 epoch", "final test acc", "diverged"]
    return Result(
        NAME,
        QUESTION,
        setup,
        headers,
        rows,
        _answer(summary, runs, available, cfg),
        {
            "config": cfg,
            "methods": METHODS,
            "summary": summary,
            "runs": runs,
            "unavailable": {m: r for m, r in available.items() if r},
        },
    )


def _answer(
    summary: dict[str, Any],
    runs: dict[str, list[dict[str, Any]]],
    available: dict[str, str | None],
    cfg: dict[str, Any],
) -> str:
    finals = {m: summarize([r["test_acc"][-1] for r in rs]) for m, rs in runs.items()}
    blew_up = [m for m, rs in runs.items() if all(r["diverged"] for r in rs)]
    ranked = sorted((m for m in finals if m not in blew_up), key=lambda m: -finals[m].mean)
    stuck = [m for m in ranked if finals[m].mean < CHANCE + 0.03]
    text = (
        f"Final test accuracy after {cfg['epochs']} epochs, best first: "
        + "; ".join(f"{m} {describe_acc(finals[m])}" for m in ranked)
        + ". "
    )
    if ranked:
        best = ranked[0]
        ties = [m for m in ranked[1:] if finals[m].high >= finals[best].low]
        text += f"Best: {best}" + (f" (intervals overlap with {', '.join(ties)})" if ties else "") + ". "
    if blew_up:
        stds = [r["logit_std_init"] for m in blew_up for r in runs[m]]
        text += (
            f"Diverged in every seed: {', '.join(blew_up)} (logit std at init "
            f"{min(stds):.2g}–{max(stds):.2g}: "
            f"without normalization the variance of the residual sum grows with each of the {cfg['blocks']} "
            "blocks). "
        )
    partly = [m for m in ranked if summary[m]["diverged"]]
    if partly:
        text += f"Diverged in some seeds: {', '.join(partly)}. "
    if stuck:
        text += f"Stuck at chance: {', '.join(stuck)}. "
    early = {m: summarize([r["test_acc"][1] for r in rs]) for m, rs in runs.items()}
    fastest = max(early, key=lambda m: early[m].mean) if early else None
    if fastest:
        text += f"After one epoch {fastest} led with {pct(early[fastest])}. "
    missing = [m for m, reason in available.items() if reason]
    if missing:
        text += f"Not run (API missing in this installation): {', '.join(missing)}."
    return text.strip()


def plot(result: Result, out: Path) -> list[str]:
    fig, (ax,) = figure(width=7, height=4.2)
    for m, rs in result.data["runs"].items():
        curves = [r["test_acc"] for r in rs]
        band(ax, list(range(len(curves[0]))), curves, m)
    ax.axhline(CHANCE, color="gray", linestyle=":", label="chance")
    ax.set(
        xlabel="epoch", ylabel="test accuracy", title="Residual MLP without normalization: learning curves"
    )
    ax.legend(fontsize="small", ncol=2)
    return [save(fig, out, "methods_curves.png")]

"""Glorot or He? Trainability of plain deep MLPs against depth, the analogue of He et al. 2015, Fig. 3."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..plots import band, figure, save
from ..report import Result
from ..runner import Spec, map_runs
from ..stats import summarize, welch
from ..train import init_weights_, mlp, train
from ._common import CHANCE, dataset, describe_acc, pct

NAME = "glorot-vs-he"
QUESTION = "Glorot (Xavier) or He (Kaiming)? Which one lets a deep plain ReLU or tanh network train?"
INITS = {"Glorot": "glorot_normal", "He": "he_normal"}
ACTS = ("relu", "tanh")


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"depths": [10, 30], "width": 64, "epochs": 6, "lr": 0.01}
    return {"depths": [10, 20, 30, 40, 50], "width": 128, "epochs": 15, "lr": 0.01}


def one_run(
    act: str, scheme: str, depth: int, seed: int, width: int, epochs: int, lr: float
) -> dict[str, Any]:
    data = dataset()
    model = init_weights_(mlp(data.n_features, width, depth, data.n_classes, act), scheme, seed=seed)
    with torch.no_grad():
        logits = model(data.x_test[:512])
    history = train(model, data, epochs=epochs, lr=lr, seed=seed)
    return {"logit_std_init": float(logits.std()), **history.to_dict()}


def run(spec: Spec) -> Result:
    cfg = sizes(spec.quick)
    train_cfg = {k: cfg[k] for k in ("width", "epochs", "lr")}
    keys = [(a, label, depth) for a in ACTS for depth in cfg["depths"] for label in INITS]
    jobs = [
        {"act": a, "scheme": INITS[label], "depth": depth, "seed": s, **train_cfg}
        for a, label, depth in keys
        for s in spec.seeds
    ]
    outs = iter(map_runs(one_run, jobs, spec, NAME))
    runs: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {a: {k: {} for k in INITS} for a in ACTS}
    for a, label, depth in keys:
        runs[a][label][str(depth)] = [next(outs) for _ in spec.seeds]
    rows, summary = [], {}
    for a in ACTS:
        for depth in cfg["depths"]:
            accs = {label: [r["test_acc"][-1] for r in runs[a][label][str(depth)]] for label in INITS}
            logit = {
                label: np.median([r["logit_std_init"] for r in runs[a][label][str(depth)]]) for label in INITS
            }
            diff = welch(accs["He"], accs["Glorot"]) if len(spec.seeds) > 1 else None
            summary[f"{a}/{depth}"] = {
                **{label: summarize(v).to_dict() for label, v in accs.items()},
                "he_minus_glorot_p": diff.p_value if diff else None,
            }
            rows.append(
                [
                    a,
                    str(depth),
                    pct(accs["Glorot"]),
                    pct(accs["He"]),
                    f"{logit['Glorot']:.1e} / {logit['He']:.1e}",
                    f"{diff.p_value:.2g}" if diff else "–",
                ]
            )
    setup = (
        f"mnist1d, plain MLPs of width {cfg['width']} with depth {', '.join(map(str, cfg['depths']))} "
        f"hidden layers, biases 0, SGD momentum 0.9, lr {cfg['lr']}, batch 128, {cfg['epochs']} epochs, "
        "same seeds (init and batch order) for both inits. Glorot: N(0, 2/(fan_in+fan_out)); He: "
        "N(0, gain²/fan_in) with gain √2 for ReLU and 5/3 for tanh."
    )
    headers = [
        "activation",
        "depth",
        "Glorot test acc",
        "He test acc",
        "logit std at init (G / He)",
        "p (Welch)",
    ]
    return Result(
        NAME,
        QUESTION,
        setup,
        headers,
        rows,
        _answer(runs, cfg),
        {"config": cfg, "inits": INITS, "summary": summary, "runs": runs},
    )


def _acc(rs: list[dict[str, Any]]) -> Any:
    return summarize([r["test_acc"][-1] for r in rs])


def _answer(runs: dict[str, Any], cfg: dict[str, Any]) -> str:
    deepest = str(30 if 30 in cfg["depths"] else cfg["depths"][-1])
    parts = []
    for a in ACTS:
        g, h = _acc(runs[a]["Glorot"][deepest]), _acc(runs[a]["He"][deepest])
        parts.append(f"{a} at depth {deepest}: He {describe_acc(h)}, Glorot {describe_acc(g)}")
    relu_g, relu_h = _acc(runs["relu"]["Glorot"][deepest]), _acc(runs["relu"]["He"][deepest])
    stalls = [d for d in map(str, cfg["depths"]) if _acc(runs["relu"]["Glorot"][d]).mean < CHANCE + 0.03]
    ratio = float(
        np.median([r["logit_std_init"] for r in runs["relu"]["Glorot"][deepest]])
        / np.median([r["logit_std_init"] for r in runs["relu"]["He"][deepest]])
    )
    if relu_g.mean < CHANCE + 0.03 and relu_h.mean > CHANCE + 0.05:
        verdict = (
            f"As in He et al. (2015, Fig. 3), the ReLU net stalls at chance with Glorot from depth "
            f"{stalls[0]} on and trains with He: Glorot's variance 1/fan_in loses half the signal "
            f"at every ReLU, so after {deepest} layers the logits at init were {ratio:.0e} of their He "
            f"size (theory: 2^-{int(deepest) // 2} = {math.sqrt(2) ** -int(deepest):.0e}) and the "
            "gradients of the early layers are as small."
        )
    elif relu_h.mean > relu_g.mean:
        verdict = f"He trained the ReLU net better than Glorot ({pct(relu_h)} vs {pct(relu_g)})."
    else:
        verdict = f"He did not beat Glorot on ReLU in this run ({pct(relu_h)} vs {pct(relu_g)})."
    tanh_g = [r["test_acc"][-1] for r in runs["tanh"]["Glorot"][deepest]]
    tanh_h = [r["test_acc"][-1] for r in runs["tanh"]["He"][deepest]]
    p = welch(tanh_g, tanh_h).p_value if len(tanh_g) > 1 else math.nan
    better = "Glorot" if np.mean(tanh_g) >= np.mean(tanh_h) else "He"
    if p < 0.05:
        tanh = f"For tanh at depth {deepest}, {better} was better (Welch p = {p:.2g})"
    else:
        tanh = f"For tanh at depth {deepest} the difference was not significant" + (
            f" (Welch p = {p:.2g})" if math.isfinite(p) else " (one seed)"
        )
    return (
        f"Measured final test accuracy — {'; '.join(parts)}. {verdict} {tanh}: tanh does not halve the "
        "signal, so the 1/fan scale needs no ReLU correction."
    )


def plot(result: Result, out: Path) -> list[str]:
    cfg = result.data["config"]
    runs = result.data["runs"]
    fig, axes = figure(2, width=4.6)
    for ax, a in zip(axes, ACTS, strict=True):
        for label in INITS:
            s = [summarize([r["test_acc"][-1] for r in runs[a][label][str(d)]]) for d in cfg["depths"]]
            ax.errorbar(
                cfg["depths"],
                [x.mean for x in s],
                yerr=[0 if math.isnan(x.half_width) else x.half_width for x in s],
                marker="o",
                capsize=3,
                label=label,
            )
        ax.axhline(CHANCE, color="gray", linestyle=":", label="chance")
        ax.set(title=f"{a}: final test accuracy", xlabel="depth (hidden layers)", ylabel="test accuracy")
    axes[0].legend()
    names = [save(fig, out, "glorot_vs_he_depth.png")]
    deepest = str(30 if 30 in cfg["depths"] else cfg["depths"][-1])
    fig, axes = figure(2, width=4.6)
    for ax, a in zip(axes, ACTS, strict=True):
        for label in INITS:
            curves = [r["test_acc"] for r in runs[a][label][deepest]]
            band(ax, list(range(len(curves[0]))), curves, label)
        ax.set(title=f"{a}, depth {deepest}: learning curves", xlabel="epoch", ylabel="test accuracy")
    axes[0].legend()
    names.append(save(fig, out, "glorot_vs_he_curves.png"))
    return names

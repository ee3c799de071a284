"""Does BatchNorm make the init moot? Sweep the init scale over two decades with and without BatchNorm."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..plots import figure, save
from ..report import Result
from ..runner import Spec, map_runs
from ..stats import summarize
from ..train import init_weights_, mlp, train
from ._common import CHANCE, dataset, pct

NAME = "batchnorm"
QUESTION = "Does BatchNorm make the initialization scale irrelevant?"
BATCHNORM = (False, True)


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"scales": [0.1, 1.0, 10.0], "width": 64, "depth": 6, "epochs": 4, "lr": 0.02}
    return {"scales": [0.1, 0.3, 1.0, 3.0, 10.0], "width": 128, "depth": 10, "epochs": 15, "lr": 0.02}


def one_run(
    scale: float, batchnorm: bool, seed: int, width: int, depth: int, epochs: int, lr: float
) -> dict[str, Any]:
    data = dataset()
    model = mlp(data.n_features, width, depth, data.n_classes, "relu", batchnorm=batchnorm)
    init_weights_(model, "he_normal", seed=seed, scale=scale)
    return train(model, data, epochs=epochs, lr=lr, seed=seed).to_dict()


def _label(bn: bool) -> str:
    return "with BatchNorm" if bn else "without BatchNorm"


def run(spec: Spec) -> Result:
    cfg = sizes(spec.quick)
    train_cfg = {k: cfg[k] for k in ("width", "depth", "epochs", "lr")}
    cells = [(bn, scale) for bn in BATCHNORM for scale in cfg["scales"]]
    jobs = [
        {"scale": scale, "batchnorm": bn, "seed": s, **train_cfg} for bn, scale in cells for s in spec.seeds
    ]
    outs = iter(map_runs(one_run, jobs, spec, NAME))
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {_label(bn): {} for bn in BATCHNORM}
    for bn, scale in cells:
        runs[_label(bn)][str(scale)] = [next(outs) for _ in spec.seeds]
    summary = {
        label: {scale: summarize([r["test_acc"][-1] for r in rs]).to_dict() for scale, rs in by.items()}
        for label, by in runs.items()
    }
    rows = [
        [
            f"× {scale:g}",
            *(pct([r["test_acc"][-1] for r in runs[_label(bn)][str(scale)]]) for bn in BATCHNORM),
            *(str(sum(r["diverged"] for r in runs[_label(bn)][str(scale)])) for bn in BATCHNORM),
        ]
        for scale in cfg["scales"]
    ]
    setup = (
        f"mnist1d, ReLU MLP 40 → {cfg['depth']}×{cfg['width']} → 10, He normal weights multiplied by the "
        f"scale (so the std is scale·√(2/fan_in)), biases 0; with BatchNorm after every hidden Linear. SGD "
        f"momentum 0.9, lr {cfg['lr']}, batch 128, {cfg['epochs']} epochs, {len(spec.seeds)} seeds."
    )
    headers = [
        "init scale",
        *(f"test acc {_label(bn)}" for bn in BATCHNORM),
        *(f"diverged runs {_label(bn)}" for bn in BATCHNORM),
    ]
    return Result(
        NAME,
        QUESTION,
        setup,
        headers,
        rows,
        _answer(summary, runs, cfg),
        {"config": cfg, "summary": summary, "runs": runs},
    )


def _answer(summary: dict[str, Any], runs: dict[str, Any], cfg: dict[str, Any]) -> str:
    parts = []
    for bn in BATCHNORM:
        by = summary[_label(bn)]
        trained = [s for s, v in by.items() if v["mean"] > CHANCE + 0.1]
        diverged = sum(r["diverged"] for rs in runs[_label(bn)].values() for r in rs)
        total = sum(len(rs) for rs in runs[_label(bn)].values())
        accs = [by[s]["mean"] for s in trained]
        span = (
            f" ({100 * min(accs):.1f}–{100 * max(accs):.1f}%)"
            if len(accs) > 1
            else f" ({100 * accs[0]:.1f}%)"
            if accs
            else ""
        )
        parts.append(
            f"{_label(bn)} the net trained (more than 10 points above chance) at {len(trained)} of "
            f"{len(by)} scales{span}: {', '.join(f'×{float(s):g}' for s in trained) or 'none'}, and "
            f"{diverged} of {total} runs diverged"
        )
    bn = summary[_label(True)]
    spread = max(v["mean"] for v in bn.values()) - min(v["mean"] for v in bn.values())
    top = max(bn, key=lambda s: bn[s]["mean"])
    largest = max(bn, key=float)
    text = (
        f"Over init scales ×{min(cfg['scales']):g}–×{max(cfg['scales']):g} at depth {cfg['depth']}: "
        + "; ".join(parts)
        + f". With BatchNorm the accuracy still spread over {100 * spread:.1f} points "
        f"(best at ×{float(top):g})"
    )
    if bn[largest]["mean"] < bn[top]["mean"] - 0.05:
        text += (
            ", falling at large scales: the normalized output does not depend on the weight scale, so a "
            "scale s divides the gradients by s and the effective learning rate by s²"
        )
    return text + "."


def plot(result: Result, out: Path) -> list[str]:
    fig, (ax,) = figure()
    for label, by in result.data["summary"].items():
        scales = [float(s) for s in by]
        ax.errorbar(
            scales,
            [v["mean"] for v in by.values()],
            yerr=[0 if math.isnan(float(v["ci95"])) else float(v["ci95"]) for v in by.values()],
            marker="o",
            capsize=3,
            label=label,
        )
    ax.set_xscale("log")
    ax.axhline(0.1, color="gray", linestyle=":", label="chance")
    ax.set(
        xlabel="init scale (× He std)", ylabel="final test accuracy", title="Sensitivity to the init scale"
    )
    ax.legend()
    return [save(fig, out, "batchnorm_scale.png")]

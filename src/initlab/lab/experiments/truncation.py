"""Why a truncated normal? Compare it with the plain normal at equal variance: the outliers it removes, what
they do at init (saturated sigmoid units, dead ReLU units), and whether training notices."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..plots import figure, save
from ..report import Result
from ..runner import Spec, map_runs
from ..stats import paired, summarize
from ..train import init_weights_, mlp, train
from ._common import dataset, pct

NAME = "truncation"
QUESTION = (
    "Why a truncated normal? Does cutting the tails at 2σ change anything compared with a plain normal?"
)
# the same variance: the truncated scheme rescales its parent so that the *truncated* std is the target
INITS = {"normal": "he_normal", "truncated normal": "he_truncated_normal"}
SIGMOID_INITS = {"normal": "glorot_normal", "truncated normal": "glorot_truncated_normal"}
CUT = 2 / 0.87962566103423978  # the cut in units of the target std


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"width": 64, "depth": 4, "epochs": 5, "lr": 0.02}
    return {"width": 256, "depth": 6, "epochs": 20, "lr": 0.02}


def sigmoid_derivative_floor() -> float:
    """|x| beyond which sigmoid'(x) < 5% of its peak 1/4."""
    # s(1-s) = 0.0125  ->  s = (1 + sqrt(1 - 0.05)) / 2
    s = (1 + math.sqrt(1 - 0.05)) / 2
    return math.log(s / (1 - s))


@torch.no_grad()
def at_init(label: str, seed: int, width: int, depth: int) -> dict[str, float]:
    data = dataset()
    x = data.x_test
    relu = init_weights_(mlp(data.n_features, width, depth, data.n_classes, "relu"), INITS[label], seed=seed)
    hidden = [m for m in relu if isinstance(m, nn.Linear)][:-1]
    weights = torch.cat([m.weight.flatten() / m.weight.std() for m in hidden])
    dead, h = [], x
    for m in relu:
        h = m(h)
        if isinstance(m, nn.ReLU):
            dead.append(float((h.max(dim=0).values <= 0).double().mean()))
    sig = init_weights_(
        mlp(data.n_features, width, depth, data.n_classes, "sigmoid"), SIGMOID_INITS[label], seed=seed
    )
    floor, saturated, h = sigmoid_derivative_floor(), [], x
    for m in sig:
        if isinstance(m, nn.Sigmoid):
            saturated.append(float((h.abs() > floor).double().mean()))
        h = m(h)
    return {
        "beyond_2sd": float((weights.abs() > 2).double().mean()),
        "beyond_cut": float((weights.abs() > CUT).double().mean()),
        "max_abs_sd": float(weights.abs().max()),
        "dead_relu": sum(dead) / len(dead),
        "saturated_sigmoid": sum(saturated) / len(saturated),
    }


def one_run(label: str, seed: int, width: int, depth: int, epochs: int, lr: float) -> dict[str, Any]:
    data = dataset()
    model = init_weights_(mlp(data.n_features, width, depth, data.n_classes, "relu"), INITS[label], seed=seed)
    return {
        **at_init(label, seed, width, depth),
        **train(model, data, epochs=epochs, lr=lr, seed=seed).to_dict(),
    }


METRICS = {
    "beyond_2sd": "weights beyond 2σ",
    "beyond_cut": f"weights beyond the cut ({CUT:.2f}σ)",
    "max_abs_sd": "largest weight magnitude / σ",
    "saturated_sigmoid": "saturated sigmoid units at init",
    "dead_relu": "dead ReLU units at init",
}


def run(spec: Spec) -> Result:
    cfg = sizes(spec.quick)
    jobs = [{"label": label, "seed": s, **cfg} for label in INITS for s in spec.seeds]
    outs = iter(map_runs(one_run, jobs, spec, NAME))
    runs = {label: [next(outs) for _ in spec.seeds] for label in INITS}
    rows: list[list[str]] = []
    summary: dict[str, Any] = {}
    for key, title in METRICS.items():
        cells = []
        for label in INITS:
            s = summarize([r[key] for r in runs[label]])
            summary.setdefault(label, {})[key] = s.to_dict()
            cells.append(s.format(2) if key == "max_abs_sd" else s.format(2, percent=True))
        rows.append([title, *cells])
    accs = {label: [r["test_acc"][-1] for r in runs[label]] for label in INITS}
    comparison = paired(accs["truncated normal"], accs["normal"]) if len(spec.seeds) > 1 else None
    rows.append(["test accuracy after training", pct(accs["normal"]), pct(accs["truncated normal"])])
    summary["accuracy_difference"] = comparison.to_dict() if comparison else None
    setup = (
        f"He normal vs He truncated normal (cut at ±2 parent σ, rescaled so both have variance "
        f"2/fan_in) in a ReLU MLP 40 → {cfg['depth']}×{cfg['width']} → 10; Glorot normal vs Glorot "
        f"truncated normal in the same MLP with sigmoid for saturation (|pre-activation| > "
        f"{sigmoid_derivative_floor():.2f}, where sigmoid' < 5% of its peak). Dead unit: never positive on "
        f"the 1000 test inputs. Training: mnist1d, SGD momentum 0.9, lr {cfg['lr']}, {cfg['epochs']} epochs, "
        "paired seeds."
    )
    return Result(
        NAME,
        QUESTION,
        setup,
        ["measure", *INITS],
        rows,
        _answer(summary, accs, comparison),
        {"config": cfg, "summary": summary, "runs": runs},
    )


def _answer(summary: dict[str, Any], accs: dict[str, list[float]], comparison: Any) -> str:
    n, t = summary["normal"], summary["truncated normal"]
    text = (
        f"At equal variance the truncated normal removes the tails: {100 * n['beyond_cut']['mean']:.2f}% of "
        f"the normal's weights lie beyond {CUT:.2f}σ (largest {n['max_abs_sd']['mean']:.1f}σ) against "
        f"{100 * t['beyond_cut']['mean']:.2f}% (largest {t['max_abs_sd']['mean']:.2f}σ). At init this "
        f"changed little: saturated sigmoid units {100 * n['saturated_sigmoid']['mean']:.2f}% vs "
        f"{100 * t['saturated_sigmoid']['mean']:.2f}%, dead ReLU units "
        f"{100 * n['dead_relu']['mean']:.2f}% vs "
        f"{100 * t['dead_relu']['mean']:.2f}%. "
    )
    if comparison is None:
        return (
            text + f"Test accuracy: normal {pct(accs['normal'])}, truncated {pct(accs['truncated normal'])}."
        )
    d = comparison.difference
    verdict = (
        "a measurable difference"
        if comparison.significant
        else "no measurable difference at this number of seeds"
    )
    return text + (
        f"After training, truncated minus normal test accuracy was {d.format(1, percent=True)} "
        f"(95% CI, paired t-test p = {comparison.p_value:.2g}): {verdict}."
    )


def plot(result: Result, out: Path) -> list[str]:
    fig, axes = figure(2, width=4.6)
    labels = list(INITS)
    keys = ["beyond_2sd", "saturated_sigmoid", "dead_relu"]
    summary = result.data["summary"]
    for i, label in enumerate(labels):
        axes[0].bar(
            [k + 0.4 * i for k in range(len(keys))],
            [100 * summary[label][k]["mean"] for k in keys],
            width=0.4,
            label=label,
        )
    axes[0].set_xticks([k + 0.2 for k in range(len(keys))], ["|w|>2σ", "saturated\nsigmoid", "dead ReLU"])
    axes[0].set(ylabel="% at init", title="At init")
    axes[0].legend()
    runs = result.data["runs"]
    for i, label in enumerate(labels):
        accs = [r["test_acc"][-1] for r in runs[label]]
        axes[1].scatter([i] * len(accs), accs, alpha=0.6)
        s = summarize(accs)
        axes[1].errorbar(
            [i + 0.15],
            [s.mean],
            yerr=[0 if math.isnan(s.half_width) else s.half_width],
            fmt="o",
            color="k",
            capsize=4,
        )
    axes[1].set_xticks(range(len(labels)), labels)
    axes[1].set(ylabel="test accuracy", title="After training (mean ± 95% CI)")
    return [save(fig, out, "truncation.png")]

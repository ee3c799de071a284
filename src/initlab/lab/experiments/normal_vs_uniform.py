"""Normal or uniform? Glorot and He in both shapes, with and without BatchNorm, compared seed by seed."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..plots import figure, save
from ..report import Result
from ..runner import Spec, map_runs
from ..stats import paired, summarize
from ..train import init_weights_, mlp, train
from ._common import dataset, pct

NAME = "normal-vs-uniform"
QUESTION = "Normal or uniform: does the shape of the weight distribution matter at equal variance?"
FAMILIES = {"Glorot": ("glorot_normal", "glorot_uniform"), "He": ("he_normal", "he_uniform")}
BATCHNORM = (False, True)


def sizes(quick: bool) -> dict[str, Any]:
    if quick:
        return {"width": 64, "depth": 4, "epochs": 4, "lr": 0.02}
    return {"width": 128, "depth": 8, "epochs": 15, "lr": 0.02}


def one_run(
    scheme: str, batchnorm: bool, seed: int, width: int, depth: int, epochs: int, lr: float
) -> dict[str, Any]:
    data = dataset()
    model = init_weights_(
        mlp(data.n_features, width, depth, data.n_classes, "relu", batchnorm=batchnorm), scheme, seed=seed
    )
    return train(model, data, epochs=epochs, lr=lr, seed=seed).to_dict()


def _key(family: str, bn: bool) -> str:
    return f"{family}{' + BatchNorm' if bn else ''}"


def run(spec: Spec) -> Result:
    cfg = sizes(spec.quick)
    cells = [(fam, bn, dist) for fam in FAMILIES for bn in BATCHNORM for dist in (0, 1)]
    jobs = [
        {"scheme": FAMILIES[fam][dist], "batchnorm": bn, "seed": s, **cfg}
        for fam, bn, dist in cells
        for s in spec.seeds
    ]
    outs = iter(map_runs(one_run, jobs, spec, NAME))
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for fam, bn, dist in cells:
        runs.setdefault(_key(fam, bn), {})[("normal", "uniform")[dist]] = [next(outs) for _ in spec.seeds]
    rows, summary = [], {}
    for key, pair in runs.items():
        normal = [r["test_acc"][-1] for r in pair["normal"]]
        uniform = [r["test_acc"][-1] for r in pair["uniform"]]
        entry: dict[str, Any] = {
            "normal": summarize(normal).to_dict(),
            "uniform": summarize(uniform).to_dict(),
        }
        if len(spec.seeds) > 1:
            c = paired(normal, uniform)
            entry["difference"] = c.to_dict()
            rows.append(
                [key, pct(normal), pct(uniform), c.difference.format(1, percent=True), f"{c.p_value:.2g}"]
            )
        else:
            rows.append([key, pct(normal), pct(uniform), f"{100 * (normal[0] - uniform[0]):.1f}%", "–"])
        summary[key] = entry
    setup = (
        f"mnist1d, ReLU MLP 40 → {cfg['depth']}×{cfg['width']} → 10 (with BatchNorm: Linear → BatchNorm → "
        f"ReLU), SGD momentum 0.9, lr {cfg['lr']}, batch 128, {cfg['epochs']} epochs, {len(spec.seeds)} "
        "seeds; seed i gives the normal and the uniform run the same batch order and generator, so the "
        "difference is taken seed by seed (paired t-test, two-sided)."
    )
    headers = ["init", "normal", "uniform", "normal − uniform (95% CI)", "p"]
    return Result(
        NAME,
        QUESTION,
        setup,
        headers,
        rows,
        _answer(summary, len(spec.seeds)),
        {"config": cfg, "schemes": FAMILIES, "summary": summary, "runs": runs},
    )


def _answer(summary: dict[str, Any], n: int) -> str:
    if n < 2:
        return "One seed only: no interval or test is possible; rerun with --seeds 5."
    parts, significant = [], []
    for key, entry in summary.items():
        d, p = entry["difference"]["difference"], entry["difference"]["p_value"]
        parts.append(f"{key} {100 * d['mean']:+.1f} ± {100 * d['ci95']:.1f} points (p = {p:.2g})")
        if p < 0.05:
            significant.append(key)
    if not significant:
        verdict = (
            "No difference was significant at the 5% level: at equal variance, the shape of the "
            "distribution did not matter measurably here."
        )
    else:
        verdict = (
            f"Significant at the 5% level for {', '.join(significant)} (with {len(summary)} comparisons, "
            "one false positive in twenty is expected by chance)."
        )
    return f"Normal minus uniform test accuracy over {n} paired seeds: " + "; ".join(parts) + ". " + verdict


def plot(result: Result, out: Path) -> list[str]:
    fig, (ax,) = figure(width=7)
    runs = result.data["runs"]
    for i, pair in enumerate(runs.values()):
        for j, dist in enumerate(("normal", "uniform")):
            s = summarize([r["test_acc"][-1] for r in pair[dist]])
            ax.errorbar(
                [i + 0.2 * j],
                [s.mean],
                yerr=[0 if math.isnan(s.half_width) else s.half_width],
                fmt="os"[j],
                capsize=4,
                color=f"C{j}",
                label=dist if i == 0 else None,
            )
    ax.set_xticks([i + 0.1 for i in range(len(runs))], list(runs))
    ax.set(ylabel="test accuracy (mean ± 95% CI)", title="Normal vs uniform at equal variance")
    ax.legend()
    return [save(fig, out, "normal_vs_uniform.png")]

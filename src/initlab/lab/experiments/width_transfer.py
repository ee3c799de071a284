"""Width transfer: does the best learning rate stay put as the model gets wider? The analogue of Tensor
Programs V, Fig. 1: training loss against the Adam learning rate for each width, under standard
parametrization (SP), initlab's μP (``init_model(model, "mup", base=...)`` + ``mup_param_groups``) and the
``mup`` package (when installed), on an MLP and a small Transformer (mnist1d as 8 tokens of 5 values)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..plots import save
from ..report import Result
from ..runner import Spec, map_runs
from ._width_models import one_run

NAME = "width-transfer"
QUESTION = ("Does the best learning rate stay put as the model gets wider (64 -> 1024) under μP, and move "
            "under standard parametrization?")
ARCHS = ("mlp", "transformer")


def params() -> list[str]:
    peer = importlib.util.find_spec("mup") is not None
    return ["SP", "initlab μP", *(["mup package"] if peer else [])]


def sizes(quick: bool) -> dict[str, Any]:
    """Few steps and small batches, so the full run (729 trainings) takes ~15 CPU-minutes; it took 53 min of
    wall time on the project's 2 shared cores under load ~14. The Transformer stops at width 512: its 1024
    would cost as much as everything else together."""
    if quick:
        return {"widths": {"mlp": [32, 64], "transformer": [32, 64]}, "log2_lrs": [-8, -6],
                "steps": {"mlp": 5, "transformer": 3}, "batch": {"mlp": 16, "transformer": 8}}
    return {"widths": {"mlp": [64, 128, 256, 512, 1024], "transformer": [64, 128, 256, 512]},
            "log2_lrs": list(range(-12, -3)), "steps": {"mlp": 60, "transformer": 40},
            "batch": {"mlp": 32, "transformer": 16}}


def run(spec: Spec) -> Result:
    cfg = sizes(spec.quick)
    names = params()
    keys = [(a, p, w, lr) for a in ARCHS for p in names for w in cfg["widths"][a] for lr in cfg["log2_lrs"]]
    jobs = [{"arch": a, "param": p, "width": w, "base_width": cfg["widths"][a][0], "lr": 2.0**lr,
             "seed": s, "steps": cfg["steps"][a], "batch": cfg["batch"][a]}
            for a, p, w, lr in keys for s in spec.seeds]
    outs = iter(map_runs(one_run, jobs, spec, NAME))
    loss: dict[str, dict[str, dict[str, dict[str, list[float]]]]] = {}
    for a, p, w, lr in keys:
        loss.setdefault(a, {}).setdefault(p, {}).setdefault(str(w), {})[str(lr)] = [
            next(outs) for _ in spec.seeds]
    summary = {a: {p: analyse(loss[a][p], cfg["widths"][a], cfg["log2_lrs"]) for p in names} for a in ARCHS}
    rows = [[a, p, " / ".join(_lr(x) for x in s["best_log2_lr"]), f"{s['shift']:+d}",
             " / ".join(f"{x:.3f}" for x in s["best_loss"]), "yes" if s["wider_not_worse"] else "no"]
            for a in ARCHS for p, s in summary[a].items()]
    setup = (f"mnist1d (4000 train), Adam, {len(spec.seeds)} seed(s) (init and batch order). MLP: 2 hidden "
             f"ReLU layers, widths {_ws(cfg, 'mlp')}, {cfg['steps']['mlp']} steps of batch "
             f"{cfg['batch']['mlp']}. Transformer: 8 tokens x 5 values, linear embedding + learned "
             "positions, "
             f"one pre-LN block (4 heads, MLP 2x), mean pool, widths {_ws(cfg, 'transformer')}, "
             f"{cfg['steps']['transformer']} steps of batch {cfg['batch']['transformer']}; attention scale "
             "1/sqrt(head_dim) under SP, 1/head_dim under μP. LR grid 2^k, k = "
             f"{cfg['log2_lrs'][0]}..{cfg['log2_lrs'][-1]} (x2 steps). Loss: mean training loss over the "
             "last "
             "quarter of the steps, mean over seeds. μP base width = the narrowest width; base scheme "
             "torch:default (SP is torch:default at every width).")
    headers = ["model", "parametrization", "best log2 lr per width", "shift (grid steps)",
               "loss at best lr per width", "wider never worse at base-width best lr"]
    return Result(NAME, QUESTION, setup, headers, rows, _answer(summary, loss),
                  {"config": cfg, "params": names, "loss": loss, "summary": summary})


def _ws(cfg: dict[str, Any], arch: str) -> str:
    return " -> ".join(map(str, cfg["widths"][arch]))


def _lr(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:g}"


def _mean(values: list[float]) -> float:
    a = np.asarray(values, dtype=float)
    return math.inf if np.isnan(a).any() else float(a.mean())  # a diverged seed makes the cell diverged


def analyse(loss: dict[str, dict[str, list[float]]], widths: list[int], lrs: list[int]) -> dict[str, Any]:
    """Best LR per width (argmin of the seed-mean loss), its shift from the narrowest to the widest width
    in grid steps, the loss there, and whether at the narrowest width's best LR wider is never worse."""
    table = np.array([[_mean(loss[str(w)][str(lr)]) for lr in lrs] for w in widths])
    best = [int(np.argmin(row)) if np.isfinite(row).any() else -1 for row in table]
    at_base = table[:, best[0]] if best[0] >= 0 else np.full(len(widths), math.inf)
    return {
        "best_log2_lr": [lrs[b] if b >= 0 else None for b in best],
        "shift": (best[-1] - best[0]) if min(best) >= 0 else 0,
        "max_shift": max(abs(b - best[0]) for b in best) if min(best) >= 0 else 0,
        "best_loss": [float(table[i, b]) if b >= 0 else math.inf for i, b in enumerate(best)],
        "loss_at_base_best": [float(x) for x in at_base],
        "wider_not_worse": bool(np.all(np.diff(at_base) <= 0)),
        "edge": any(b in (0, len(lrs) - 1) for b in best),
    }


def peer_gap(loss: dict[str, Any], arch: str, max_log2_lr: float = math.inf) -> float:
    """Largest |initlab μP - mup package| loss over every width, seed and LR up to 2^``max_log2_lr``."""
    ours, peer = loss[arch]["initlab μP"], loss[arch]["mup package"]
    return max((abs(a - b) for w in ours for lr in ours[w] if int(lr) <= max_log2_lr
                for a, b in zip(ours[w][lr], peer[w][lr], strict=True)), default=math.nan)


def _answer(summary: dict[str, dict[str, Any]], loss: dict[str, Any]) -> str:
    parts = []
    for a in ARCHS:
        cells = []
        for p, s in summary[a].items():
            edge = " (an optimum at the grid's edge)" if s["edge"] else ""
            cells.append(f"{p} moved {s['shift']:+d} grid step(s) (at most {s['max_shift']} from the "
                         f"narrowest width), wider {'never' if s['wider_not_worse'] else 'sometimes'} worse "
                         f"at the narrowest width's best LR{edge}")
        parts.append(f"{a.upper() if a == 'mlp' else 'Transformer'}: " + "; ".join(cells) + ".")
    mup = [summary[a]["initlab μP"]["max_shift"] for a in ARCHS]
    sp = summary["mlp"]["SP"]["max_shift"]
    verdict = (f"Under initlab μP the best learning rate moved by at most {max(mup)} grid step(s) across "
               f"widths; under SP the MLP's moved by up to {sp}.")
    if "mup package" in summary["mlp"]:
        top = max(int(k) for k in next(iter(loss["mlp"]["SP"].values())))
        calm = ", ".join(f"{peer_gap(loss, a, top - 2):.2g} ({a})" for a in ARCHS)
        wild = max(peer_gap(loss, a) for a in ARCHS)
        verdict += (" initlab μP and the mup package are the same parametrization (Adam is invariant, up to "
                    "its epsilon, to moving the readout multiplier into init and LR): their losses differ by "
                    f"at most {calm} up to 2^{top - 2}, and by up to {wild:.2g} at the two largest LRs, "
                    "where training is unstable and rounding differences grow.")
    return " ".join(parts) + " " + verdict


def plot(result: Result, out: Path) -> list[str]:
    """Loss against log2 LR, one curve per width (dark: narrow, light: wide), a dot at each minimum."""
    cfg, loss, names = result.data["config"], result.data["loss"], result.data["params"]
    fig = Figure(figsize=(4.2 * len(names), 3.4 * len(ARCHS)), layout="constrained")
    axes = fig.subplots(len(ARCHS), len(names), squeeze=False)
    lrs = cfg["log2_lrs"]
    for r, a in enumerate(ARCHS):
        widths = cfg["widths"][a]
        for c, p in enumerate(names):
            ax = axes[r][c]
            for k, w in enumerate(widths):
                ys = np.array([_mean(loss[a][p][str(w)][str(lr)]) for lr in lrs])
                ys[~np.isfinite(ys)] = np.nan
                color = _color(k, len(widths))
                ax.plot(lrs, ys, marker=".", color=color, label=str(w))
                if np.isfinite(ys).any():
                    i = int(np.nanargmin(ys))
                    ax.plot([lrs[i]], [ys[i]], "o", color=color, markersize=7)
            ax.set(title=f"{a}: {p}", xlabel="log2 learning rate", ylabel="training loss")
            finite = [v for w in widths for lr in lrs for v in [_mean(loss[a][p][str(w)][str(lr)])]
                      if math.isfinite(v)]
            if finite:
                ax.set_ylim(min(finite) - 0.05, min(max(finite), min(finite) + 1.5) + 0.05)
        axes[r][0].legend(title="width", fontsize=7)
    return [save(fig, out, "width_transfer.png")]


def _color(k: int, n: int) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    return colormaps["viridis"](0.9 * k / max(n - 1, 1))

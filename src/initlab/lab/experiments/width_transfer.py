"""Width transfer: does the best learning rate stay put as the model gets wider? The analogue of Tensor
Programs V, Fig. 1: training loss against the Adam learning rate for each width, under standard
parametrization (SP), initlab's μP (``init_model(model, "mup", base=...)`` + ``mup_param_groups``) and the
``mup`` package (when installed), on an MLP and a small Transformer (mnist1d as 8 tokens of 5 values), and
on a character-level Transformer language model (Fig. 1's kind of model)."""

from __future__ import annotations

import importlib.util
import itertools
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
ARCHS = ("mlp", "transformer", "char-lm")
TITLES = {"mlp": "MLP", "transformer": "Transformer (mnist1d)", "char-lm": "Character-level LM"}


def params() -> list[str]:
    peer = importlib.util.find_spec("mup") is not None
    return ["SP", "initlab μP", *(["mup package"] if peer else [])]


def sizes(quick: bool) -> dict[str, Any]:
    """Few steps and small batches, sized for 2 shared CPU cores. The ``mup`` package peer stops at the
    Transformer's width 512 (its 1024 would cost a fifth of the run): it is the same parametrization as
    initlab μP, whose losses it matched to <1e-3 at every width it ran. Each model's LR grid keeps at least
    two points beyond every best LR seen in the previous full run (MLP -9..-6, Transformer -11..-7); the
    language model's keeps μP's (-7..-6) two points inside, and SP's drift reaches its edge (-10) at widths
    512 and 1024, which the answer says (two more points would cost a third more time). Its peer stops at
    width 256. ``n_eval``: held-out samples (mnist1d) or windows (the LM)."""
    if quick:
        return {"widths": {"mlp": [32, 64], "transformer": [32, 64], "char-lm": [32, 64]},
                "peer_max_width": {"mlp": 64, "transformer": 32, "char-lm": 32},
                "log2_lrs": {"mlp": [-8, -6], "transformer": [-8, -6], "char-lm": [-8, -6]},
                "steps": {"mlp": 5, "transformer": 3, "char-lm": 3},
                "batch": {"mlp": 16, "transformer": 8, "char-lm": 4},
                "n_eval": {"mlp": 64, "transformer": 64, "char-lm": 8}}
    return {"widths": {a: [64, 128, 256, 512, 1024] for a in ARCHS},
            "peer_max_width": {"mlp": 1024, "transformer": 512, "char-lm": 256},
            "log2_lrs": {"mlp": list(range(-11, -3)), "transformer": list(range(-12, -4)),
                         "char-lm": list(range(-10, -3))},
            "steps": {"mlp": 60, "transformer": 40, "char-lm": 200},
            "batch": {"mlp": 32, "transformer": 16, "char-lm": 16},
            "n_eval": {"mlp": 1000, "transformer": 1000, "char-lm": 256}}


def widths_of(cfg: dict[str, Any], arch: str, param: str) -> list[int]:
    top = cfg["peer_max_width"][arch] if param == "mup package" else math.inf
    return [w for w in cfg["widths"][arch] if w <= top]


def run(spec: Spec) -> Result:
    cfg = sizes(spec.quick)
    names = params()
    keys = [(a, p, w, lr) for a in ARCHS for p in names for w in widths_of(cfg, a, p)
            for lr in cfg["log2_lrs"][a]]
    jobs = [{"arch": a, "param": p, "width": w, "base_width": cfg["widths"][a][0], "lr": 2.0**lr,
             "seed": s, "steps": cfg["steps"][a], "batch": cfg["batch"][a], "n_eval": cfg["n_eval"][a]}
            for a, p, w, lr in keys for s in spec.seeds]
    outs = iter(map_runs(one_run, jobs, spec, NAME))
    loss: dict[str, Any] = {}
    train: dict[str, Any] = {}
    for a, p, w, lr in keys:
        pairs = [next(outs) for _ in spec.seeds]
        loss.setdefault(a, {}).setdefault(p, {}).setdefault(str(w), {})[str(lr)] = [x[0] for x in pairs]
        train.setdefault(a, {}).setdefault(p, {}).setdefault(str(w), {})[str(lr)] = [x[1] for x in pairs]
    summary = {a: {p: analyse(loss[a][p], widths_of(cfg, a, p), cfg["log2_lrs"][a]) for p in names}
               for a in ARCHS}
    train_summary = {a: {p: analyse(train[a][p], widths_of(cfg, a, p), cfg["log2_lrs"][a]) for p in names}
                     for a in ARCHS}
    rows = [[a, p, " / ".join(_lr(x) for x in s["best_log2_lr"]), f"{s['shift']:+d}",
             " / ".join(_pm(m, e) for m, e in zip(s["best_loss"], s["best_loss_se"], strict=True)),
             "yes" if s["wider_not_worse"] else "no", _step(s)]
            for a in ARCHS for p, s in summary[a].items()]
    headers = ["model", "parametrization", "best log2 lr per width", "shift (grid steps)",
               "held-out loss at best lr per width (± SE over seeds)",
               "wider never worse at base-width best lr", "worst wider step there (paired Δ ± SE)"]
    return Result(NAME, QUESTION, _setup_text(cfg, spec), headers, rows, _answer(summary, loss, cfg),
                  {"config": cfg, "params": names, "loss": loss, "summary": summary, "train_loss": train,
                   "train_summary": train_summary})


def _setup_text(cfg: dict[str, Any], spec: Spec) -> str:
    lrs, steps, batch, peer = cfg["log2_lrs"], cfg["steps"], cfg["batch"], cfg["peer_max_width"]
    grid = ", ".join(f"{lrs[a][0]}..{lrs[a][-1]} ({a})" for a in ARCHS)
    return " ".join([
        f"Adam, {len(spec.seeds)} seed(s) (init and batch order).",
        f"MLP on mnist1d (4000 train): 2 hidden ReLU layers, widths {_ws(cfg, 'mlp')},",
        f"{steps['mlp']} steps of batch {batch['mlp']}.",
        "Transformer on mnist1d: 8 tokens x 5 values, linear embedding + learned positions, one pre-LN",
        f"block (4 heads, MLP 2x), mean pool, widths {_ws(cfg, 'transformer')},",
        f"{steps['transformer']} steps of batch {batch['transformer']}.",
        "Character-level LM: the same block, causal, on the bytes of torch.nn.modules' sources (0.9 MB;",
        "torch is pinned, nothing is downloaded; the last 10% held out), byte and position embeddings,",
        f"widths {_ws(cfg, 'char-lm')}, {steps['char-lm']} steps of {batch['char-lm']} windows of 32 bytes.",
        "Attention scale 1/sqrt(head_dim) under SP, sqrt(base head_dim)/head_dim under μP (1/head_dim,",
        "equal to SP's at the base width).",
        f"The mup package peer runs up to width {peer['transformer']} on the Transformer and",
        f"{peer['char-lm']} on the LM. LR grid 2^k (x2 steps), k = {grid}.",
        f"Loss: cross-entropy after the last step on {cfg['n_eval']['mlp']} held-out mnist1d samples or",
        f"{cfg['n_eval']['char-lm']} held-out windows (the same for every run), mean over seeds ± its",
        "standard error; the argmin is over the seed mean. 'Worst wider step': of the loss changes from",
        "one width to the next at the narrowest width's best LR (paired over seeds, ± the SE of that",
        "paired difference), the one furthest above 2 SE. μP base width = the narrowest width; base",
        "scheme torch:default (SP is torch:default at every width).",
    ])


def _ws(cfg: dict[str, Any], arch: str) -> str:
    return " -> ".join(map(str, cfg["widths"][arch]))


def _lr(x: float) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{x:g}"


def _pm(mean: float, se: float) -> str:
    if not math.isfinite(mean):
        return "diverged"
    return f"{mean:.3f}" + (f" ± {se:.3f}" if math.isfinite(se) else "")


def _step(s: dict[str, Any]) -> str:
    d, se = s["worst_step"], s["worst_step_se"]
    if d is None or not math.isfinite(d):
        return "–"
    verdict = "within 2 SE" if s["wider_not_worse_2se"] else "worse by > 2 SE"
    return f"{s['worst_step_widths']}: {d:+.3f} ± {se:.3f} ({verdict})"


def _mean(values: list[float]) -> float:
    a = np.asarray(values, dtype=float)
    return math.inf if np.isnan(a).any() else float(a.mean())  # a diverged seed makes the cell diverged


def _se(values: Any) -> float:
    a = np.asarray(values, dtype=float)
    if len(a) < 2 or not np.isfinite(a).all():
        return math.nan
    return float(a.std(ddof=1) / math.sqrt(len(a)))


def analyse(loss: dict[str, dict[str, list[float]]], widths: list[int], lrs: list[int]) -> dict[str, Any]:
    """Best LR per width (argmin of the seed-mean loss), its shift from the narrowest to the widest width
    in grid steps, the loss there ± SE, and whether at the narrowest width's best LR wider is never worse:
    strictly (seed means) and beyond noise (each width-to-next paired difference at most 2 of its SEs)."""
    table = np.array([[_mean(loss[str(w)][str(lr)]) for lr in lrs] for w in widths])
    best = [int(np.argmin(row)) if np.isfinite(row).any() else -1 for row in table]
    at_base = table[:, best[0]] if best[0] >= 0 else np.full(len(widths), math.inf)
    steps = _steps(loss, widths, lrs[best[0]]) if best[0] >= 0 else []
    # the step that decides the 2-SE verdict: the largest excess of the mean over twice its SE
    worst = max(steps, key=lambda t: t[1] - 2 * (t[2] if math.isfinite(t[2]) else 0.0),
                default=(None, math.nan, math.nan))
    return {
        "best_log2_lr": [lrs[b] if b >= 0 else None for b in best],
        "shift": (best[-1] - best[0]) if min(best) >= 0 else 0,
        "max_shift": max(abs(b - best[0]) for b in best) if min(best) >= 0 else 0,
        "best_loss": [float(table[i, b]) if b >= 0 else math.inf for i, b in enumerate(best)],
        "best_loss_se": [_se(loss[str(w)][str(lrs[b])]) if b >= 0 else math.nan
                         for w, b in zip(widths, best, strict=True)],
        "loss_at_base_best": [float(x) for x in at_base],
        "wider_not_worse": bool(np.all(np.diff(at_base) <= 0)),
        "worst_step_widths": worst[0], "worst_step": worst[1], "worst_step_se": worst[2],
        "wider_not_worse_2se": bool(steps) and all(d <= 0 or d <= 2 * se for _, d, se in steps),
        "edge": any(b in (0, len(lrs) - 1) for b in best),
    }


def _steps(loss: dict[str, dict[str, list[float]]], widths: list[int], lr: int
           ) -> list[tuple[str, float, float]]:
    """(``"w->w'"``, mean, SE) of the per-seed loss difference from each width to the next at ``lr``."""
    out = []
    for w0, w1 in itertools.pairwise(widths):
        d = np.asarray(loss[str(w1)][str(lr)], dtype=float) - np.asarray(loss[str(w0)][str(lr)], dtype=float)
        mean = float(d.mean()) if np.isfinite(d).all() else math.inf
        out.append((f"{w0}->{w1}", mean, _se(d)))
    return out


def peer_gap(loss: dict[str, Any], arch: str, max_log2_lr: float = math.inf) -> float:
    """Largest |initlab μP - mup package| loss over every width, seed and LR up to 2^``max_log2_lr`` that the
    peer ran."""
    ours, peer = loss[arch]["initlab μP"], loss[arch]["mup package"]
    return max((abs(a - b) for w in peer for lr in peer[w] if int(lr) <= max_log2_lr
                for a, b in zip(ours[w][lr], peer[w][lr], strict=True)), default=math.nan)


def _answer(summary: dict[str, dict[str, Any]], loss: dict[str, Any], cfg: dict[str, Any]) -> str:
    parts = []
    for a in ARCHS:
        cells = []
        for p, s in summary[a].items():
            edge = " (an optimum at the grid's edge)" if s["edge"] else ""
            noise = ("within 2 SE of noise" if s["wider_not_worse_2se"] else "by more than 2 SE")
            strict = "never" if s["wider_not_worse"] else f"sometimes ({noise})"
            cells.append(f"{p} moved {s['shift']:+d} grid step(s) (at most {s['max_shift']} from the "
                         f"narrowest width), wider {strict} worse at the narrowest width's best LR{edge}")
        parts.append(f"{TITLES[a]}: " + "; ".join(cells) + ".")
    mup = [summary[a]["initlab μP"]["max_shift"] for a in ARCHS]
    sp = summary["mlp"]["SP"]["max_shift"]
    verdict = (f"Under initlab μP the best learning rate moved by at most {max(mup)} grid step(s) across "
               f"widths; under SP the MLP's moved by up to {sp}.")
    if "mup package" in summary["mlp"]:
        calm = ", ".join(f"{peer_gap(loss, a, cfg['log2_lrs'][a][-1] - 2):.2g} ({a}, up to "
                         f"2^{cfg['log2_lrs'][a][-1] - 2})" for a in ARCHS)
        wild = max(peer_gap(loss, a) for a in ARCHS)
        verdict += (" initlab μP and the mup package are the same parametrization (Adam is invariant, up to "
                    "its epsilon, to moving the readout multiplier into init and LR): their losses differ by "
                    f"at most {calm}, and by up to {wild:.2g} at the two largest LRs, "
                    "where training is unstable and rounding differences grow.")
    return " ".join(parts) + " " + verdict


def plot(result: Result, out: Path) -> list[str]:
    """Loss against log2 LR, one curve per width (dark: narrow, light: wide), a dot at each minimum."""
    cfg, loss, names = result.data["config"], result.data["loss"], result.data["params"]
    fig = Figure(figsize=(4.2 * len(names), 3.4 * len(ARCHS)), layout="constrained")
    axes = fig.subplots(len(ARCHS), len(names), squeeze=False)
    for r, a in enumerate(ARCHS):
        lrs = cfg["log2_lrs"][a]
        for c, p in enumerate(names):
            ax = axes[r][c]
            widths = widths_of(cfg, a, p)
            for k, w in enumerate(widths):
                ys = np.array([_mean(loss[a][p][str(w)][str(lr)]) for lr in lrs])
                ys[~np.isfinite(ys)] = np.nan
                color = _color(k, len(cfg["widths"][a]))  # a width keeps its colour in every panel
                ax.plot(lrs, ys, marker=".", color=color, label=str(w))
                if np.isfinite(ys).any():
                    i = int(np.nanargmin(ys))
                    ax.plot([lrs[i]], [ys[i]], "o", color=color, markersize=7)
            ax.set(title=f"{a}: {p}", xlabel="log2 learning rate", ylabel="held-out loss")
            finite = [v for w in widths for lr in lrs for v in [_mean(loss[a][p][str(w)][str(lr)])]
                      if math.isfinite(v)]
            if finite:
                ax.set_ylim(min(finite) - 0.05, min(max(finite), min(finite) + 1.5) + 0.05)
        axes[r][0].legend(title="width", fontsize=7)
    return [save(fig, out, "width_transfer.png")]


def _color(k: int, n: int) -> tuple[float, float, float, float]:
    from matplotlib import colormaps

    return colormaps["viridis"](0.9 * k / max(n - 1, 1))

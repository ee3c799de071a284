"""One self-contained HTML page for one or several diagnoses: inline SVG plots, inline CSS, no scripts.

Figures are drawn with matplotlib's object API (no pyplot, no global backend switch) and embedded as SVG
text, so the page needs no network and no files beside it.
"""

from __future__ import annotations

import html
import io
import math
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import rc_context
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .format import fmt, pct
from .records import LayerStats

if TYPE_CHECKING:
    from .diagnosis import Diagnosis

Entry = tuple[str, "Diagnosis"]
MAX_HISTOGRAMS = 12

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1150px;
       color: #1d2430; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #d0d7de; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: .85em; margin: .5em 0; }
th, td { border: 1px solid #d0d7de; padding: .2em .5em; text-align: right; }
th { background: #f3f5f8; } td.name { text-align: left; font-family: ui-monospace, monospace; }
.verdict { border-left: 5px solid #c9372c; background: #fdf1f0; padding: .4em .8em; margin: .6em 0; }
.verdict.warning { border-color: #c99a1c; background: #fdf8e8; }
.verdict.healthy { border-color: #2c8a3e; background: #eff8f1; }
.verdict p { margin: .25em 0; } .fix { font-family: ui-monospace, monospace; font-size: .9em; }
figure { margin: 1em 0; } figcaption { font-size: .85em; color: #57606a; }
svg { max-width: 100%; height: auto; }
.scroll { overflow-x: auto; }
"""


def write_page(path: str | os.PathLike[str], entries: Sequence[Entry], title: str) -> str:
    text = page(entries, title)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)


def page(entries: Sequence[Entry], title: str) -> str:
    entries = [(label or d.model, d) for label, d in entries]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        _summary(entries),
        _verdicts(entries),
        _plots(entries),
        _histograms(entries),
        _layer_tables(entries),
        "</body></html>",
    ]
    return "\n".join(parts)


def _e(text: object) -> str:
    return html.escape(str(text))


def _summary(entries: Sequence[Entry]) -> str:
    rows = []
    for label, d in entries:
        s = d.summary()
        rows.append(
            f"<tr><td class='name'>{_e(label)}</td><td>{_e(tuple(d.input_shape))}</td>"
            f"<td>{len(d.layers)}</td>"
            f"<td>{fmt(s['input_rms'])}</td><td>{fmt(s['output_rms'])}</td><td>{fmt(s['signal_growth'])}</td>"
            f"<td>{fmt(s['grad_rms_last'])}</td><td>{fmt(s['grad_rms_first'])}</td>"
            f"<td>{fmt(s['grad_growth'])}</td><td>{fmt(s['jacobian_spread_db'])}</td>"
            f"<td class='name'>{_e(', '.join(sorted(d.codes)) or 'healthy')}</td></tr>"
        )
    head = (
        "<tr><th>init</th><th>input</th><th>layers</th><th>input RMS</th><th>last-layer RMS</th>"
        "<th>signal ×/layer</th><th>grad RMS (last)</th><th>grad RMS (first)</th><th>grad ×/layer "
        "(backward)</th><th>Jacobian spread (dB)</th><th>verdicts</th></tr>"
    )
    table = f'<div class="scroll"><table>{head}{"".join(rows)}</table></div>'
    notes = "".join(f"<p class='note'>{_e(label)}: {_e(n)}</p>" for label, d in entries for n in d.notes)
    return f'<section id="summary"><h2>Summary</h2>{table}{notes}</section>'


def _verdicts(entries: Sequence[Entry]) -> str:
    out = ['<section id="verdicts"><h2>Verdicts</h2>']
    for label, d in entries:
        if len(entries) > 1:
            out.append(f"<h3>{_e(label)}</h3>")
        if not d.verdicts:
            out.append(
                '<div class="verdict healthy"><p><b>No problems found</b>: signal and gradients stay within '
                "1e-3..1e3 of their reference, no dead, saturated or symmetric units.</p></div>"
            )
        for v in d.verdicts:
            out.append(
                f'<div class="verdict {_e(v.severity)}" data-code="{_e(v.code)}"><p><b>{_e(v.severity)}: '
                f"{_e(v.title)}</b></p><p>{_e(v.evidence)}</p><p class='fix'>fix: {_e(v.fix)}</p></div>"
            )
    out.append("</section>")
    return "\n".join(out)


def _plots(entries: Sequence[Entry]) -> str:
    figures = [
        (
            "plot-std",
            "Activation std per layer: the layer output (solid) and after the activation (dashed). "
            "Zero (underflow) and infinite (overflow) values are left out of the log scale.",
            _plot_std,
        ),
        (
            "plot-grad",
            "Gradient norm per layer: RMS of dL/d(layer output) (solid) and the norm of the weight "
            "gradient (dashed).",
            _plot_grad,
        ),
        (
            "plot-fractions",
            "Fraction of dead units (ReLU family: never active on the batch) and of saturated "
            "pre-activations (derivative below 5% of its peak).",
            _plot_fractions,
        ),
    ]
    out = ['<section id="plots"><h2>Per-layer plots</h2>']
    for fid, caption, draw in figures:
        fig = Figure(figsize=(9.5, 3.4))
        fig.subplots_adjust(left=0.08, right=0.98, top=0.96, bottom=0.15)  # fixed: constrained layout doubles
        ax = fig.add_subplot()  # the drawing time
        for i, (label, d) in enumerate(entries):
            draw(ax, d.layers, label, f"C{i % 10}")
        last = max(len(d.layers) for _, d in entries) - 1
        ax.set_xlim(-0.02 * last - 0.5, 1.02 * last + 0.5)
        ax.set_xlabel("layer (forward order)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        out.append(f'<figure id="{fid}">{svg(fig, fid)}<figcaption>{_e(caption)}</figcaption></figure>')
    out.append("</section>")
    return "\n".join(out)


def _positive(values: Sequence[float | None]) -> np.ndarray:
    arr = np.array([math.nan if v is None else v for v in values], dtype=float)
    arr[~np.isfinite(arr) | (arr <= 0)] = math.nan
    return arr


def _plot_std(ax: Axes, layers: Sequence[LayerStats], label: str, color: str) -> None:
    x = [la.index for la in layers]
    ax.plot(
        x, _positive([la.output.std for la in layers]), "-o", ms=2.5, color=color, label=f"{label}: output"
    )
    ax.plot(
        x,
        _positive([la.act.std for la in layers]),
        "--",
        color=color,
        alpha=0.7,
        label=f"{label}: activation",
    )
    _log(ax, "std")


def _plot_grad(ax: Axes, layers: Sequence[LayerStats], label: str, color: str) -> None:
    x = [la.index for la in layers]
    ax.plot(
        x, _positive([la.grad_rms for la in layers]), "-o", ms=2.5, color=color, label=f"{label}: dL/d output"
    )
    ax.plot(
        x,
        _positive([la.weight.grad_norm if la.weight else None for la in layers]),
        "--",
        color=color,
        alpha=0.7,
        label=f"{label}: weight gradient",
    )
    _log(ax, "gradient")


def _plot_fractions(ax: Axes, layers: Sequence[LayerStats], label: str, color: str) -> None:
    x = [la.index for la in layers]
    dead = [math.nan if la.dead is None else la.dead for la in layers]
    sat = [math.nan if la.saturated is None else la.saturated for la in layers]
    if not all(math.isnan(v) for v in dead):
        ax.plot(x, dead, "-o", ms=2.5, color=color, label=f"{label}: dead")
    if not all(math.isnan(v) for v in sat):
        ax.plot(x, sat, "--s", ms=2.5, color=color, label=f"{label}: saturated")
    if all(math.isnan(v) for v in dead + sat):
        ax.plot([], [], color=color, label=f"{label}: no ReLU-family or saturating activations")
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("fraction")


def _log(ax: Axes, ylabel: str) -> None:
    if any(np.isfinite(np.asarray(line.get_ydata(), dtype=float)).any() for line in ax.get_lines()):
        ax.set_yscale("log")
    ax.set_ylabel(ylabel)


def _histograms(entries: Sequence[Entry]) -> str:
    n = max(len(d.layers) for _, d in entries)
    chosen = (
        sorted({round(i * (n - 1) / (MAX_HISTOGRAMS - 1)) for i in range(MAX_HISTOGRAMS)}) if n > 1 else [0]
    )
    cols = 4
    rows = math.ceil(len(chosen) / cols)
    fig = Figure(figsize=(10, 2.1 * rows))
    fig.subplots_adjust(left=0.05, right=0.99, top=1 - 0.3 / (2.1 * rows), bottom=0.4 / (2.1 * rows),
                        hspace=0.45, wspace=0.25)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax, index in zip(axes, chosen, strict=False):
        for i, (label, d) in enumerate(entries):
            if index >= len(d.layers) or d.layers[index].histogram is None:
                continue
            la = d.layers[index]
            h = la.histogram
            assert h is not None
            counts = np.asarray(h.counts, dtype=float)
            if counts.sum() > 0:
                ax.stairs(
                    counts / counts.sum(),
                    h.edges,
                    color=f"C{i % 10}",
                    label=label,
                    fill=len(entries) == 1,
                    alpha=0.6 if len(entries) == 1 else 1.0,
                )
            ax.set_title(f"{index}: {la.name} ({la.activation or 'no act.'})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(chosen) :]:
        ax.set_axis_off()
    if len(entries) > 1:
        axes[0].legend(fontsize=7)
    caption = (
        f"Histograms of the activations (after each layer's activation) for {len(chosen)} of {n} layers, "
        "evenly spaced; bars are fractions of the layer's values (for large layers, of an evenly strided "
        "sample of 65,536)."
    )
    return (
        f'<section id="histograms"><h2>Activation histograms</h2><figure id="plot-histograms">'
        f"{svg(fig, 'hist')}<figcaption>{_e(caption)}</figcaption></figure></section>"
    )


def _layer_tables(entries: Sequence[Entry]) -> str:
    cols: list[tuple[str, Callable[[LayerStats], str]]] = [
        ("#", lambda la: str(la.index)),
        ("out mean", lambda la: fmt(la.output.mean)),
        ("out std", lambda la: fmt(la.output.std)),
        ("act mean", lambda la: fmt(la.act.mean)),
        ("act std", lambda la: fmt(la.act.std)),
        ("act RMS", lambda la: fmt(la.act.rms)),
        ("dead", lambda la: pct(la.dead, 1)),
        ("saturated", lambda la: pct(la.saturated, 1)),
        ("grad RMS", lambda la: fmt(la.grad_rms)),
        ("‖∇W‖", lambda la: fmt(la.weight.grad_norm if la.weight else None)),
        ("‖W‖/‖∇W‖", lambda la: fmt(la.weight.ratio if la.weight else None)),
        ("groups/units", lambda la: f"{la.symmetry.groups}/{la.symmetry.units}" if la.symmetry else "-"),
        ("eff. rank", lambda la: fmt(la.effective_rank)),
        ("mean shift", lambda la: fmt(la.mean_shift)),
    ]
    out = ['<section id="layers"><h2>Per-layer numbers</h2>']
    for label, d in entries:
        if len(entries) > 1:
            out.append(f"<h3>{_e(label)}</h3>")
        head = "<tr><th>layer</th><th>kind</th><th>activation</th>" + "".join(
            f"<th>{_e(c)}</th>" for c, _ in cols
        )
        body = "".join(
            f"<tr><td class='name'>{_e(la.name)}</td><td class='name'>{_e(la.kind)}</td>"
            f"<td class='name'>{_e(la.activation or '-')}</td>"
            + "".join(f"<td>{_e(f(la))}</td>" for _, f in cols)
            + "</tr>"
            for la in d.layers
        )
        out.append(f'<div class="scroll"><table class="layers">{head}{body}</table></div>')
    out.append("</section>")
    return "\n".join(out)


def svg(fig: Figure, salt: str) -> str:
    """The figure as an inline <svg> element (ids salted so several figures can share a page)."""
    buf = io.StringIO()
    with rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg")
    text = buf.getvalue()
    return text[text.index("<svg") :]

"""``Diagnosis``: the per-layer measurements of one forward/backward pass, the verdicts, their renderings."""

from __future__ import annotations

import io
import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from .format import fmt, pct
from .records import LayerStats, from_jsonable, growth_rate, jsonable
from .verdicts import Verdict, judge

MAX_ROWS = 24  # longer tables show the first and last layers


@dataclass
class Diagnosis:
    """What ``initlab.diagnose`` measured. ``print(d)`` shows the table and verdicts; ``d.to_html(path)``
    writes a self-contained page; ``d.to_dict()``/``d.to_json()`` give the numbers."""

    model: str
    input_shape: list[int]
    layers: list[LayerStats]
    input_rms: float | None = None
    loss: float | None = None
    seed: int | None = None
    jacobian: dict[str, Any] | None = None
    verdicts: list[Verdict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, model: str, input_shape: list[int], layers: list[LayerStats], **kw: Any) -> Diagnosis:
        d = cls(model, input_shape, layers, **kw)
        d.verdicts = judge(layers, d.input_rms, d.jacobian)
        return d

    # -- queries ---------------------------------------------------------------------------------------------
    @property
    def codes(self) -> set[str]:
        """The verdict codes, e.g. {"exploding_signal", "saturation"}; empty when healthy."""
        return {v.code for v in self.verdicts}

    @property
    def healthy(self) -> bool:
        return not any(v.severity == "problem" for v in self.verdicts)

    def verdict(self, code: str) -> Verdict | None:
        return next((v for v in self.verdicts if v.code == code), None)

    def layer(self, name: str) -> LayerStats:
        for la in self.layers:
            if la.name == name:
                return la
        raise KeyError(f"no layer named {name!r}; layers: {[la.name for la in self.layers][:10]}...")

    def summary(self) -> dict[str, float | None]:
        """Headline numbers: the RMS of the input and of the last layer's output, the gradient RMS at the last
        and first layers, and the typical per-layer factor of each (forward; backward from the output)."""
        outs = [la.output.rms for la in self.layers if not math.isnan(la.output.rms)]
        grads = [la.grad_rms for la in self.layers if la.grad_rms is not None and not math.isnan(la.grad_rms)]
        return {
            "input_rms": self.input_rms,
            "output_rms": outs[-1] if outs else None,
            "signal_growth": growth_rate(outs),
            "grad_rms_last": grads[-1] if grads else None,
            "grad_rms_first": grads[0] if grads else None,
            "grad_growth": growth_rate(grads[::-1]),
            "jacobian_spread_db": self.jacobian.get("spread_db") if self.jacobian else None,
        }

    # -- plain data ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return jsonable(
            {
                "model": self.model,
                "input_shape": self.input_shape,
                "input_rms": self.input_rms,
                "loss": self.loss,
                "seed": self.seed,
                "jacobian": self.jacobian,
                "summary": self.summary(),
                "verdicts": [v.to_dict() for v in self.verdicts],
                "layers": [la.to_dict() for la in self.layers],
                "notes": self.notes,
            }
        )

    def to_json(self, path: str | os.PathLike[str] | None = None, indent: int | None = 1) -> str:
        text = json.dumps(self.to_dict(), indent=indent, allow_nan=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Diagnosis:
        d = from_jsonable(d)
        return cls(
            d["model"],
            d["input_shape"],
            [LayerStats.from_dict(la) for la in d["layers"]],
            d.get("input_rms"),
            d.get("loss"),
            d.get("seed"),
            d.get("jacobian"),
            [Verdict(**v) for v in d.get("verdicts", [])],
            d.get("notes", []),
        )

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike[str]) -> Diagnosis:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            with open(text_or_path, encoding="utf-8") as f:
                text = f.read()
        return cls.from_dict(json.loads(text))

    def to_html(self, path: str | os.PathLike[str], title: str | None = None) -> str:
        """Write one self-contained HTML page (inline SVG plots, no scripts, no network); returns its path."""
        from .html import write_page

        return write_page(path, [("", self)], title or f"initlab diagnose: {self.model}")

    # -- terminal --------------------------------------------------------------------------------------------
    def table(self, max_rows: int | None = MAX_ROWS) -> Table:
        t = Table(
            title=f"initlab diagnose: {self.model} on input {tuple(self.input_shape)}", title_justify="left"
        )
        for col in (
            "#",
            "layer",
            "kind",
            "act",
            "out std",
            "act mean",
            "act std",
            "dead",
            "sat",
            "grad rms",
            "‖W‖/‖∇W‖",
            "groups",
            "eff. rank",
        ):
            t.add_column(col, justify="left" if col in ("layer", "kind", "act") else "right", overflow="fold")
        for row in elide(self.layers, max_rows):
            if row is None:
                t.add_row("…", f"{len(self.layers) - (max_rows or 0)} more layers", *[""] * 11)
                continue
            la = row
            w = la.weight
            sym = la.symmetry
            t.add_row(
                str(la.index),
                la.name,
                la.kind,
                la.activation or "-",
                fmt(la.output.std),
                fmt(la.act.mean),
                fmt(la.act.std),
                pct(la.dead),
                pct(la.saturated),
                fmt(la.grad_rms),
                fmt(w.ratio if w else None),
                f"{sym.groups}/{sym.units}" if sym else "-",
                fmt(la.effective_rank, 2) if la.effective_rank is not None else "-",
            )
        return t

    def verdict_text(self) -> Text:
        text = Text()
        if not self.verdicts:
            text.append("No problems found", style="bold green")
            text.append(
                ": signal and gradients stay within 1e-3..1e3, no dead, saturated or symmetric units.\n"
            )
        for v in self.verdicts:
            text.append(
                f"{v.severity.upper()}: {v.title}\n",
                style="bold red" if v.severity == "problem" else "bold yellow",
            )
            text.append(f"  evidence: {v.evidence}\n")
            text.append("  fix: ", style="bold")
            text.append(f"{v.fix}\n")
        return text

    def summary_text(self) -> Text:
        s = self.summary()
        text = Text()
        # Overall factors are the quotient of the two printed ends; the per-layer figure is the median of
        # consecutive ratios, labelled as such so that it cannot read as contradicting them.
        text.append(
            f"signal: input RMS {fmt(s['input_rms'])} -> last layer {fmt(s['output_rms'])} "
            f"(×{fmt(_ratio(s['output_rms'], s['input_rms']))} overall, median ×{fmt(s['signal_growth'])} "
            f"per layer); gradient RMS: last layer {fmt(s['grad_rms_last'])} -> first "
            f"{fmt(s['grad_rms_first'])} (×{fmt(_ratio(s['grad_rms_first'], s['grad_rms_last']))} overall, "
            f"median ×{fmt(s['grad_growth'])} per layer)"
        )
        if self.jacobian:
            text.append(
                f"; Jacobian singular values {fmt(self.jacobian['min'])}..{fmt(self.jacobian['max'])} "
                f"({self.jacobian['spread_db']:.1f} dB)"
            )
        text.append("\n")
        for note in self.notes:
            text.append(f"note: {note}\n", style="dim")
        return text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield Group(self.table(), self.summary_text(), self.verdict_text())

    def __str__(self) -> str:
        return render_text(self)

    def __repr__(self) -> str:
        return (
            f"Diagnosis(model={self.model!r}, layers={len(self.layers)}, "
            f"verdicts={sorted(self.codes) or 'healthy'})"
        )


def render_text(obj: Any, width: int = 150) -> str:
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False, soft_wrap=False).print(obj)
    return buf.getvalue()


def elide(layers: Sequence[LayerStats], max_rows: int | None) -> Iterator[LayerStats | None]:
    if max_rows is None or len(layers) <= max_rows:
        yield from layers
        return
    head = max_rows // 2
    yield from layers[:head]
    yield None
    yield from layers[len(layers) - (max_rows - head) :]


def _ratio(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den is not None and 0 < den < math.inf else None

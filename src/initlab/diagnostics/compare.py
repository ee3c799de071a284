"""``compare``: several diagnoses of the same model (different inits) side by side, on one page."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from .diagnosis import MAX_ROWS, Diagnosis, elide, render_text
from .format import fmt, pct


@dataclass
class Comparison:
    labels: list[str]
    diagnoses: list[Diagnosis]

    def table(self) -> Table:
        t = Table(title=f"initlab compare: {self.diagnoses[0].model}", title_justify="left")
        t.add_column("", justify="left")
        for label in self.labels:
            t.add_column(label, justify="right", overflow="fold")
        summaries = [d.summary() for d in self.diagnoses]
        rows: list[tuple[str, list[str]]] = [
            ("last-layer RMS", [fmt(s["output_rms"]) for s in summaries]),
            ("signal ×/layer", [fmt(s["signal_growth"]) for s in summaries]),
            (
                "grad RMS last -> first",
                [f"{fmt(s['grad_rms_last'])} -> {fmt(s['grad_rms_first'])}" for s in summaries],
            ),
            ("grad ×/layer (backward)", [fmt(s["grad_growth"]) for s in summaries]),
            ("max dead", [pct(_max(la.dead for la in d.layers)) for d in self.diagnoses]),
            ("max saturated", [pct(_max(la.saturated for la in d.layers)) for d in self.diagnoses]),
            (
                "symmetric layers",
                [
                    str(sum(1 for la in d.layers if la.symmetry and la.symmetry.twinned))
                    for d in self.diagnoses
                ],
            ),
            ("verdicts", [", ".join(sorted(d.codes)) or "healthy" for d in self.diagnoses]),
        ]
        for name, values in rows:
            t.add_row(name, *values)
        return t

    def layer_table(self, max_rows: int | None = MAX_ROWS) -> Table:
        """Per layer, side by side: the output std and the gradient RMS under each init."""
        t = Table(title="per layer: output std | gradient RMS (dL/d output)", title_justify="left")
        t.add_column("#", justify="right")
        t.add_column("layer", justify="left")
        for label in self.labels:
            t.add_column(f"{label}\nout std", justify="right")
            t.add_column(f"{label}\ngrad rms", justify="right")
        longest = max(self.diagnoses, key=lambda d: len(d.layers))
        for row in elide(longest.layers, max_rows):
            if row is None:
                t.add_row(
                    "…", f"{len(longest.layers) - (max_rows or 0)} more", *[""] * (2 * len(self.labels))
                )
                continue
            cells = []
            for d in self.diagnoses:
                la = d.layers[row.index] if row.index < len(d.layers) else None
                cells += [fmt(la.output.std) if la else "-", fmt(la.grad_rms) if la else "-"]
            t.add_row(str(row.index), row.name, *cells)
        return t

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        parts: list[Any] = [self.table()]
        for label, d in zip(self.labels, self.diagnoses, strict=False):
            parts.append(Text(f"\n{label}:", style="bold"))
            parts.append(d.verdict_text())
        yield Group(*parts)

    def __str__(self) -> str:
        return render_text(self)

    def to_dict(self) -> dict[str, Any]:
        return {"labels": self.labels, "diagnoses": [d.to_dict() for d in self.diagnoses]}

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    def to_html(self, path: str | os.PathLike[str], title: str | None = None) -> str:
        from .html import write_page

        return write_page(
            path,
            list(zip(self.labels, self.diagnoses, strict=False)),
            title or f"initlab compare: {self.diagnoses[0].model} under {len(self.labels)} inits",
        )


def compare(
    diagnoses: Sequence[Diagnosis] | Mapping[str, Diagnosis], labels: Sequence[str] | None = None
) -> Comparison:
    """Overlay several diagnoses (e.g. one model under different inits):
    ``compare({"torch": d1, "auto": d2})`` or ``compare([d1, d2], labels=["torch", "auto"])``;
    ``.to_html(path)`` puts them on one page."""
    if isinstance(diagnoses, Mapping):
        if labels is not None:
            raise TypeError("pass labels either as the mapping's keys or as labels=, not both")
        labels, diagnoses = list(diagnoses.keys()), list(diagnoses.values())
    items = list(diagnoses)
    if not items:
        raise ValueError("compare needs at least one Diagnosis")
    bad = [type(d).__name__ for d in items if not isinstance(d, Diagnosis)]
    if bad:
        raise TypeError(f"compare expects Diagnosis objects (from initlab.diagnose), got {bad[0]}")
    names = list(labels) if labels is not None else [f"#{i}" for i in range(len(items))]
    if len(names) != len(items):
        raise ValueError(f"{len(names)} labels for {len(items)} diagnoses")
    if len(set(names)) != len(names):
        raise ValueError(f"labels must be distinct, got {names}")
    return Comparison(names, items)


def _max(values: Any) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None

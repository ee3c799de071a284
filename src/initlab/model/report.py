"""``InitReport``: what ``init_model`` did (or, with ``dry_run``, would do), a row per parameter.

Each :class:`Row` names the parameter, its module type, shape, fans, the activation that follows, the scheme
and the rule that chose it, the std (and bound for bounded draws) and the predicted variance of the layer's
output for the planned input. ``print(report)`` renders a rich table; ``to_dict()``/``to_json()`` serve tools;
``assert_healthy()`` raises :class:`UnhealthyPlan` when the plan predicts a vanishing or exploding signal."""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

Status = Literal["init", "kept", "untouched"]
STATUSES: tuple[Status, ...] = ("init", "kept", "untouched")


@dataclass
class Row:
    name: str
    module: str
    shape: tuple[int, ...]
    scheme: str
    rule: str
    layer: str = ""
    fan_in: float | None = None
    fan_out: float | None = None
    activation: str | None = None
    std: float | None = None
    bound: float | None = None
    mean: float | None = None
    var_out: float | None = None
    status: Status = "init"
    note: str = ""
    tied: list[str] = field(default_factory=list)


class UnhealthyPlan(AssertionError):
    """The plan predicts a signal that vanishes or explodes."""


@dataclass
class InitReport:
    scheme: str
    rows: list[Row] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    method: str = ""
    seed: int | None = None
    dry_run: bool = False
    output_var: float | None = None
    graph: Any = field(default=None, repr=False, compare=False)
    plan: Any = field(default=None, repr=False, compare=False)

    # ---- access --------------------------------------------------------------------------------------------
    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.name == name or name in r.tied:
                return r
        raise KeyError(f"no row for {name!r}")

    def __getitem__(self, name: str) -> Row:
        return self.row(name)

    def __len__(self) -> int:
        return len(self.rows)

    def copy(self) -> InitReport:
        """A copy whose rows and lists can change without touching this report."""
        rows = []
        for r in self.rows:  # copy.copy's reduce protocol costs ~3x this, on every cached init_model call
            c = object.__new__(Row)
            c.__dict__.update(r.__dict__)
            c.tied = list(r.tied)
            rows.append(c)
        return replace(self, rows=rows, warnings=list(self.warnings), notes=list(self.notes))

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    @property
    def initialized(self) -> list[Row]:
        return [r for r in self.rows if r.status == "init"]

    @property
    def untouched(self) -> list[Row]:
        return [r for r in self.rows if r.status == "untouched"]

    # ---- health --------------------------------------------------------------------------------------------
    def assert_healthy(self, low: float = 1e-2, high: float = 1e2) -> None:
        """Raise :class:`UnhealthyPlan` when a layer's predicted output variance (for a unit-variance input)
        is below ``low`` or above ``high``."""
        bad = [r for r in self.rows if r.var_out is not None and not (low <= r.var_out <= high)]
        if self.output_var is not None and not (low <= self.output_var <= high):
            bad.append(Row("<output>", "", (), "", "", var_out=self.output_var))
        if bad:
            worst = max(bad, key=lambda r: abs(math.log10(max(r.var_out or 1e-300, 1e-300))))
            kind = "vanishes" if (worst.var_out or 0) < low else "explodes"
            raise UnhealthyPlan(
                f"the plan predicts that the signal {kind}: {len(bad)} layer output(s) outside "
                f"[{low:g}, {high:g}], worst {worst.name} with variance {worst.var_out:.3g}"
            )

    # ---- export --------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": self.scheme,
            "method": self.method,
            "seed": self.seed,
            "dry_run": self.dry_run,
            "output_var": self.output_var,
            "warnings": list(self.warnings),
            "notes": list(self.notes),
            "rows": [{**asdict(r), "shape": list(r.shape)} for r in self.rows],
        }

    def to_json(self, path: str | None = None, indent: int = 2) -> str:
        """Strict JSON (RFC 8259): non-finite numbers (a predicted variance that overflows) are written as
        the strings ``"inf"``, ``"-inf"``, ``"nan"``, never as the bare ``Infinity``/``NaN`` tokens."""
        text = json.dumps(_finite(self.to_dict()), indent=indent, default=str, allow_nan=False)
        if path is not None:
            with open(path, "w") as fh:
                fh.write(text)
        return text

    # ---- rendering -----------------------------------------------------------------------------------------
    def __rich__(self) -> Any:
        from rich.console import Group
        from rich.markup import escape
        from rich.table import Table
        from rich.text import Text

        title = f"init_model: {self.scheme}" + (" (dry run: nothing changed)" if self.dry_run else "")
        table = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
        for col, justify in (
            ("parameter", "left"),
            ("module", "left"),
            ("shape", "left"),
            ("fan in/out", "right"),
            ("activation", "left"),
            ("scheme", "left"),
            ("rule", "left"),
            ("std", "right"),
            ("bound", "right"),
            ("Var out", "right"),
        ):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for r in self.rows:
            style = {"init": "", "kept": "dim", "untouched": "yellow"}[r.status]
            name = r.name + (f" (= {', '.join(r.tied)})" if r.tied else "")
            fans = "" if r.fan_in is None else f"{_fmt(r.fan_in)}/{_fmt(r.fan_out)}"
            scheme = r.scheme if not r.note or r.status == "untouched" else f"{r.scheme} [{r.note}]"
            table.add_row(
                *(escape(x) for x in (name, r.module)),
                "x".join(map(str, r.shape)),
                fans,
                escape(r.activation or ""),
                escape(scheme),
                escape(r.rule),
                _fmt(r.std),
                _fmt(r.bound),
                _fmt(r.var_out),
                style=style,
            )
        parts: list[Any] = [table]
        summary = (
            f"{len(self.initialized)} initialized, {len(self.untouched)} untouched; discovery: {self.method}"
        )
        if self.output_var is not None:
            summary += f"; predicted output variance {self.output_var:.3g}"
        parts.append(Text(summary))
        parts += [Text(f"note: {n}", style="dim") for n in self.notes]
        parts += [Text(f"warning: {w}", style="yellow") for w in self.warnings]
        return Group(*parts)

    def __str__(self) -> str:
        from rich.console import Console

        console = Console(width=160, record=True, file=io.StringIO(), color_system=None)
        console.print(self)
        return console.export_text().rstrip()


def _fmt(x: float | None) -> str:
    if x is None:
        return ""
    if x == 0:
        return "0"
    if isinstance(x, int) or (abs(x) >= 1 and float(x).is_integer()):
        return str(int(x))
    return f"{x:.3g}"


def _finite(x: Any) -> Any:
    """``x`` with every non-finite float replaced by its string (``json.dumps`` never calls ``default=``
    for floats)."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x

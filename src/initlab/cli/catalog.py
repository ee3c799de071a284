"""``initlab catalog`` (every scheme: formula, origin, reference) and ``initlab describe NAME`` (one in full,
with a worked example on a Linear and a conv weight)."""

from __future__ import annotations

import argparse
import json
import math
import warnings
from typing import Any

from rich.console import Console
from rich.table import Table

from ..catalog import describe, entries, get
from ..catalog import draws as d
from ..catalog.initializers import LayoutWarning
from ..catalog.registry import Entry

EXAMPLES = {"Linear weight (256, 128): out 256, in 128": (256, 128),
            "Conv2d weight (64, 32, 3, 3)": (64, 32, 3, 3)}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("catalog", help="every initialization scheme, its formula and origin",
                              description="List every scheme in the catalog.")
    p.add_argument("--prefix", help="only names starting with this, e.g. 'keras:' or 'torch:'")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON instead of a table")
    fmt.add_argument("--markdown", action="store_true", help="print a Markdown table (for the docs)")
    p.set_defaults(func=run_catalog)

    q = subparsers.add_parser("describe", help="one scheme in full, with a worked example",
                              description="Describe one scheme: formula, origin, reference, signature, "
                                          "aliases, and what it gives for a Linear and a conv weight.")
    q.add_argument("name", help="a scheme name or call form, e.g. he_normal or \"normal(0, 0.02)\"")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=run_describe)


def _selected(prefix: str | None) -> list[Entry]:
    chosen = [e for e in entries() if not prefix or e.name.startswith(prefix)]
    if not chosen:
        raise ValueError(f"no scheme starts with {prefix!r}; "
                         "prefixes: torch:, keras:, jax:, flax:, timm:, hf:")
    return chosen


def _row(e: Entry) -> dict[str, Any]:
    return {"name": e.name, "formula": e.formula, "origin": e.origin, "reference": e.reference,
            "aliases": list(e.aliases), "summary": e.summary}


def run_catalog(args: argparse.Namespace) -> int:
    chosen = _selected(args.prefix)
    if args.json:
        print(json.dumps([_row(e) for e in chosen], indent=2))
    elif args.markdown:
        print(markdown_table(chosen))
    else:
        table = Table(title=f"initlab catalog: {len(chosen)} schemes", show_lines=False)
        for col in ("name", "formula", "origin", "reference"):
            table.add_column(col, overflow="fold")
        for e in chosen:
            name = e.name + (f" ({', '.join(e.aliases)})" if e.aliases else "")
            table.add_row(name, e.formula, e.origin, e.reference)
        Console().print(table)
    return 0


def markdown_table(chosen: list[Entry] | None = None) -> str:
    """The catalog as a Markdown table (docs/catalog.md is generated from it)."""
    lines = ["| name | formula | origin | reference |", "|---|---|---|---|"]
    for e in chosen if chosen is not None else entries():
        name = f"`{e.name}`" + (" (" + ", ".join(f"`{a}`" for a in e.aliases) + ")" if e.aliases else "")
        cells = [name, e.formula, e.origin, e.reference]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def worked_example(spec: str, shape: tuple[int, ...]) -> dict[str, Any]:
    """What ``spec`` gives on a weight of ``shape`` (torch layout): distribution, std and bounds per entry."""
    try:
        with warnings.catch_warnings():  # the example says its layout (torch's): no LayoutWarning
            warnings.simplefilter("ignore", LayoutWarning)
            draw = get(spec).resolve(shape)
    except ValueError as exc:
        return {"shape": list(shape), "error": str(exc)}
    out: dict[str, Any] = {"shape": list(shape), "draw": repr(draw)}
    if isinstance(draw, d.ELEMENTWISE):
        out["mean"], out["std"] = draw.mean, draw.std
        if isinstance(draw, d.Uniform):
            out["bounds"] = [draw.low, draw.high]
        elif isinstance(draw, d.TruncatedNormal):
            out["bounds"] = list(draw.bounds)
        elif isinstance(draw, d.Constant):
            out["bounds"] = [draw.value, draw.value]
    elif isinstance(draw, d.Orthogonal):
        rows, cols = (shape[0], math.prod(shape[1:])) if draw.flatten == "torch" else \
            (math.prod(shape[:-1]), shape[-1])
        out["std"] = draw.gain / math.sqrt(max(rows, cols))  # rows (or columns) have norm = gain
        which = "rows" if rows <= cols else "columns"
        out["note"] = f"{rows}x{cols} with orthonormal {which} times {draw.gain}"
    elif isinstance(draw, d.Sparse):
        out["std"] = draw.std * math.sqrt(1 - math.ceil(draw.sparsity * shape[0]) / shape[0])
        out["note"] = f"{math.ceil(draw.sparsity * shape[0])} zeros per column, the rest N(0, {draw.std}^2)"
    return out


def run_describe(args: argparse.Namespace) -> int:
    e = describe(args.name)
    if "(" in args.name:
        get(args.name)  # the parameters too: a bad value is an error, not a "not applicable" row
    examples = {label: worked_example(args.name, shape) for label, shape in EXAMPLES.items()}
    if args.json:
        print(json.dumps({**_row(e), "signature": e.signature(), "examples": examples}, indent=2))
        return 0
    console = Console()
    table = Table(title=f"{e.name}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for label, value in [("formula", e.formula), ("origin", e.origin), ("reference", e.reference),
                         ("summary", e.summary or "-"), ("signature", e.signature()),
                         ("aliases", ", ".join(e.aliases) or "-")]:
        table.add_row(label, value)
    for label, ex in examples.items():
        table.add_row(label, _format_example(ex))
    console.print(table)
    return 0


def _format_example(ex: dict[str, Any]) -> str:
    if "error" in ex:
        return f"not applicable: {ex['error']}"
    parts = [ex["draw"]]
    if "std" in ex:
        parts.append(f"std {ex['std']:.6g}")
    if "bounds" in ex:
        parts.append(f"bounds [{ex['bounds'][0]:.6g}, {ex['bounds'][1]:.6g}]")
    if "note" in ex:
        parts.append(ex["note"])
    return "; ".join(parts)

"""Terminal rendering of results (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from .report import Result


def result_table(result: Result) -> Table:
    table = Table(show_header=True, header_style="bold", expand=False)
    for h in result.headers:
        table.add_column(h)
    for row in result.rows:
        table.add_row(*row)
    return table


def print_result(result: Result, console: Console, *, table: bool = True) -> None:
    console.rule(f"[bold]{result.name}")
    console.print(f"[bold cyan]Q:[/] {result.question}")
    if table:
        console.print(result_table(result))
    console.print(Panel(result.answer, title="measured answer", title_align="left", border_style="green"))

"""The demo: the quick versions of four experiments, each question with its measured answer, one HTML page."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from .console import print_result
from .report import Result, write_html
from .runner import run_experiment

DEMO_EXPERIMENTS = ("symmetry", "depth-signal", "glorot-vs-he", "methods")


def run_demo(
    out: Path | str = "demo-report",
    *,
    seeds: int = 3,
    console: Console | None = None,
    progress: bool = True,
    experiments: tuple[str, ...] = DEMO_EXPERIMENTS,
) -> list[Result]:
    """Run the quick experiments into ``out/<name>/``, print each answer, write ``out/index.html``."""
    console = console or Console()
    out = Path(out)
    start = time.perf_counter()
    console.print(
        f"[bold]initlab demo[/]: {len(experiments)} quick experiments on mnist1d, {seeds} seeds each, "
        "CPU only. Every answer below is generated from the numbers measured now."
    )
    results = []
    for name in experiments:
        result = run_experiment(name, quick=True, seeds=seeds, out=out / name, progress=progress)
        print_result(result, console)
        results.append(result)
    page = write_html([out / name for name in experiments], out / "index.html", title="initlab demo")
    console.print(f"\n[bold]Report:[/] {page}  ({time.perf_counter() - start:.0f} s in all)")
    return results

"""initlab.lab: reproducible experiments that answer the classic initialization questions, and the demo.

Owns the offline datasets (mnist1d, scikit-learn digits), the training loop, the statistics over seeds, the
reports (results.json, Markdown, PNG, self-contained HTML) and the seven experiments. It may import the
catalog, the backends, :mod:`initlab.model` and :mod:`initlab.methods` (looked up at run time, so that a
missing method is reported as unavailable), torch, numpy, scipy, matplotlib, rich and tqdm; nothing in
catalog/backends/model/methods/diagnostics imports it.
"""

from __future__ import annotations

from .report import Result, find_runs, html_page, write_html
from .runner import EXPERIMENTS, Spec, run_experiment

__all__ = [
    "EXPERIMENTS",
    "Result",
    "Spec",
    "find_runs",
    "html_page",
    "run_demo",
    "run_experiment",
    "write_html",
]


def __getattr__(name: str) -> object:
    if name == "run_demo":
        from .demo import run_demo

        return run_demo
    raise AttributeError(f"module 'initlab.lab' has no attribute {name!r}")

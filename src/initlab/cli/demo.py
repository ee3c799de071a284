"""``initlab demo``: the quick tour (90-120 s wall-clock, ~35 s of CPU, on a busy 2-core machine)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="the quick tour: four experiments, measured answers, an HTML report",
        description="Runs the quick symmetry, depth-signal, glorot-vs-he and methods experiments, "
        "prints each question with its measured answer and writes OUT/index.html.",
    )
    p.add_argument(
        "--out", type=Path, default=Path("demo-report"), help="output folder (default demo-report)"
    )
    p.add_argument("--seeds", type=int, default=3, help="seeds per experiment (default 3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from initlab.lab.demo import run_demo

    from ._io import check_output_dir

    if args.seeds < 1:
        raise ValueError("--seeds must be at least 1")
    check_output_dir(args.out, "--out")
    run_demo(args.out, seeds=args.seeds, progress=not args.no_progress)
    return 0

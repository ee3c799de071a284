"""``initlab lab list | run NAME | report DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "lab",
        help="reproducible experiments on the classic initialization questions",
        description="Reproducible experiments on the classic initialization questions.",
    )
    lab = p.add_subparsers(dest="lab_command", metavar="ACTION")
    lab.add_parser("list", help="the experiments and their questions").set_defaults(func=_list)
    run = lab.add_parser("run", help="run one experiment (or 'all') and write results.json, PNGs, section.md")
    run.add_argument("name", help="experiment name (see 'initlab lab list') or 'all'")
    run.add_argument("--quick", action="store_true", help="small sizes: seconds instead of minutes")
    run.add_argument("--seeds", type=int, default=None, help="number of seeds (default 2 quick, 5 full)")
    run.add_argument(
        "--out",
        type=Path,
        default=Path("lab-results"),
        help="output folder; each experiment writes into OUT/NAME (default lab-results)",
    )
    run.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes for independent runs (default: 1 on 2 cores)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.set_defaults(func=_run)
    report = lab.add_parser("report", help="combine runs under DIR into one self-contained HTML page")
    report.add_argument("dir", type=Path)
    report.add_argument("--out", type=Path, default=None, help="HTML file (default DIR/index.html)")
    report.set_defaults(func=_report)
    p.set_defaults(func=lambda args: p.print_help())


def _list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from initlab.lab.runner import EXPERIMENTS, experiment

    table = Table("experiment", "question", header_style="bold")
    for name in EXPERIMENTS:
        table.add_row(name, experiment(name).QUESTION)
    Console().print(table)
    return 0


def _run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from initlab.lab.console import print_result
    from initlab.lab.runner import EXPERIMENTS, run_experiment

    names = EXPERIMENTS if args.name == "all" else (args.name,)
    if args.name != "all" and args.name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {args.name!r}; choose one of {', '.join(EXPERIMENTS)} or 'all'")
    if args.workers is not None and args.workers < 1:
        raise ValueError("--workers must be at least 1")
    if args.seeds is not None and args.seeds < 1:
        raise ValueError(f"--seeds must be at least 1, got {args.seeds}")
    from ._io import check_output_dir

    check_output_dir(args.out, "--out")
    console = Console()
    for name in names:
        result = run_experiment(
            name,
            quick=args.quick,
            seeds=args.seeds,
            out=args.out / name,
            workers=args.workers,
            progress=not args.no_progress,
        )
        print_result(result, console)
        console.print(f"wrote {args.out / name}/results.json, section.md, {', '.join(result.figures)}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from initlab.lab.report import find_runs, write_html

    if args.out is not None and args.out.is_dir():  # (a missing folder is created)
        raise ValueError(f"--out {args.out} is a directory: give a file name, e.g. {args.out / 'index.html'}")
    runs = find_runs(args.dir)
    path = write_html(runs, args.out or args.dir / "index.html")
    print(f"wrote {path} ({len(runs)} experiment{'s' * (len(runs) != 1)})")
    return 0

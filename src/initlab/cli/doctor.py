"""initlab doctor FILE.py:FACTORY [FILE.py:FACTORY ...] --input-shape 16,784 [--scheme NAME ...]
initlab doctor FILE.py:FACTORY --widths 64,128,256 --input-shape 16,784   (coordinate check, SP vs μP)

Diagnose a model as built and under each requested scheme (init_model on a deep copy), side by side: per-layer
signal and gradient, dead and saturated units, symmetry, and verdicts naming a fix."""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any

from ._io import check_output, load_factory

__all__ = ["load_factory", "register", "run"]

HELP = "diagnose signal propagation, dead/saturated units and symmetry of a model, per init scheme"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "doctor", help=HELP, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "targets",
        metavar="FILE.py:FACTORY",
        nargs="+",
        help="a Python file and a function in it that returns the model (or a module-level model); "
        "several are diagnosed side by side",
    )
    p.add_argument(
        "--input-shape",
        required=True,
        type=_shape,
        help="shape of the random N(0, 1) input batch, e.g. 16,784 or 8,3,32,32",
    )
    p.add_argument(
        "--scheme",
        action="append",
        default=[],
        metavar="NAME",
        help="also diagnose the model after init_model(copy, NAME); repeatable (e.g. auto, he_normal)",
    )
    p.add_argument(
        "--input-dtype",
        choices=("float32", "long"),
        default="float32",
        help="long: token ids (uniform in [0, --vocab)) for embedding models",
    )
    p.add_argument("--vocab", type=int, default=2, metavar="N",
                   help="with --input-dtype long: ids are drawn from [0, N) (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the input, the cotangent and the schemes (0)")
    p.add_argument("--jacobian", action="store_true", help="also measure the input-output Jacobian spectrum")
    p.add_argument("--html", metavar="PATH", help="write a self-contained HTML report")
    p.add_argument("--json", metavar="PATH", help="write the measurements as JSON")
    p.add_argument("--full", action="store_true", help="print every layer (long tables are elided otherwise)")
    p.add_argument("--widths", type=_shape, metavar="W1,W2,...",
                   help="coordinate check instead: FACTORY takes a width; SP vs μP over these widths")
    p.add_argument("--plot", metavar="PATH", help="with --widths: write the coordinate-check plots (PNG)")
    p.set_defaults(func=run)


def _shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in text.replace("x", ",").split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers like 16,784, got {text!r}"
        ) from None
    if not shape or any(s <= 0 for s in shape):
        raise argparse.ArgumentTypeError(f"expected positive sizes like 16,784, got {text!r}")
    return shape


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console, Group

    from ..diagnostics import compare, diagnose
    from ..diagnostics.diagnosis import MAX_ROWS
    from ..model import init_model

    for path, option in ((args.html, "--html"), (args.json, "--json")):
        if path:
            check_output(path, option)
    if args.vocab < 1:
        raise ValueError(f"--vocab must be >= 1, got {args.vocab}")
    if args.widths:
        from ..width._cli import doctor_widths

        print(doctor_widths(load_factory(args.targets[0], call=False), args.widths, args.input_shape,
                            seed=args.seed, plot=args.plot))
        return 0
    models = {target.rpartition(":")[2]: load_factory(target) for target in args.targets}
    if len(models) != len(args.targets):
        raise ValueError("give each FILE.py:FACTORY a distinct FACTORY name")
    first = next(iter(models.values()))
    dtype = next((p.dtype for p in first.parameters() if p.is_floating_point()), torch.float32)
    gen = torch.Generator().manual_seed(args.seed)
    if args.input_dtype == "long":
        batch = torch.randint(0, args.vocab, args.input_shape, generator=gen)
    else:
        batch = torch.randn(args.input_shape, generator=gen).to(dtype)
    runs = {("as built" if len(models) == 1 else name): m for name, m in models.items()}
    for scheme in args.scheme:
        for name, m in models.items():
            candidate = copy.deepcopy(m)
            init_model(candidate, scheme, seed=args.seed)
            runs[scheme if len(models) == 1 else f"{name}: {scheme}"] = candidate
    diagnoses = {
        label: diagnose(m, batch, seed=args.seed, jacobian=args.jacobian) for label, m in runs.items()
    }
    console = Console(width=None if sys.stdout.isatty() else 160)
    max_rows = None if args.full else MAX_ROWS
    if len(diagnoses) == 1:
        only = next(iter(diagnoses.values()))
        console.print(Group(only.table(max_rows), only.summary_text(), only.verdict_text()))
        report: Any = only
    else:
        report = compare(diagnoses)
        console.print(Group(report.layer_table(max_rows), report))
    if args.html:
        report.to_html(args.html)
        console.print(f"wrote {args.html}")
    if args.json:
        report.to_json(args.json)
        console.print(f"wrote {args.json}")
    return 0

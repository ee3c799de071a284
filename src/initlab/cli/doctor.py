"""initlab doctor FILE.py:FACTORY [FILE.py:FACTORY ...] --input-shape 16,784 [--scheme NAME ...]
initlab doctor FILE.py:FACTORY --widths 64,128,256 --input-shape 16,784   (coordinate check, SP vs μP)

Diagnose a model as built and under each requested scheme (init_model on a deep copy), side by side: per-layer
signal and gradient, dead and saturated units, symmetry, and verdicts naming a fix."""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import sys
from typing import Any

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


def load_factory(target: str, call: bool = True) -> Any:
    """The model built by ``FILE.py:NAME`` (NAME a callable returning a module, or a module); with
    ``call=False`` the callable itself."""
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise ValueError(f"expected FILE.py:FACTORY, got {target!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    spec = importlib.util.spec_from_file_location(f"_initlab_doctor_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise ValueError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.pop(0)
    if not hasattr(module, name):
        public = [n for n in vars(module) if not n.startswith("_")]
        raise ValueError(f"{path} defines no {name!r}; it defines {', '.join(public[:12])}")
    obj = getattr(module, name)
    if not call:
        if not callable(obj) or _is_module(obj):
            raise TypeError(f"{target} must be a function of the width, got {type(obj).__name__}")
        return obj
    model = obj() if callable(obj) and not _is_module(obj) else obj
    if not _is_module(model):
        raise TypeError(f"{target} returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def _is_module(obj: Any) -> bool:
    from torch import nn

    return isinstance(obj, nn.Module)


def run(args: argparse.Namespace) -> int:
    import torch
    from rich.console import Console, Group

    from ..diagnostics import compare, diagnose
    from ..diagnostics.diagnosis import MAX_ROWS
    from ..model import init_model

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
    batch = torch.randn(args.input_shape, generator=torch.Generator().manual_seed(args.seed)).to(dtype)
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

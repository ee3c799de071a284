"""``initlab init FILE.py:FACTORY``: build a model, initialize it, print the report, write the weights.

    initlab init model.py:build --scheme auto --input-shape 32,3,32,32 --out weights.safetensors --seed 0

The state dict goes to a safetensors file (tied weights stored once, as safetensors requires); ``--json``
prints the report as JSON instead of a table.
"""

from __future__ import annotations

import sys
from typing import Any

import torch

from ._io import apply_umask, check_output, load_factory
from .doctor import _shape


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "init",
        help="initialize a model and print what was done",
        description="Build the model FILE.py:FACTORY returns, initialize it with "
        "initlab.init_model, print the report and write the weights.",
    )
    p.add_argument(
        "target", metavar="FILE.py:FACTORY", help="a file and a callable in it that returns a model"
    )
    p.add_argument("--scheme", default="auto", help="auto (default), a catalog scheme or a profile")
    p.add_argument(
        "--input-shape",
        type=_shape,
        metavar="SHAPE",
        help="example input shape, e.g. 32,3,32,32 (random normal; lets discovery run the model)",
    )
    p.add_argument(
        "--input-dtype",
        choices=("float32", "long"),
        default="float32",
        help="long: token ids (zeros) for embedding models",
    )
    p.add_argument("--out", metavar="PATH", help="write the initialized state dict (.safetensors)")
    p.add_argument("--seed", type=int, default=None, help="seed of the weights (and of the example input)")
    p.add_argument("--dry-run", action="store_true", help="plan only: print the report, change nothing")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run)


def run(args: Any) -> int:
    from ..model import init_model

    if args.out and not args.dry_run:
        check_output(args.out, "--out")
    model = load_factory(args.target)
    example = None
    if args.input_shape:
        if args.input_dtype == "long":
            example = torch.zeros(args.input_shape, dtype=torch.long)
        else:
            g = torch.Generator().manual_seed(0 if args.seed is None else args.seed)
            example = torch.randn(args.input_shape, generator=g)
    report = init_model(model, args.scheme, example_input=example, seed=args.seed, dry_run=args.dry_run)
    if args.json:
        print(report.to_json())
    else:
        from rich.console import Console

        Console(width=160).print(report)
    if args.out and not args.dry_run:
        save_weights(model, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def save_weights(model: torch.nn.Module, path: str) -> None:
    """The state dict as safetensors; a tensor shared by several names (tied weights) is stored once."""
    from safetensors.torch import save_file

    tensors: dict[str, torch.Tensor] = {}
    seen: dict[int, str] = {}
    aliases: dict[str, str] = {}
    for name, t in model.state_dict(keep_vars=False).items():
        key = t.untyped_storage().data_ptr() if t.numel() else -len(tensors) - 1
        if key in seen and t.shape == tensors[seen[key]].shape:
            aliases[name] = seen[key]
            continue
        seen[key] = name
        tensors[name] = t.detach().contiguous().cpu()
    save_file(tensors, path, metadata={f"tied:{k}": v for k, v in aliases.items()} or None)
    apply_umask(path)  # safetensors creates files 0600

"""Warnings raised inside initlab on the zoo's models: ``auto``, ``diagnose``, ``he_normal`` and LSUV on
each model at its constructed weights, every warning recorded, those whose source file is initlab's kept.
A library's internal arithmetic (a quadrature that overflows where the walker then reports no prediction)
should not reach the user as numpy's RuntimeWarnings; the warnings initlab means to give point at the
caller's line (``stacklevel``), so they are not counted here.

    python benchmarks/zoo_warnings.py --out benchmarks/results/zoo_warnings.txt
    python benchmarks/zoo_warnings.py --only rwkv,csatv2
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _zoo_models as zm
import initlab
import zoo

OURS = os.path.dirname(initlab.__file__)


def run(entry: zm.Entry) -> tuple[list[str], str | None]:
    """The warnings raised inside initlab on ``entry`` (``file:line category: message``), and the first
    error of a call that failed (None: none did)."""
    torch.manual_seed(0)
    model = entry.build().train()
    example = entry.make_input(model, torch.Generator().manual_seed(1))
    try:
        with torch.no_grad():
            zoo.forward(model, example)
    except Exception:  # too small for this architecture: its own size, as zoo.py does
        assert entry.full_input is not None
        example = entry.full_input(model, torch.Generator().manual_seed(1))
    calls = (lambda: initlab.init_model(model, "auto", example_input=example, seed=0),
             lambda: initlab.diagnose(model, example, seed=0),
             lambda: initlab.init_model(model, "he_normal", example_input=example, seed=0),
             lambda: initlab.lsuv(model, example, seed=0))
    error = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for call in calls:
            try:
                call()
            except Exception as exc:  # reported, and the other calls still run
                error = error or f"{type(exc).__name__}: {str(exc)[:120]}"
    ours = [f"{os.path.relpath(w.filename, OURS)}:{w.lineno} {w.category.__name__}: {str(w.message)[:100]}"
            for w in caught if w.filename.startswith(OURS)]
    return ours, error


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated model names (default: all but vit_h_14)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = set(filter(None, args.only.split(",")))
    lines, clean, seen = [], 0, 0
    for entry in zm.all_entries():
        if (names and entry.name not in names) or (not names and entry.name == "vit_h_14"):
            continue
        ours, error = run(entry)
        seen += 1
        clean += not ours and error is None
        found = [f"{entry.source:12} {entry.name:30} {w}" for w in ours] + (
            [f"{entry.source:12} {entry.name:30} failed: {error}"] if error else [])
        print("\n".join(found) or f"{entry.name}: none", flush=True)
        lines += found
        gc.collect()
    head = (f"# warnings raised inside initlab by auto, diagnose, he_normal and LSUV: {clean} of {seen} "
            "models with none and no failed call")
    text = "\n".join([head, *lines]) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()

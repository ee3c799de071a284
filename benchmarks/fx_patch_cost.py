"""What fx's patch of ``nn.Module`` costs a trace as a process loads module classes, measured in one run.

torch.fx sets wrappers on ``nn.Module.__call__``/``__getattr__`` for every trace and takes them off after;
CPython updates every subclass on each such write. A process that imported timm holds ~1350 module classes,
one that built the zoo's transformers models ~3050. initlab's tracer sets the same wrappers on the traced
model's own classes (:mod:`initlab.model._fx_tracer`). Printed per number of extra classes defined here
(a transformers-like hierarchy: a base class per family, a few levels of subclasses): the median seconds of
one fx trace (after a warm-up) with fx's own tracer (the baseline: the same leaves) and with initlab's,
and their ratio.

    python benchmarks/fx_patch_cost.py [--classes 0,1000,3000] [--repeats 7]
"""

from __future__ import annotations

import argparse

import torch
from torch import fx, nn

from initlab.model._fx_tracer import LeafTracer
from lsuv_cost import median_time  # (benchmarks/ is the script's path)

_KEEP: list[type] = []  # the defined classes stay alive, as imported ones do


def add_classes(n: int) -> None:
    """``n`` more nn.Module subclasses: families of 10, each a chain of 3 levels under its own base."""
    for f in range(n // 10):
        base = type(f"Base{len(_KEEP)}_{f}", (nn.Module,), {"forward": lambda self, x: x})
        _KEEP.append(base)
        for k in range(9):
            parent = _KEEP[-1] if k % 3 else base
            _KEEP.append(type(f"Sub{len(_KEEP)}_{f}_{k}", (parent,), {}))


def small_model() -> nn.Module:
    return nn.Sequential(*(nn.Sequential(nn.Linear(32, 32), nn.GELU(), nn.LayerNorm(32)) for _ in range(6)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--classes", default="0,1000,3000", help="comma-separated totals of extra classes")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = small_model()
    leaves = {id(m) for m in model.modules() if not m._modules}

    class FxOwn(fx.Tracer):  # fx's patching, the same leaves
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return id(m) in leaves

    assert str(FxOwn().trace(model)) == str(LeafTracer(leaves).trace(model))
    print(f"{'extra classes':>13} {'module classes':>14} {'fx own (s)':>11} {'initlab (s)':>11} {'ratio':>6}")
    for total in (int(c) for c in args.classes.split(",")):
        add_classes(total - (len(_KEEP) // 10) * 10)
        n_classes = len(_subclasses(nn.Module))
        base = median_time(lambda: FxOwn().trace(model), args.repeats)
        ours = median_time(lambda: LeafTracer(leaves).trace(model), args.repeats)
        print(f"{total:>13} {n_classes:>14} {base:>11.4f} {ours:>11.4f} {ours / base:>6.2f}")


def _subclasses(cls: type) -> set[type]:
    seen: set[type] = set()
    stack = [cls]
    while stack:
        for sub in type.__subclasses__(stack.pop()):
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return seen


if __name__ == "__main__":
    main()

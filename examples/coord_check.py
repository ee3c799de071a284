"""Coordinate check of the width-transfer experiment's MLP, Transformer and character-level LM, SP vs
initlab μP (5 Adam steps, lr 2^-7, 64 mnist1d samples or 64 windows of 32 bytes):
``python examples/coord_check.py docs/results/width-transfer [ARCH ...]`` writes ``coord_check.json`` (the
archs run are updated in it) and the ``coord_*.png`` figures there."""

import json
import os
import sys
from functools import partial

from initlab.lab.experiments._common import dataset
from initlab.lab.experiments._width_models import build, char_data
from initlab.width import coord_check

WIDTHS = {a: [64, 128, 256, 512, 1024] for a in ("mlp", "transformer", "char-lm")}


def make(arch: str, param: str, width: int):
    # SP builds attention with 1/sqrt(head_dim), μP with sqrt(base head_dim)/head_dim (the change the μP
    # report names: 1/head_dim, equal to SP's scale at the base width)
    return build(arch, width, param, WIDTHS[arch][0]).to_empty(device="cpu")


def batch_of(arch: str):
    if arch == "char-lm":
        import torch

        return char_data()[0](torch.Generator().manual_seed(0), 64)
    data = dataset()
    return data.x_train[:64], data.y_train[:64]


def main(out: str, archs: list[str]) -> None:
    path = f"{out}/coord_check.json"
    res = {}
    if os.path.exists(path):
        with open(path) as fh:
            res = json.load(fh)
    for arch in archs or list(WIDTHS):
        widths, batch = WIDTHS[arch], batch_of(arch)
        for p, label in (("sp", "SP"), ("mup", "initlab μP")):
            r = coord_check(partial(make, arch, label), widths, batch, steps=5, lr=2**-7, parametrization=p)
            print(arch, r, flush=True)
            r.plot(f"{out}/coord_{arch}_{p}.png")
            res[f"{arch}/{p}"] = {"widths": r.widths, "delta": r.delta, "init": r.init,
                                  "exponent_delta": {x: r.exponent(x) for x in r.layers},
                                  "ratio_delta": {x: r.ratio(x) for x in r.layers}}
    with open(path, "w") as fh:
        json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])

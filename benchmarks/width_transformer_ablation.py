"""Why was the μP Transformer worse at width 128 than at 64 in ``initlab lab run width-transfer``?

That run (3 seeds, 40 Adam steps of batch 16) found the held-out loss at the shared best LR 2^-8 rising by
0.053 ± 0.007 from width 64 to 128 (paired over seeds), then flat. This script reruns the step with more
seeds, and with one piece of μP changed at a time, each beside plain initlab μP in the same run:

- ``mup``: initlab μP as in the lab (``init_model(model, "mup", base=...)`` + ``mup_param_groups``);
- ``sp-attention-scale``: μP with SP's 1/sqrt(head_dim) attention scale instead of sqrt(base head)/head;
- ``sp-readout-init``: μP with the readout drawn at SP's scale (×sqrt(width_mult));
- ``zero-readout``: μP with a zero readout (Tensor Programs V allows it);
- ``zero-query``: μP with the query block of qkv zeroed (Tensor Programs V's recommendation);
- ``no-lr-scaling``: μP init, every parameter at the base LR (hidden LRs not divided by width_mult);

and at a longer horizon (``--steps 150 --batch 32``). Per variant and LR: the mean held-out loss per width
and the paired width-to-next differences ± their SE over seeds.

    PYTHONPATH=src python benchmarks/width_transformer_ablation.py            # 6 seeds, 40 steps of 16
    PYTHONPATH=src python benchmarks/width_transformer_ablation.py --steps 150 --batch 32 --variants mup
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

import numpy as np
import torch

from initlab.lab.experiments import _width_models as W
from initlab.model import init_model
from initlab.width import mup_param_groups

VARIANTS = ("mup", "sp-attention-scale", "sp-readout-init", "zero-readout", "zero-query", "no-lr-scaling")


def setup(variant: str, width: int, base_width: int, lr: float, seed: int) -> tuple[Any, Any]:
    scale_base = None if variant == "sp-attention-scale" else base_width
    with torch.device("meta"):
        model, base = W.SeqTransformer(width, base=scale_base), W.SeqTransformer(base_width, base=scale_base)
    model = model.to_empty(device="cpu")
    init_model(model, "mup", base=base, seed=seed)
    with torch.no_grad():
        if variant == "sp-readout-init":
            model.head.weight.mul_(math.sqrt(width / base_width))
        elif variant == "zero-readout":
            model.head.weight.zero_()
        elif variant == "zero-query":
            model.block.qkv.weight[:width].zero_()
    groups = mup_param_groups(model, lr, "adam", base=base)
    if variant == "no-lr-scaling":
        for g in groups:
            g["lr"] = lr
    return model, torch.optim.Adam(groups)


def held_out_loss(variant: str, width: int, base_width: int, lr: float, seed: int, steps: int,
                  batch: int) -> float:
    """The lab's run (its batches, its held-out set of 1000) for one variant."""
    model, opt = setup(variant, width, base_width, lr, seed)
    return W.train(model, opt, seed, steps, batch, 1000)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--widths", default="64,128,256")
    ap.add_argument("--log2-lrs", default="-8,-7")
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    torch.set_num_threads(1)
    widths = [int(w) for w in args.widths.split(",")]
    out: dict[str, Any] = {"steps": args.steps, "batch": args.batch, "seeds": args.seeds, "widths": widths,
                           "loss": {}}
    print(f"| variant | log2 lr | held-out loss per width ({' / '.join(map(str, widths))}) | "
          "paired Δ width to next (± SE) |\n|---|---|---|---|")
    for variant in args.variants.split(","):
        for lr in (int(x) for x in args.log2_lrs.split(",")):
            t0 = time.perf_counter()
            loss = np.array([[held_out_loss(variant, w, widths[0], 2.0**lr, s, args.steps, args.batch)
                              for s in range(args.seeds)] for w in widths])
            out["loss"].setdefault(variant, {})[str(lr)] = loss.tolist()
            d = np.diff(loss, axis=0)
            steps = ", ".join(f"{a}->{b}: {m:+.3f} ± {se:.3f}" for a, b, m, se in zip(
                widths, widths[1:], d.mean(1), d.std(1, ddof=1) / math.sqrt(args.seeds), strict=False))
            print(f"| {variant} | {lr} | {' / '.join(f'{x:.3f}' for x in loss.mean(1))} | {steps} | "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()

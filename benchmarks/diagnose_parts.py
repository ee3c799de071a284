"""What diagnose's weight statistics and discovery cost, part by part, against one plain forward+backward of
the same zoo model in the same run (one thread; medians of ``--repeats``).

Each row puts the way it is done now beside the way it was done before this round (issue 13's diagnose
target), both measured here:

- weight means: ``stats.means`` (summed in the tensors' own dtype) against ``mean(dtype=float64)``;
- effective ranks: ``stats.effective_ranks`` with the default limit (128 units) against the old 256;
- discovery (``sizes=False``, as diagnose calls it, no cache): with each module's layer type decided once
  (``types_decided_once``) against asking the registry every time.

And, to show where the limit sits, one float32 ``eigvalsh`` per Gram size 64, 128 and 256.

    PYTHONPATH=src python benchmarks/diagnose_parts.py [--models tv/resnet50,tv/regnet_x_400mf,...]
"""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

import torch

from _zoo_models import all_entries, timm_entry
from initlab.diagnostics import stats
from initlab.diagnostics.sites import layer_sites
from initlab.model import graph as G
from lsuv_cost import median_time as seconds  # median of repeats after a warm-up call
from zoo import forward, fwd_bwd

MODELS = ("tv/resnet50,tv/regnet_x_400mf,timm/convnext_pico,timm/efficientnet_b0,tv/mobilenet_v2,hf/bert-mlm,"
          "hf/llama")


def build(spec: str) -> tuple[torch.nn.Module, Any]:
    source, name = spec.split("/")
    source = {"tv": "torchvision"}.get(source, source)
    entry = timm_entry(name) if source == "timm" else next(
        e for e in all_entries((source,)) if e.name == name)
    torch.manual_seed(0)
    model = entry.build().train()
    example = entry.make_input(model, torch.Generator().manual_seed(1))
    with torch.no_grad():
        forward(model, example)
    return model, example


def row(spec: str, repeats: int) -> str:
    model, example = build(spec)
    plain = seconds(lambda: fwd_bwd(model, example), repeats)
    sites, _ = layer_sites(model, example)
    tensors = list({id(p): p.detach() for p in model.parameters()}.values())
    weights = list({id(s.module): (w, s.transposed) for s in sites
                    if (w := getattr(s.module, "weight", None)) is not None and w.dim() >= 2}.values())
    def means_f64() -> list[float]:  # the code before: each entry converted to float64 on the way
        return torch.stack([t.mean(dtype=torch.float64) for t in tensors]).tolist()

    def discover() -> Any:
        return G.discover(model, example, sizes=False, cache=False)

    parts = {
        "means": seconds(lambda: stats.means(tensors), repeats),
        "means_f64": seconds(means_f64, repeats),
        "ranks": seconds(lambda: stats.effective_ranks(weights), repeats),
    }
    limit, stats.RANK_LIMIT = stats.RANK_LIMIT, 256
    try:
        parts["ranks_256"] = seconds(lambda: stats.effective_ranks(weights), repeats)
    finally:
        stats.RANK_LIMIT = limit
    parts["discover"] = seconds(discover, repeats)
    once, G.types_decided_once = G.types_decided_once, contextlib.nullcontext
    try:
        parts["discover_asking"] = seconds(discover, repeats)
    finally:
        G.types_decided_once = once
    cells = " | ".join(f"{parts[k] / plain:.2f}×" for k in (
        "means_f64", "means", "ranks_256", "ranks", "discover_asking", "discover"))
    return f"| {spec} | {plain * 1e3:.0f} ms | {cells} |"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default=MODELS)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()
    torch.set_num_threads(1)
    for n in (64, 128, 256):
        grams = torch.randn(8, n, 3 * n, generator=torch.Generator().manual_seed(0))
        grams = grams @ grams.transpose(1, 2)
        each = seconds(lambda grams=grams: torch.linalg.eigvalsh(grams), args.repeats) / 8
        print(f"eigvalsh of one {n}x{n} float32 Gram: {each * 1e3:.2f} ms")
    print("\nEach part's time / one plain forward+backward (before → now):\n")
    print("| model | forward+backward | means float64 | means own dtype | ranks ≤256 | ranks ≤128 "
          "| discovery, asking | discovery, decided once |")
    print("|---|---|---|---|---|---|---|---|")
    for spec in args.models.split(","):
        print(row(spec, args.repeats), flush=True)


if __name__ == "__main__":
    main()

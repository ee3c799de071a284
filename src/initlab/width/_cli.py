"""``initlab doctor FILE.py:FACTORY --widths 64,128,256``: the coordinate check under SP and μP, as text."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ._coord import coord_check


def doctor_widths(factory: Callable[[int], nn.Module], widths: Sequence[int], input_shape: Sequence[int], *,
                  seed: int = 0, steps: int = 5, lr: float = 1e-2, plot: str | None = None) -> str:
    """Run the coordinate check of ``factory(width)`` on an N(0, 1) batch (loss: the mean output) under SP
    and μP (base width: the smallest); return the verdicts. ``plot``: a PNG per parametrization."""
    if len(widths) < 2:
        raise ValueError(f"--widths needs at least two widths, got {list(widths)}")
    x = torch.randn(tuple(input_shape), generator=torch.Generator().manual_seed(seed))
    lines = []
    for p in ("sp", "mup"):
        result = coord_check(factory, widths, x, steps=steps, lr=lr, parametrization=p, seeds=(seed,))
        lines.append(str(result))
        worst = result.unstable("delta")
        lines.append(f"  verdict ({p}): " + ("every layer's change stays within 2x across widths" if not worst
                     else f"change not width-stable in {', '.join(worst)}"))
        if plot:
            path = plot.replace(".png", f"_{p}.png") if plot.endswith(".png") else f"{plot}_{p}.png"
            result.plot(path)
            lines.append(f"  wrote {path}")
    return "\n".join(lines)

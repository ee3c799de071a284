"""Singular values of the input-output Jacobian on a few samples (dynamical isometry: their spread in dB)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from .recorder import first_tensor

SAMPLES = 4
MAX_ENTRIES = 1 << 24  # of the Jacobian of the sample batch: 64 MiB in float32


def jacobian_spectrum(model: nn.Module, batch: Any, samples: int = SAMPLES) -> dict[str, float]:
    """Pooled singular values of d output / d input for the first ``samples`` samples of the (first) input.

    The samples go through the model together (so batch-statistics layers still work) and each sample's own
    block of the Jacobian is kept. Returns max, min, median, the mean square and ``spread_db`` =
    20·log10(max/min).
    """
    x, rebuild = _first_input(batch)
    x = x[:samples].detach().clone()
    k = x.shape[0]
    out = _output(model, rebuild(x))
    if k == 0 or out.numel() == 0:
        raise ValueError("jacobian=True needs a non-empty input and output")
    if out.numel() * x.numel() > MAX_ENTRIES:
        raise ValueError(
            f"the Jacobian of {k} samples would have {out.numel() * x.numel():,} entries "
            f"(output {tuple(out.shape[1:])} x input {tuple(x.shape[1:])}); use jacobian=False or "
            "a smaller input"
        )

    def f(inp: torch.Tensor) -> torch.Tensor:
        return _output(model, rebuild(inp)).reshape(k, -1).float()

    try:
        jac = torch.autograd.functional.jacobian(f, x, vectorize=True)
    except RuntimeError:  # an op without a batching rule
        jac = torch.autograd.functional.jacobian(f, x)
    jac = jac.reshape(k, -1, k, x[0].numel())
    blocks = torch.stack([jac[i, :, i, :] for i in range(k)]).double()
    s = torch.linalg.svdvals(blocks).reshape(-1)
    smax, smin = float(s.max()), float(s.min())
    spread = math.inf if smin == 0 else 20.0 * math.log10(smax / smin) if smax > 0 else 0.0
    return {
        "max": smax,
        "min": smin,
        "median": float(s.median()),
        "mean_square": float((s * s).mean()),
        "spread_db": spread,
        "samples": float(k),
    }


def _first_input(batch: Any) -> tuple[torch.Tensor, Any]:
    if isinstance(batch, torch.Tensor):
        x = batch

        def rebuild(t: torch.Tensor) -> Any:
            return t
    elif isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
        x = batch[0]
        rest = list(batch[1:])

        def rebuild(t: torch.Tensor) -> Any:
            return (t, *[r[: t.shape[0]] if isinstance(r, torch.Tensor) and r.dim() else r for r in rest])
    else:
        raise ValueError("jacobian=True needs the batch to be a tensor or a tuple whose first item is one")
    if not x.is_floating_point() or x.dim() == 0:
        raise ValueError("jacobian=True needs a floating-point input with a batch dimension")
    return x, rebuild


def _output(model: nn.Module, inputs: Any) -> torch.Tensor:
    out = first_tensor(model(*inputs) if isinstance(inputs, tuple) else model(inputs))
    if out is None:
        raise ValueError("the model returned no tensor to take the Jacobian of")
    return out

"""The check the propagation tests share: build a small module, plan it from an example with ``auto``, and
measure one layer's output second moment on fresh batches against the plan's prediction for it."""

from __future__ import annotations

import torch
from torch import nn

from initlab.model import init_model


def gaussian(*shape: int, seed: int) -> torch.Tensor:
    """A unit Gaussian batch of ``shape`` from its own generator (the global one untouched)."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def untraceable(cls: type[nn.Module]) -> type[nn.Module]:
    """``cls`` with data-dependent control flow in its forward: fx cannot trace it, so discovery records
    a hooked forward pass instead (the same module under the other discovery)."""

    class Untraceable(cls):  # type: ignore[misc, valid-type]
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) if bool(x.sum() != 0) else x

    Untraceable.__name__ = f"Untraceable{cls.__name__}"
    return Untraceable


def planned(model: nn.Module, layer: str, example: torch.Tensor, method: str) -> float:
    """Plan ``model`` with ``auto`` from ``example`` (discovered by ``method``); the output second moment
    the plan predicts for ``layer``."""
    report = init_model(model, "auto", example_input=example, seed=0)
    assert report.method == method, (type(model).__name__, report.method)
    predicted = next((r.var_out for r in report.rows if r.layer == layer and r.var_out is not None), None)
    assert predicted is not None, layer
    return predicted


def measured(model: nn.Module, layer: str, batch: torch.Tensor) -> tuple[float, float]:
    """E[y^2] of ``layer``'s output (an attention module's: its first) on ``batch``, and 5 standard errors of
    it (over the samples, which are independent)."""
    seen: list[torch.Tensor] = []
    handle = model.get_submodule(layer).register_forward_hook(
        lambda m, a, y: seen.append((y[0] if isinstance(y, tuple) else y).detach().double().square()
                                    .flatten(1).mean(1)))
    try:
        with torch.no_grad():
            model(batch)
    finally:
        handle.remove()
    per_sample = seen[0]
    return float(per_sample.mean()), 5 * float(per_sample.std()) / len(per_sample) ** 0.5

"""A backward pass that runs the forward again -- activation checkpointing (``torch.utils.checkpoint``, what
HF's ``gradient_checkpointing_enable`` turns on), Reformer's reversible layers -- is not recorded a second
time: its layers' calls outnumbered the gradients asked for, and diagnose failed with an internal
``zip()`` ValueError on non-reentrant checkpointing and on HF's Reformer; a monitor, whose hooks the user's
own ``loss.backward()`` reaches, recorded the checkpointed layers twice (``block.0#2``, ``block.2#2``). A
layer whose first run had no grad (a reentrant checkpoint runs its forward under ``no_grad``) takes its
gradient from the rerun's output, checked against the same model checkpointed without reentrance."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

import initlab


class Checkpointed(nn.Module):
    def __init__(self, reentrant: bool) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 16))
        self.head = nn.Linear(16, 4)
        self.reentrant = reentrant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(checkpoint(self.block, x, use_reentrant=self.reentrant))


@pytest.mark.filterwarnings("ignore:None of the inputs have requires_grad")
@pytest.mark.parametrize("reentrant", [False, True])
def test_a_checkpointed_model_is_diagnosed_once_per_layer(reentrant: bool) -> None:
    torch.manual_seed(0)
    model = Checkpointed(reentrant)
    diagnosis = initlab.diagnose(model, torch.randn(8, 16, generator=torch.Generator().manual_seed(1)))
    assert [layer.name for layer in diagnosis.layers] == ["block.0", "block.2", "head"]
    head = diagnosis.layers[-1]
    assert head.grad_norm is not None and head.grad_norm > 0
    if not reentrant:  # (torch.autograd.grad does not enter a reentrant checkpoint: no gradient to read)
        assert all(layer.grad_norm is not None and layer.grad_norm > 0 for layer in diagnosis.layers)


def _monitored(reentrant: bool) -> list[float | None]:
    """The gradient norms a monitor records on the second of two SGD steps of the checkpointed model."""
    torch.manual_seed(0)
    model = Checkpointed(reentrant)
    # (a reentrant checkpoint passes gradients only into a block whose input requires grad, as HF's
    # enable_input_require_grads arranges)
    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(1), requires_grad=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    with initlab.monitor(model, every=1) as mon:
        for _ in range(2):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
            snap = mon.step()
    assert snap is not None
    assert [layer.name for layer in snap.diagnosis.layers] == ["block.0", "block.2", "head"]
    return [layer.grad_norm for layer in snap.diagnosis.layers]


@pytest.mark.filterwarnings("ignore:None of the inputs have requires_grad")
def test_a_monitor_records_a_checkpointed_layer_once_with_its_gradient() -> None:
    plain = _monitored(False)
    assert all(g is not None and g > 0 for g in plain)
    # a reentrant checkpoint's first forward runs without grad: the gradient is read from the rerun's output
    assert _monitored(True) == pytest.approx(plain, rel=1e-6)

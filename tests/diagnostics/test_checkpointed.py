"""A backward pass that runs the forward again -- activation checkpointing (``torch.utils.checkpoint``, what
HF's ``gradient_checkpointing_enable`` turns on), Reformer's reversible layers -- is not recorded a second
time: its layers' calls outnumbered the gradients asked for, and diagnose failed with an internal
``zip()`` ValueError on non-reentrant checkpointing and on HF's Reformer."""

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
    if not reentrant:  # (a reentrant checkpoint's first forward runs without grad: no gradient to read)
        assert all(layer.grad_norm is not None and layer.grad_norm > 0 for layer in diagnosis.layers)

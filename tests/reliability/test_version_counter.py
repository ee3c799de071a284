"""The counter generator bumps autograd's version counter like torch's in-place fills (issue 14 item 5)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from initlab.backends.counter.fill import counter_fill_
from initlab.catalog.draws import Normal


@pytest.mark.parametrize("generator", ["counter", "torch"])
def test_backward_after_init_raises_like_torch(generator):  # type: ignore[no-untyped-def]
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2))
    x = torch.randn(3, 4, requires_grad=True)
    loss = model(x).pow(2).sum()  # saves the weights for the backward
    initlab.init_model(model, "he_normal", seed=0, generator=generator)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_counter_fill_bumps_version():  # type: ignore[no-untyped-def]
    w = torch.empty(4, 6)
    before = w._version
    counter_fill_(w, Normal(0.0, 1.0), seed=0, name="w")
    assert w._version > before

"""A graph found by running the model (hooks discovery) is reused for the same example input only: the same
tensor objects at the same version, on the unchanged model (``init_model`` then ``diagnose`` on one batch run
discovery once); another tensor, an in-place change of the input or a changed model run it again."""

from __future__ import annotations

import torch
from torch import nn

import initlab
from initlab.model.graph import discover

CALLS: list[int] = []  # outside the module: an attribute forward writes is part of the graph's key


class Branchy(nn.Module):  # data-dependent control flow: fx cannot trace it, discovery runs the model
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 2)

    @property
    def calls(self) -> int:
        return len(CALLS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CALLS.append(1)
        h = torch.relu(self.a(x))
        if bool(h.sum() > -1e9):
            h = h * 1.0
        return self.b(h)


def test_same_input_same_graph_without_a_forward() -> None:
    model = Branchy()
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    g1 = discover(model, x)
    assert g1.method == "hooks"
    calls = model.calls
    assert discover(model, x) is g1 and model.calls == calls
    assert discover(model, {"x": x}) is not g1  # another input structure


def test_changed_input_or_model_rediscovers() -> None:
    model = Branchy()
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    g1 = discover(model, x)
    assert discover(model, x.clone()) is not g1  # equal values, another tensor
    g2 = discover(model, x)
    x.mul_(2.0)  # in place: the version counter moves
    assert discover(model, x) is not g2
    g3 = discover(model, x)
    model.b = nn.Linear(8, 3)
    assert discover(model, x) is not g3
    assert discover(model, x, cache=False) is not discover(model, x, cache=False)


def test_init_then_diagnose_discovers_once() -> None:
    model = Branchy()
    x = torch.randn(4, 8, generator=torch.Generator().manual_seed(0))
    initlab.init_model(model, "auto", example_input=x, seed=0)
    after_init = model.calls
    initlab.diagnose(model, x)
    assert model.calls == after_init + 1  # the measured pass only

"""A preprocessing inside the forward (values computed from the model's input and constants alone) takes
the moments the example shows, under either discovery. Propagated, CSATv2's stem -- each DCT coefficient
less its own fixed mean, over its own fixed deviation -- was read as one signal 300x too large for the three
convs after it (and fx left the divisor, a tensor it made an attribute, unread: "a zero input"). A dropout
runs as the identity in discovery's pass, so what follows one keeps the propagation's reading."""

from __future__ import annotations

import pytest
import torch
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

from initlab.model import init_model

D = 16


class Stem(nn.Module):
    """Inputs scaled to pixels, then normalized by per-feature statistics that do not fit them."""

    def __init__(self, dropout: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.linspace(100.0, 150.0, D))
        self.register_buffer("var", torch.linspace(1.0, 400.0, D))
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(D, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * 255 + 128
        x = (x - self.mean) / (self.var**0.5 + 1e-8)  # fx: the divisor is a tensor computed outside the graph
        return self.fc(self.drop(x))


@pytest.mark.parametrize("cls, method", [(Stem, "fx"), (untraceable(Stem), "hooks")])
def test_a_preprocessing_takes_the_moments_the_example_shows(cls: type[nn.Module], method: str) -> None:
    torch.manual_seed(0)
    model = cls()
    predicted = planned(model, "fc", gaussian(512, D, seed=1), method)
    got, five_se = measured(model, "fc", gaussian(512, D, seed=2))
    # the realized draw of the 32x16 weight: its rows' squared norms are chi-square(16)/16, averaged over 32
    # rows, relative s.d. sqrt(2 / (16 * 32)) = 0.06; 5 of those, plus 5 standard errors of the measurement
    assert abs(got - predicted) <= five_se + 5 * (2 / (D * 32)) ** 0.5 * predicted, (got, predicted)


@pytest.mark.parametrize("cls, method", [(Stem, "fx"), (untraceable(Stem), "hooks")])
def test_what_follows_a_dropout_keeps_its_training_scale(cls: type[nn.Module], method: str) -> None:
    torch.manual_seed(0)
    model = cls(dropout=0.5).train()
    predicted = planned(model, "fc", gaussian(512, D, seed=1), method)
    with torch.random.fork_rng():
        torch.manual_seed(3)
        got, five_se = measured(model, "fc", gaussian(512, D, seed=2))  # dropout active: twice the moment
    assert abs(got - predicted) <= five_se + 5 * (2 / (D * 32)) ** 0.5 * predicted, (got, predicted)


def test_a_trace_leaves_no_attribute_on_the_model() -> None:
    """fx stows a tensor the forward computed outside the graph (``var ** 0.5 + eps``) on the traced model
    as ``_tensor_constant0``: every init_model call left one more attribute on the user's model."""
    model = Stem()
    before = set(vars(model))
    for seed in range(3):
        init_model(model, "auto", example_input=gaussian(64, D, seed=1), seed=seed)
    assert set(vars(model)) == before


def test_a_meta_example_reads_no_values_and_says_so() -> None:
    """On the meta device there are no values to read sizes or moments from: the first read failed, and the
    report said the traced graph could not run on the input."""
    import initlab

    with initlab.on_meta():
        model = Stem()
    report = init_model(model, "auto", example_input=torch.randn(4, D, device="meta"), seed=0, dry_run=True)
    assert report.method == "fx" and not [n for n in report.notes if "did not run on example_input" in n]
    assert any("example_input is on the meta device" in n for n in report.notes)

"""A norm whose forward scales by ``1 + weight`` is found by running a copy of it with its parameters zeroed,
whatever it subclasses: Nemotron's ``LayerNorm1P`` is an ``nn.LayerNorm`` whose forward adds 1 to the
weight; planned as ones, it doubled every output (the step-0 loss 9.6 for ln V = 6.9). A norm that scales
by its weight stays one, even when its constructor starts the weight at zero. A "norm" whose output doubles
with its input (ConvNeXt-V2's global response norm) does not normalize: the identity at zero, as its authors
start it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

from initlab.model import init_model

D, N = 64, 16


class LayerNorm1P(nn.LayerNorm):
    """Nemotron's: ``layer_norm(x, weight + 1, bias)``, weight and bias started at zero."""

    def __init__(self, d: int) -> None:
        super().__init__(d)
        nn.init.zeros_(self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight + 1.0, self.bias, self.eps)


class ZeroGainRMSNorm(nn.Module):
    """A hand-written RMS norm that scales by its weight, started at zero (a zero-init residual norm)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class Block(nn.Module):
    def __init__(self, norm: nn.Module) -> None:
        super().__init__()
        self.inp, self.norm, self.out = nn.Linear(D, D), norm, nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.inp(x)))


def test_a_one_plus_weight_norm_is_planned_as_an_offset() -> None:
    torch.manual_seed(0)
    model = Block(LayerNorm1P(D))
    predicted = planned(model, "out", gaussian(64, N, D, seed=1), "fx")
    assert float(model.norm.weight.detach().abs().max()) == 0.0  # gain 1 + 0
    m2, tol = measured(model, "out", gaussian(256, N, D, seed=3))
    # 5 standard errors; 10% for the draw (the 64-wide layer's rows: ~1.8% s.d. of their mean squared norm)
    assert abs(m2 - predicted) <= tol + 0.1 * predicted, (m2, predicted)


def test_a_norm_that_scales_by_its_weight_is_planned_a_unit_gain() -> None:
    torch.manual_seed(0)
    model = Block(ZeroGainRMSNorm(D))
    report = init_model(model, "auto", example_input=gaussian(64, N, D, seed=1), seed=0)
    row = next(r for r in report.rows if r.name == "norm.weight")
    assert float(model.norm.weight.detach().min()) == 1.0, row


class FourDOnlyNorm(nn.Module):
    """A hand-written norm whose forward refuses a 2-D batch (as timm's BatchNormAct2d asserts 4-D)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.ones(c)), nn.Parameter(torch.zeros(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 4, f"expected 4D input (got {x.dim()}D input)"
        return F.group_norm(x, 1, self.weight, self.bias)


def test_a_norm_the_probe_cannot_run_is_planned_as_before() -> None:
    """The probe runs user code on a 2-D batch; a forward that refuses it (an AssertionError here) is no
    answer, and the norm is typed by its weight's values (ones: a plain gain). Uncaught, it failed auto on
    35 timm/torchvision models."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), FourDOnlyNorm(8), nn.Conv2d(8, 8, 3))
    init_model(model, "auto", example_input=gaussian(2, 3, 16, 16, seed=1), seed=0)
    assert float(model[1].weight.detach().min()) == 1.0


class BatchNormActLike(nn.BatchNorm2d):
    """timm's BatchNormAct2d: a BatchNorm2d subclass whose forward asserts 4-D and applies an activation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 4, f"expected 4D input (got {x.dim()}D input)"
        return torch.relu(super().forward(x))


def test_a_torch_norm_subclass_the_probe_cannot_run_keeps_its_weight_as_the_gain() -> None:
    """Started at zero (timm's zero_init_last on a residual branch's last norm), it is a zero gain: taken
    for an offset, auto planned it zero and eight zoo models' branches output zero."""
    norm = BatchNormActLike(8)
    nn.init.zeros_(norm.weight)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), norm, nn.Conv2d(8, 8, 3))
    init_model(model, "auto", example_input=gaussian(2, 3, 16, 16, seed=1), seed=0)
    assert float(model[1].weight.detach().min()) == 1.0


class NoisyNorm(nn.Module):
    """A hand-written norm whose forward draws from torch's global generator (a stochastic norm)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, x.shape[-1:]) * self.weight * (1 + 0 * torch.rand(()))


def test_the_norm_probe_leaves_the_global_generator_alone() -> None:
    model = Block(NoisyNorm(D))
    before = torch.get_rng_state()
    init_model(model, "auto", example_input=gaussian(8, N, D, seed=1), seed=0)
    assert torch.equal(torch.get_rng_state(), before)


class GlobalResponseNorm(nn.Module):
    """timm's: ``x + w * (x * N(x)) + b``, ``N`` each channel's L2 norm over the positions over the
    channels' mean (channels last), ``w`` and ``b`` started at zero."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.weight, self.bias = nn.Parameter(torch.zeros(c)), nn.Parameter(torch.zeros(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = x.norm(p=2, dim=(1, 2), keepdim=True)
        return x + torch.addcmul(self.bias, self.weight, x * (g / (g.mean(dim=-1, keepdim=True) + 1e-6)))


class ConvNeXtV2Mlp(nn.Module):
    def __init__(self, c: int = 32) -> None:
        super().__init__()
        self.fc1, self.grn, self.fc2 = nn.Linear(c, 4 * c), GlobalResponseNorm(4 * c), nn.Linear(4 * c, c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.grn(F.gelu(self.fc1(x))))


@pytest.mark.parametrize(("cls", "method"), [(ConvNeXtV2Mlp, "fx"), (untraceable(ConvNeXtV2Mlp), "hooks")])
def test_a_response_norm_passes_its_input_on(cls: type[nn.Module], method: str) -> None:
    """Its GELU input (second moment 0.425) reaches fc2 whole: planned for the unit output of a norm, fc2
    measured 0.41x its plan."""
    torch.manual_seed(0)
    model = cls()
    predicted = planned(model, "fc2", gaussian(16, 8, 8, 32, seed=1), method)
    report = init_model(model, "auto", example_input=gaussian(16, 8, 8, 32, seed=1), seed=0)
    rows = {r.name: r for r in report.rows}
    assert rows["grn.weight"].rule == rows["grn.bias"].rule == "auto:response norm (x + w x N(x) + b)"
    assert rows["grn.weight"].var_out == pytest.approx(0.4252, rel=0.01)  # E[gelu(z)^2], z ~ N(0, 1)
    assert float(model.grn.weight.detach().abs().max()) == float(model.grn.bias.detach().abs().max()) == 0.0
    m2, tol = measured(model, "fc2", gaussian(64, 8, 8, 32, seed=3))
    assert abs(m2 - predicted) <= tol + 0.1 * predicted, (m2, predicted)

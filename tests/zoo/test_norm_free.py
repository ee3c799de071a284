"""Networks without normalization, whose biases and gains the walker must carry exactly, each planned within
the zoo's 3x on every layer:

- NF-Nets (Brock et al. 2021, timm's ``NormFreeBlock``): weight-standardized convs (zero-mean filters, so no
  bias should cancel a mean through ``W.1``), SiLU at the edge of chaos with a bias, a squeeze-excitation
  whose average pool keeps each channel's bias whole (the example's share of the variance across samples
  does not see it), and a residual branch multiplied in place by a zero ``skipinit_gain``.
- EfficientViM's interpolations ``x + a * (f(x) - x)``: ``f(x) - x`` and ``x`` are not independent.
- CoaT's position encoding, one layer called before every block: its first call's plan, not its last's.

Each measurement is a mean of squares over at least 512 entries; before these rules the NF model's SE layers
measured 60-141x their plans, and the interpolating stream's layers 0.5x down to 0.02x."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab

from .test_second_moment import assert_within, measured

B, C, HW = 16, 64, 8


pytestmark = pytest.mark.usefixtures("seeded_constructors")


class ScaledStdConv2d(nn.Conv2d):
    """timm's: each filter standardized in forward (zero mean, unit norm), times ``gain / sqrt(fan_in)``."""

    def __init__(self, cin: int, cout: int, k: int = 1) -> None:
        super().__init__(cin, cout, k, padding=k // 2)
        self.gain = nn.Parameter(torch.ones(cout, 1, 1, 1))
        self.scale = self.weight[0].numel() ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                         weight=(self.gain * self.scale).view(-1), training=True, momentum=0.0, eps=1e-6)
        return F.conv2d(x, w.reshape_as(self.weight), self.bias, self.stride, self.padding)


class SE(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // 2, 1), nn.Conv2d(c // 2, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * torch.sigmoid(s)


class NormFreeBlock(nn.Module):
    """``x + alpha * skipinit_gain * branch(beta * x)``, the gain zero at construction (SkipInit)."""

    def __init__(self, beta: float, alpha: float = 0.2) -> None:
        super().__init__()
        self.beta, self.alpha = beta, alpha
        self.conv1, self.conv2 = ScaledStdConv2d(C, C), ScaledStdConv2d(C, C, 3)
        self.conv3 = ScaledStdConv2d(C, C)
        self.attn = SE(C)
        self.skipinit_gain = nn.Parameter(torch.tensor(0.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.silu(x * self.beta))
        out = self.attn(self.conv2(F.silu(out)))
        out = self.conv3(F.silu(out))
        out.mul_(self.skipinit_gain)
        return out * self.alpha + x


class NFNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = ScaledStdConv2d(3, C, 3)
        self.blocks = nn.Sequential(*(NormFreeBlock(beta=1.0) for _ in range(4)))
        self.final = ScaledStdConv2d(C, 2 * C)
        self.head = nn.Linear(2 * C, 32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.silu(self.final(self.blocks(self.stem(x)))).mean((2, 3)))


def test_a_norm_free_net_is_planned_layer_by_layer() -> None:
    model = NFNet()
    x = torch.randn(B, 3, HW, HW, generator=torch.Generator().manual_seed(1))
    report = initlab.init_model(model, "auto", example_input=x, seed=0)
    got = measured(model, report, torch.randn(B, 3, HW, HW, generator=torch.Generator().manual_seed(2)))
    assert_within(got, {"blocks.0.attn.fc1", "blocks.0.attn.fc2", "final", "head"})
    rows = {r.name: r for r in report.rows}
    # zero-mean filters cancel a mean themselves: no bias cancels it again through W.1
    assert all("mean x W.1" not in r.scheme for r in report.rows if r.module == "ScaledStdConv2d")
    assert rows["blocks.0.skipinit_gain"].rule == "SkipInit gain: constructor value kept"  # the method
    with torch.no_grad():  # the zero gain keeps every branch out: the stream is the stem's output
        assert torch.equal(model.blocks(model.stem(x)), model.stem(x))


class Interpolating(nn.Module):
    """EfficientViM's block: ``x + sigmoid(alpha) * (dwconv(x) - x)``, six times, then a 1x1 conv."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, C, 3, padding=1)
        self.dw = nn.ModuleList(nn.Conv2d(C, C, 3, padding=1, groups=C) for _ in range(6))
        self.alpha = nn.Parameter(torch.zeros(6))
        self.out = nn.Conv2d(C, C, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        a = torch.sigmoid(self.alpha)
        for k, dw in enumerate(self.dw):
            x = x + a[k] * (dw(x) - x)
        return self.out(x)


def test_a_sum_of_a_signal_and_its_own_difference_is_not_of_independent_parts() -> None:
    model = Interpolating()
    x = torch.randn(B, 3, HW, HW, generator=torch.Generator().manual_seed(1))
    report = initlab.init_model(model, "he_normal", example_input=x, seed=0)
    got = measured(model, report, torch.randn(B, 3, HW, HW, generator=torch.Generator().manual_seed(2)))
    assert_within(got, {"stem", "dw.5", "out"})


class Repeated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(C, C), nn.Linear(C, C)
        self.same = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)  # (``h + h + h + h`` is one elementwise map of h, fused as 4z)
        return self.fc2(h + self.same(h) + self.same(h) + self.same(h))  # 16x h's second moment, not 4x


def test_a_sum_of_one_tensor_with_itself_is_not_of_independent_terms() -> None:
    model = Repeated()
    x = torch.randn(B, C, generator=torch.Generator().manual_seed(1))
    report = initlab.init_model(model, "he_normal", example_input=x, seed=0)
    got = measured(model, report, torch.randn(B, C, generator=torch.Generator().manual_seed(2)))
    fc1, fc2 = got["fc1"], got["fc2"]
    assert 1 / 1.5 < fc2[0] / fc2[1] < 1.5, fc2  # 4x off when the terms were taken as independent
    assert 1 / 1.5 < fc1[0] / fc1[1] < 1.5, fc1


def test_a_kept_gain_is_read_as_a_product_and_on_meta_as_its_default() -> None:
    from initlab.model import discover

    def muls(model: nn.Module) -> list[str]:
        return [n.op for n in discover(model, torch.randn(B, 3, HW, HW)).nodes if n.name == "mul_"]

    assert muls(NormFreeBlockNet()) == ["mul"]  # the branch times the zero gain
    with torch.device("meta"):  # no value to read: SkipInit's default, which materialize sets (0)
        meta = NormFreeBlockNet()
    [gain] = [n for n in discover(meta).nodes if n.op == "const" and n.name == "block.skipinit_gain"]
    assert gain.value == (0.0, 0.0)

    def gains(model: nn.Module) -> list[str]:
        return [n.name for n in discover(model, torch.randn(B, C)).nodes if n.op == "const"]

    assert gains(LayerScaled()) == ["ls_gamma"]
    with torch.device("meta"):  # a layer scale has no default across models (1e-5, 1e-6, 0.1): unread
        assert gains(LayerScaled()) == []


class LayerScaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.ls_gamma = nn.Linear(C, C), nn.Parameter(torch.full((C,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.ls_gamma * self.fc(x)


class NormFreeBlockNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem, self.block = nn.Conv2d(3, C, 1), NormFreeBlock(beta=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.stem(x))


class SharedPositionEncoding(nn.Module):
    """CoaT's: one depthwise conv added to the tokens before every block, on a stream that grows."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, C, 1)
        self.pos = nn.Conv2d(C, C, 3, padding=1, groups=C)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for _ in range(4):
            x = 2.0 * (x + self.pos(x))
        return x


def test_a_layer_called_again_keeps_the_plan_its_first_call_made() -> None:
    model = SharedPositionEncoding()
    x = torch.randn(B, 3, HW, HW, generator=torch.Generator().manual_seed(1))
    report = initlab.init_model(model, "auto", example_input=x, seed=0)
    got = measured(model, report, torch.randn(B, 3, HW, HW, generator=torch.Generator().manual_seed(2)))
    assert 1 / 1.5 < got["pos"][0] / got["pos"][1] < 1.5, got["pos"]  # its first call, as a hook sees it


def test_materialized_from_meta_sets_the_constructors_gains() -> None:
    """Built on meta, the gains a rule keeps have no value: materialize sets the architecture's defaults
    (weight-standardized conv gain 1, SkipInit gain 0) and gives ``init_model``'s values on the model built
    normally; zero-filled before, every conv's output was zero."""
    with initlab.on_meta():
        meta = NFNet()
    report = initlab.materialize(meta, seed=0)
    built = NFNet()
    initlab.init_model(built, "auto", seed=0)
    assert all(torch.equal(p, dict(built.named_parameters())[n]) for n, p in meta.named_parameters())
    assert float(meta.stem.gain.detach().min()) == 1.0 and float(meta.blocks[0].skipinit_gain.detach()) == 0.0
    x = torch.randn(B, 3, HW, HW, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert float(meta(x).square().mean()) > 0.0
    rules = {r.rule for r in report.rows if r.name.endswith("gain")}
    assert rules == {"weight-standardized conv gain: 1, the constructor's (meta: no value to keep)",
                     "SkipInit gain: 0, the constructor's (meta: no value to keep)"}
    assert not report.notes

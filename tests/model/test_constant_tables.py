"""A table the forward computes from constants alone (a rotary embedding from ``arange`` and a buffer of
periods) is read by its values in both discoveries: fx (the sizes pass) and hooks (the recording pass). The
integer steps (``arange(x.shape[1])``) have no moments of their own but are constant, and the items of a
constant tuple (``sin, cos = emb.tensor_split(2, -1)``) keep their values. Misread, the table is a zero (fx)
or a unit signal (hooks), and the layer after it is planned for the wrong input: DINOv3's attention
projections measured 0.19x their plan under hooks discovery."""

from __future__ import annotations

import torch
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

D, N = 64, 16


class RotaryMix(nn.Module):
    """``proj(q * sin)`` where ``sin`` is a rotary table of small angles: E[sin^2] is about 0.02, far from
    the 1 of a unit signal."""

    def __init__(self) -> None:
        super().__init__()
        self.q = nn.Linear(D, D)
        self.proj = nn.Linear(D, D)
        self.register_buffer("periods", 40.0 * 10.0 ** (torch.arange(D) / D), persistent=False)

    def table(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        coords = torch.arange(n, device=device)  # integer steps
        angles = coords[:, None].float() / self.periods  # (n, D): angles below 16/40
        return torch.cat([angles.sin(), angles.cos()], -1).tensor_split(2, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sin, _ = self.table(x.shape[1], x.device)
        return self.proj(torch.relu(self.q(x)) * sin)


def test_a_rotary_table_from_integer_steps_is_read_by_its_values_in_both_discoveries() -> None:
    for cls, method in ((RotaryMix, "fx"), (untraceable(RotaryMix), "hooks")):
        torch.manual_seed(0)
        model = cls()
        predicted = planned(model, "proj", gaussian(4, N, D, seed=1), method)
        m2, tol = measured(model, "proj", gaussian(512, N, D, seed=3))
        assert abs(m2 - predicted) <= tol + 0.02 * predicted, (method, m2, predicted)


class BlurSqueeze(nn.Module):
    """TResNet's anti-aliased downsampling before a squeeze-excitation: ReLU features (mean 0.4) blurred by
    a fixed binomial filter, ``F.conv2d(pad(x), self.filt, stride=2, groups=C)``, then pooled. The blur
    averages, so the mean passes whole: read as an unknown product it was lost, and the squeeze measured 3.6x
    its plan."""

    def __init__(self, c: int = 32) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, c, 3, padding=1), nn.BatchNorm2d(c)
        taps = torch.tensor([1.0, 2.0, 1.0])
        filt = (taps[:, None] * taps[None, :]) / 16
        self.register_buffer("filt", filt[None, None].repeat(c, 1, 1, 1))
        self.fc1 = nn.Conv2d(c, 8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x)))
        h = torch.nn.functional.conv2d(torch.nn.functional.pad(h, (1, 1, 1, 1), mode="reflect"), self.filt,
                                       stride=2, groups=h.shape[1])
        return self.fc1(h.mean((2, 3), keepdim=True))


def test_a_blur_by_a_fixed_averaging_filter_keeps_the_mean_in_both_discoveries() -> None:
    for cls, method in ((BlurSqueeze, "fx"), (untraceable(BlurSqueeze), "hooks")):
        torch.manual_seed(0)
        model = cls()
        predicted = planned(model, "fc1", gaussian(8, 3, 16, 16, seed=1), method)
        m2, tol = measured(model, "fc1", gaussian(256, 3, 16, 16, seed=3))
        # the squeeze's rows are shifted to fixed sums (its input is mean-dominated): the output is the plan's
        assert abs(m2 - predicted) <= tol + 0.02 * predicted, (method, m2, predicted)


class ScaledSteps(RotaryMix):
    """The steps scaled by a number of sizes, ``arange(n) * (0.5 / n)``: the number is constant too."""

    def table(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        angles = (torch.arange(n, device=device) * (0.5 / n))[:, None] * (40.0 / self.periods)
        return torch.cat([angles.sin(), angles.cos()], -1).tensor_split(2, -1)


def test_steps_scaled_by_a_number_of_sizes_are_read_by_their_values() -> None:
    torch.manual_seed(0)
    model = ScaledSteps()
    predicted = planned(model, "proj", gaussian(4, N, D, seed=1), "fx")
    m2, tol = measured(model, "proj", gaussian(512, N, D, seed=3))
    assert abs(m2 - predicted) <= tol + 0.02 * predicted, (m2, predicted)

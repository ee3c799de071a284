"""A shift moves entries to other positions: the shifted signal is a part of its own, not the same entries
again. RWKV mixes each token with the one before, ``x m + shift(x) (1 - m)`` (``shift`` a ``ZeroPad2d`` that
crops the other end): read as one part, ``E[(m + 1 - m)^2]`` by root-mean-square coefficients, its key
layers were planned for twice their input, and its channel-mixing ``value`` (after a squared ReLU)
measured 0.25x its plan."""

from __future__ import annotations

import torch
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

D, T = 128, 16


class TokenShift(nn.Module):
    """RWKV's channel mix: ``key(x m + shift(x) (1 - m))``, ``m`` a per-channel constant in [0, 1]."""

    def __init__(self) -> None:
        super().__init__()
        self.shift = nn.ZeroPad2d((0, 0, 1, -1))
        self.mix = nn.Parameter(torch.linspace(0.0, 1.0, D))
        self.key = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.key(x * self.mix + self.shift(x) * (1 - self.mix))


class Rolled(nn.Module):
    """``key(x + roll(x))``: two different tokens summed, second moment 2 (4 if they were the same)."""

    def __init__(self) -> None:
        super().__init__()
        self.key = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.key(x + torch.roll(x, 1, dims=1))


def test_a_shifted_signal_is_independent_of_the_unshifted_one() -> None:
    for cls in (TokenShift, Rolled):
        for model_cls, method in ((cls, "fx"), (untraceable(cls), "hooks")):
            torch.manual_seed(0)
            model = model_cls()
            predicted = planned(model, "key", gaussian(64, T, D, seed=1), method)
            m2, tol = measured(model, "key", gaussian(256, T, D, seed=3))
            # 5 standard errors; 10% for the draw (the key's 128 rows' mean squared norm: ~1.1% s.d.) and
            # for the shift's zero row (1 of 16 tokens carries only x m)
            assert abs(m2 - predicted) <= tol + 0.1 * predicted, (cls.__name__, method, m2, predicted)

"""What every sample has alike (``k``: a fixed offset, a direction all the samples' tokens share) passes a
product of independent signals as the product of what each has in every sample, and a sum over the tokens
adds it coherently: ``n^2`` times, not ``n``. SwiftFormer's additive attention sums ``attn * query`` over
its tokens, whose query direction its samples share: read as independent tokens, its proj measured 9x its
plan."""

from __future__ import annotations

import torch
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

D, N = 256, 16


class TokenSum(nn.Module):
    """``proj(sum over tokens of u * v)``, ``u`` and ``v`` each a linear map plus a fixed offset (a buffer,
    the same for every sample and token)."""

    def __init__(self) -> None:
        super().__init__()
        self.u, self.v, self.proj = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
        g = torch.Generator().manual_seed(5)
        self.register_buffer("off_u", torch.randn(D, generator=g))
        self.register_buffer("off_v", torch.randn(D, generator=g))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(((self.u(x) + self.off_u) * (self.v(x) + self.off_v)).sum(1))


def test_a_product_keeps_what_every_sample_has_and_a_token_sum_adds_it_coherently() -> None:
    for cls, method in ((TokenSum, "fx"), (untraceable(TokenSum), "hooks")):
        torch.manual_seed(0)
        model = cls()
        predicted = planned(model, "proj", gaussian(8, N, D, seed=1), method)
        m2, tol = measured(model, "proj", gaussian(512, N, D, seed=3))
        # 5 standard errors; 5 s.d. of the draw: proj's output is mostly proj(n * off_u * off_v), one fixed
        # vector through D Gaussian rows (chi-square with D degrees of freedom: sqrt(2/D) one s.d.)
        draw = 5 * (2 / D) ** 0.5
        assert abs(m2 - predicted) <= tol + draw * predicted, (method, m2, predicted)

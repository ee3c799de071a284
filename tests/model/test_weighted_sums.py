"""``sum_j p_j v_j`` over the keys a softmax spread ``p`` over is an attention average (what the keys share
passes whole, ``E[sum p^2]`` of the rest), whatever the constructor's weights made of the example:
MobileViT-v2's linear attention pools its keys by a softmax of one query channel so. Read as a sum of
products by the share the example showed (near-uniform weights under HF's std-0.02 init), HF MobileViT-v2's
output projection measured 3.5-4.9x its plan."""

from __future__ import annotations

import torch
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

D, N = 64, 16


class LinearAttention(nn.Module):
    """MobileViT-v2's ``relu(v) * sum_j softmax(4 q)_j k_j``, with keys centred over the tokens and the
    constructor's q/k/v weights tiny (std 1e-3). Under them the softmax is uniform and the example's sum
    keeps none of the keys' variance (they sum to zero); under the plan's, ``E[sum p^2] - 1/n`` of it, the
    average's ``E[sum p^2]`` (0.6 for logits of variance 16) within 10%."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv, self.out = nn.Linear(D, 1 + 2 * D), nn.Linear(D, D)
        nn.init.normal_(self.qkv.weight, std=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = torch.split(self.qkv(x).transpose(1, 2), [1, D, D], dim=1)  # (B, channels, tokens)
        k = k - k.mean(dim=-1, keepdim=True)
        context = (k * torch.softmax(4.0 * q, dim=-1)).sum(dim=-1, keepdim=True)
        return self.out((torch.relu(v) * context.expand_as(v)).transpose(1, 2))


def test_a_softmax_weighted_sum_is_planned_as_an_average() -> None:
    for model_cls, method in ((LinearAttention, "fx"), (untraceable(LinearAttention), "hooks")):
        torch.manual_seed(0)
        model = model_cls()
        predicted = planned(model, "out", gaussian(64, N, D, seed=1), method)
        m2, tol = measured(model, "out", gaussian(256, N, D, seed=3))
        # 5 standard errors; 25% for the draw and the rule (the average's kept share is a Monte-Carlo
        # expectation over Gaussian logits; one query channel's logits realize their variance per sample)
        assert abs(m2 - predicted) <= tol + 0.25 * predicted, (method, m2, predicted)

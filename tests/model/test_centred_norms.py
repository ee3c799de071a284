"""A LayerNorm centres each position's features: the mean every channel has alike (a max pool's, 0.85 for
the max of 3 unit Gaussians) leaves with it, and is no part the positions share after it. Kept, it was read
as values every token shares, which an attention average passes whole: NesT's attention projection after
its pooling measured 0.3x its plan."""

from __future__ import annotations

import torch
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

D, N = 128, 8


class PooledAttention(nn.Module):
    """``proj(softmax(0 q k^T) v)`` of ``LayerNorm(max over 3 features)``, one head: weights that do not
    depend on the tokens (a uniform average over the 8), so that what the values share is all that decides
    (weights computed from the tokens also correlate with the values they average: 25% here)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.norm = nn.Linear(D, 3 * D), nn.LayerNorm(D)
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.fc(x).unflatten(-1, (D, 3)).amax(-1))
        q, k, v = self.qkv(h).chunk(3, -1)
        attn = torch.softmax(q @ k.transpose(-2, -1) * 0.0, -1)
        return self.proj(attn @ v)


def test_a_layer_norm_takes_the_mean_channels_share_out_of_what_positions_share() -> None:
    for cls, method in ((PooledAttention, "fx"), (untraceable(PooledAttention), "hooks")):
        torch.manual_seed(0)
        model = cls()
        predicted = planned(model, "proj", gaussian(8, N, D, seed=1), method)
        m2, tol = measured(model, "proj", gaussian(256, N, D, seed=3))
        # 5 standard errors of the measurement; 10% for the draw (fc, qkv and proj each realize the mean of
        # their rows' squared norms, fan-in 128, within about 1.2% (one s.d.): 5 s.d. of their sum). Kept, the
        # mean made the plan 5x too large for the average's input (proj measured 0.2x).
        assert abs(m2 - predicted) <= tol + 0.1 * predicted, (method, m2, predicted)

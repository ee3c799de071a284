"""A LayerNorm centres each position's features: the mean every channel has alike (a max pool's, 0.85 for
the max of 3 unit Gaussians) leaves with it, and is no part the positions share after it. Kept, it was read
as values every token shares, which an attention average passes whole: NesT's attention projection after
its pooling measured 0.3x its plan."""

from __future__ import annotations

import torch
from torch import nn

from initlab.model import init_model

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


class Untraceable(PooledAttention):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # data-dependent control flow: hooks discovery
        return super().forward(x) if bool(x.sum() != 0) else x


def _proj_second_moment(model: nn.Module, batches: int = 256) -> tuple[float, float]:
    """E[y^2] of ``proj``'s output on fresh unit-variance batches, and 5 standard errors of it."""
    seen: list[torch.Tensor] = []
    handle = model.proj.register_forward_hook(lambda m, a, y: seen.append(y.square().mean((1, 2))))
    with torch.no_grad():
        model(torch.randn(batches, N, D, generator=torch.Generator().manual_seed(3)))
    handle.remove()
    per_sample = seen[0].double()
    return float(per_sample.mean()), 5 * float(per_sample.std()) / batches**0.5


def test_a_layer_norm_takes_the_mean_channels_share_out_of_what_positions_share() -> None:
    for cls, method in ((PooledAttention, "fx"), (Untraceable, "hooks")):
        torch.manual_seed(0)
        model = cls()
        example = torch.randn(8, N, D, generator=torch.Generator().manual_seed(1))
        report = init_model(model, "auto", example_input=example, seed=0)
        assert report.method == method
        predicted = next(r.var_out for r in report.rows if r.name == "proj.weight")
        measured, tol = _proj_second_moment(model)
        assert predicted is not None
        # 5 standard errors of the measurement; 10% for the draw (fc, qkv and proj each realize the mean of
        # their rows' squared norms, fan-in 128, within about 1.2% (one s.d.): 5 s.d. of their sum). Kept, the
        # mean made the plan 5x too large for the average's input (proj measured 0.2x).
        assert abs(measured - predicted) <= tol + 0.1 * predicted, (method, measured, predicted)

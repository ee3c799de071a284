"""A GLU, ``a * sigmoid(b)`` over the two halves of its input's channels, keeps ``E[a^2] E[sigmoid(b)^2]``
(0.29 for a unit input): passed through whole, a conformer's depthwise conv after its GLU (Wav2Vec2-Conformer)
measured 0.28x its plan."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

D, N = 128, 16


class Gated(nn.Module):
    def __init__(self, module: bool = False) -> None:
        super().__init__()
        self.up, self.out = nn.Linear(D, 2 * D), nn.Linear(D, D)
        self.glu = nn.GLU(-1) if module else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(x)
        return self.out(self.glu(h) if self.glu is not None else F.glu(h, -1))


class GatedModule(Gated):
    def __init__(self) -> None:
        super().__init__(module=True)


def test_a_glu_keeps_the_gated_half_times_the_gates_second_moment() -> None:
    for cls in (Gated, GatedModule):
        for model_cls, method in ((cls, "fx"), (untraceable(cls), "hooks")):
            torch.manual_seed(0)
            model = model_cls()
            predicted = planned(model, "out", gaussian(64, N, D, seed=1), method)
            m2, tol = measured(model, "out", gaussian(256, N, D, seed=3))
            # 5 standard errors; 10% for the draw (two layers' mean squared row norms, ~1.1% s.d. each)
            assert abs(m2 - predicted) <= tol + 0.1 * predicted, (cls.__name__, method, m2, predicted)

"""A max pool takes the max of the entries its window covers on the map, not of its kernel: the taps in its
padding (``-inf``) never win. On the 2x2 map a 64x64 image leaves CSPNeXt's last stage, the SPP's 13x13 pool
(padding 6) takes the max of 4 entries; read as 169, the max's mean was 2.7 for 1.0, and the conv after it
measured 0.2x its plan."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

C = 128


class Spp(nn.Module):
    """``conv2(cat(x, maxpool13(x)))`` of ``x = relu(bn(conv1(input)))`` on a 2x2 map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.bn = nn.Conv2d(C, C, 1), nn.BatchNorm2d(C)
        self.pool = nn.MaxPool2d(13, stride=1, padding=6)
        self.conv2 = nn.Conv2d(2 * C, C, 1)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn(self.conv1(x)))
        return self.conv2(torch.cat([x, self.pooled(x)], 1))


class FunctionalSpp(Spp):
    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 13, 1, 6)


def test_a_max_pool_takes_the_max_of_the_entries_its_windows_cover() -> None:
    for cls, method in ((Spp, "fx"), (FunctionalSpp, "fx"), (untraceable(Spp), "hooks")):
        torch.manual_seed(0)
        model = cls()
        predicted = planned(model, "conv2", gaussian(8, C, 2, 2, seed=1), method)
        m2, tol = measured(model, "conv2", gaussian(512, C, 2, 2, seed=3))
        # 5 standard errors of the measurement; 10% for the draw (conv1 and conv2 realize the mean of their
        # rows' squared norms, fan-in 128 and 256, within about 1.2% (one s.d.): 5 s.d. of their sum)
        assert abs(m2 - predicted) <= tol + 0.1 * predicted, (cls.__name__, m2, predicted)

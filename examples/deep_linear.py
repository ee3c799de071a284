"""A 100-layer linear network (width 64, no biases), for ``initlab doctor``.

    initlab doctor examples/deep_linear.py:standard_normal --input-shape 256,64
    initlab doctor examples/deep_linear.py:scaled --input-shape 256,64

``standard_normal``: every weight ~ N(0, 1), so each layer multiplies the signal's std by about sqrt(64) = 8.
``scaled``: weights ~ N(0, 1/fan_in) (LeCun normal), so the std stays near 1 through all 100 layers.
Both are float64 so that 8^100 ~ 2e90 is representable (float32 overflows after about 42 layers).
"""

import torch
from torch import nn

DEPTH = 100
WIDTH = 64


def _net(std: float, seed: int = 0) -> nn.Sequential:
    g = torch.Generator().manual_seed(seed)
    layers = [nn.Linear(WIDTH, WIDTH, bias=False) for _ in range(DEPTH)]
    with torch.no_grad():
        for layer in layers:
            layer.weight.normal_(0.0, std, generator=g)
    return nn.Sequential(*layers).double()


def standard_normal() -> nn.Sequential:
    return _net(1.0)


def scaled() -> nn.Sequential:
    return _net(WIDTH**-0.5)

"""Networks built to have one initialization problem each, and their healthy counterparts."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

import initlab

WIDTH = 32
BATCH = 64


def batch(seed: int = 0, width: int = WIDTH, n: int = BATCH) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


def mlp(
    depth: int,
    act: Callable[[], nn.Module],
    *,
    std: float | None = None,
    constant: float | None = None,
    bias: float = 0.0,
    width: int = WIDTH,
    seed: int = 0,
) -> nn.Sequential:
    """``depth`` hidden Linear+act layers and a Linear head; weights N(0, std²) or all ``constant``."""
    g = torch.Generator().manual_seed(seed)
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), act()]
    layers.append(nn.Linear(width, 10))
    with torch.no_grad():
        for m in layers:
            if isinstance(m, nn.Linear):
                if constant is not None:
                    m.weight.fill_(constant)
                    m.bias.fill_(constant)
                elif std is not None:
                    m.weight.normal_(0.0, std, generator=g)
                    m.bias.fill_(bias)
    return nn.Sequential(*layers)


def healthy(net: nn.Sequential) -> nn.Sequential:
    """The same net after ``init_model(net, "auto")``."""
    initlab.init_model(net, "auto", seed=0)
    return net


# name -> (builder, the verdicts it must raise)
PROBLEMS: dict[str, tuple[Callable[[], nn.Sequential], set[str]]] = {
    "tanh50_N(0,1)": (lambda: mlp(50, nn.Tanh, std=1.0), {"saturation", "exploding_gradient"}),
    "tanh50_N(0,0.01)": (lambda: mlp(50, nn.Tanh, std=0.01), {"vanishing_signal", "vanishing_gradient"}),
    "tanh8_all_0.5": (lambda: mlp(8, nn.Tanh, constant=0.5), {"symmetry"}),
    "relu8_bias_-3": (lambda: mlp(8, nn.ReLU, std=(2 / WIDTH) ** 0.5, bias=-3.0), {"dead_units"}),
    "relu10_U(0,a)": (lambda: positive_mlp(10), {"mean_shift"}),
}


def positive_mlp(depth: int) -> nn.Sequential:
    """Weights from U(0, 2/fan_in): all positive (the pitfall of jax:uniform, torch uniform_()'s defaults)."""
    net = mlp(depth, nn.ReLU, std=1.0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.uniform_(0.0, 2.0 / WIDTH, generator=g)  # mean 1/fan_in: RMS stays put
                m.bias.zero_()
    return net

"""Shared pieces of the mnist1d benchmarks: data (generated offline), residual nets, a plain SGD loop."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


def load(seed: int = 42, num_samples: int = 5000) -> dict[str, torch.Tensor]:
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed, args.num_samples = seed, num_samples
    data = make_dataset(args)
    as_float = {k: torch.tensor(data[k], dtype=torch.float32) for k in ("x", "x_test")}
    return {**as_float, "y": torch.tensor(data["y"]), "y_test": torch.tensor(data["y_test"])}


class MLPBlock(nn.Module):
    def __init__(self, width: int, norm: bool) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, width, bias=not norm), nn.Linear(width, width, bias=not norm)
        self.bn1 = nn.BatchNorm1d(width) if norm else nn.Identity()
        self.bn2 = nn.BatchNorm1d(width) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.fc2(torch.relu(self.bn1(self.fc1(x))))))


class ResMLP(nn.Module):
    def __init__(self, blocks: int, width: int, norm: bool = False, inputs: int = 40,
                 classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Linear(inputs, width)
        self.blocks = nn.Sequential(*[MLPBlock(width, norm) for _ in range(blocks)])
        self.head = nn.Linear(width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(torch.relu(self.stem(x))))


class ConvBlock(nn.Module):
    def __init__(self, channels: int, norm: bool) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm1d(channels) if norm else nn.Identity()
        self.bn2 = nn.BatchNorm1d(channels) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class ResCNN(nn.Module):
    """Stem (stride 2: length 40 -> 20), residual blocks, then a linear head on the flattened features, or on
    their global average (``pool=True``)."""

    def __init__(self, blocks: int, channels: int, norm: bool = False, classes: int = 10,
                 pool: bool = False) -> None:
        super().__init__()
        self.pool = pool
        self.stem = nn.Conv1d(1, channels, 5, padding=2, stride=2)
        self.blocks = nn.Sequential(*[ConvBlock(channels, norm) for _ in range(blocks)])
        self.head = nn.Linear(channels if pool else channels * 20, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(torch.relu(self.stem(x.unsqueeze(1))))
        return self.head(h.mean(dim=2) if self.pool else h.flatten(1))


@dataclass
class Curve:
    steps: list[int]
    accuracy: list[float]
    final_loss: float
    diverged_at: int | None

    @property
    def final(self) -> float:
        return self.accuracy[-1] if self.accuracy else float("nan")


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(x)
    model.train(was)
    if not bool(torch.isfinite(out).all()):
        return float("nan")
    return float((out.argmax(1) == y).float().mean())


def train(model: nn.Module, data: dict[str, torch.Tensor], *, steps: int, lr: float = 0.1, batch: int = 128,
          seed: int = 0, eval_every: int = 50, momentum: float = 0.0, weight_decay: float = 0.0) -> Curve:
    """Plain SGD (no momentum unless asked), constant lr; stops at the first non-finite loss."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    rng = np.random.default_rng(seed)
    x, y = data["x"], data["y"]
    steps_seen, accs = [], []
    loss_value, diverged = math.nan, None
    model.train()
    for step in range(1, steps + 1):
        idx = torch.from_numpy(rng.integers(0, len(x), batch))
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value) or loss_value > 1e6:
            diverged = step
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            steps_seen.append(step)
            accs.append(accuracy(model, data["x_test"], data["y_test"]))
    return Curve(steps_seen, accs, loss_value, diverged)

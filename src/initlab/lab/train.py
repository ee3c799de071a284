"""Models and the training loop shared by the experiments.

Everything random takes a seed and uses a private ``torch.Generator``: the same seed gives the same
initialization, the same batch order and therefore the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import torch
from torch import nn

from ..backends.torch_activations import torch_module
from ..backends.torch_backend import make_generator
from .data import Dataset

M = TypeVar("M", bound=nn.Module)

# the experiments' activations, as torch modules from the catalog's one activation table
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    name: torch_module(name) for name in ("relu", "tanh", "sigmoid", "linear")
}


def mlp(
    n_in: int, width: int, depth: int, n_out: int, activation: str = "relu", *, batchnorm: bool = False
) -> nn.Sequential:
    """``depth`` hidden layers of ``width`` units (Linear [-> BatchNorm] -> activation), then a linear
    head."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(nn.Linear(n_in if i == 0 else width, width))
        if batchnorm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(ACTIVATIONS[activation]())
    layers.append(nn.Linear(width if depth else n_in, n_out))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """x + W2 relu(W1 x): a branch without normalization."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(x)))


class ResidualMLP(nn.Module):
    """stem -> ``blocks`` residual blocks -> relu -> head, no normalization anywhere."""

    def __init__(self, n_in: int, width: int, blocks: int, n_out: int) -> None:
        super().__init__()
        self.stem = nn.Linear(n_in, width)
        self.blocks = nn.Sequential(*(ResidualBlock(width) for _ in range(blocks)))
        self.act = nn.ReLU()
        self.head = nn.Linear(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.blocks(self.stem(x))))


def init_weights_(model: M, scheme: str, *, seed: int, scale: float = 1.0) -> M:
    """Every weight layer's weight from ``scheme`` (with the gain of the activation that follows it), times
    ``scale``; biases zero -- through :func:`initlab.init_model` (the ``"scaled"`` plan transform), drawn in
    plan order from torch's generator seeded with ``seed``."""
    from ..model import init_model

    has_bias = any(name.endswith("bias") for name, _ in model.named_parameters())
    rules = {"*.bias": "zeros"} if has_bias else {}
    if scheme.startswith(("he_", "kaiming_")):  # He's default gain is ReLU's: the lab's heads are linear
        dry = init_model(model, scheme, seed=seed, generator="torch", dry_run=True)
        for row in dry.rows:
            if row.activation is None and row.fan_in is not None and row.name.endswith("weight"):
                rules[row.name] = f"{scheme}(nonlinearity='linear')"
    init_model(model, "scaled", base=scheme, factor=scale, seed=seed, generator="torch", rules=rules or None)
    return model


@dataclass
class History:
    """Per-epoch test accuracy and mean training loss; ``test_acc[0]``/``loss[0]`` are before training."""

    test_acc: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    diverged: bool = False

    @property
    def final_acc(self) -> float:
        return self.test_acc[-1]

    def to_dict(self) -> dict[str, object]:
        return {"test_acc": self.test_acc, "loss": self.loss, "diverged": self.diverged}


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """(accuracy, mean cross-entropy); non-finite outputs count as wrong."""
    was_training = model.training
    model.eval()
    try:
        logits = model(x)
    finally:
        model.train(was_training)
    finite = torch.isfinite(logits).all(dim=1)
    acc = ((logits.argmax(dim=1) == y) & finite).float().mean().item()
    loss = nn.functional.cross_entropy(logits, y).item()
    return acc, loss


def train(
    model: nn.Module,
    data: Dataset,
    *,
    epochs: int,
    lr: float,
    seed: int,
    batch_size: int = 128,
    momentum: float = 0.9,
    optimizer: str = "sgd",
    max_train: int | None = None,
) -> History:
    """Minibatch training with cross-entropy; stops early (``diverged``) when the loss becomes non-finite."""
    g = make_generator("cpu", seed)
    x, y = data.x_train[:max_train], data.y_train[:max_train]
    params = [p for p in model.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer = (
        torch.optim.SGD(params, lr=lr, momentum=momentum)
        if optimizer == "sgd"
        else torch.optim.Adam(params, lr=lr)
    )
    history = History()
    acc, loss = evaluate(model, data.x_test, data.y_test)
    history.test_acc.append(acc)
    history.loss.append(loss)
    model.train()
    for _ in range(epochs):
        total, count = 0.0, 0
        for idx in torch.randperm(len(y), generator=g).split(batch_size):
            out = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            out.backward()
            opt.step()
            total += out.item() * len(idx)
            count += len(idx)
        mean_loss = total / count
        history.loss.append(mean_loss)
        if not math.isfinite(mean_loss):
            history.diverged = True
            break
        history.test_acc.append(evaluate(model, data.x_test, data.y_test)[0])
    if history.diverged:  # keep curves the same length: a diverged net stays where it broke
        acc = evaluate(model, data.x_test, data.y_test)[0]
        history.test_acc += [acc] * (epochs + 1 - len(history.test_acc))
        history.loss += [math.nan] * (epochs + 1 - len(history.loss))
    return history


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` intra-op threads, then restore the previous setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)

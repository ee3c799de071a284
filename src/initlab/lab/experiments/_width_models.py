"""Models and the training run of the width-transfer experiment: an MLP and a small Transformer on mnist1d
(the 40 features read as 8 tokens of 5), each under standard parametrization (SP), initlab's μP, or the
``mup`` package (``MuReadout`` + ``set_base_shapes`` + ``MuAdam``).

Every model is built on meta and initialized by ``init_model`` with a seed: no global RNG is drawn from."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ...model import init_model
from ...width import mup_param_groups

TOKENS, PATCH, HEADS = 8, 5, 4


class MLP(nn.Module):
    """Two hidden ReLU layers of ``width`` units and a readout (``readout``: nn.Linear or mup.MuReadout)."""

    def __init__(self, width: int, readout: Callable[..., nn.Module] = nn.Linear, n_in: int = 40,
                 n_out: int = 10) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(n_in, width), nn.Linear(width, width)
        self.head = readout(width, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(F.relu(self.fc2(F.relu(self.fc1(x)))))


class Block(nn.Module):
    """Pre-LayerNorm attention (``HEADS`` heads) and a 2x MLP. Scores are scaled by 1/sqrt(head_dim) (SP,
    ``base=None``) or, for μP, by sqrt(base head_dim)/head_dim: 1/head_dim with the constant that makes it
    the SP scale at the base width (as the ``mup`` package's README does with 8/d for d = 64)."""

    def __init__(self, d: int, base: int | None = None) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        head, base_head = d // HEADS, (base or d) // HEADS
        self.scale = head**-0.5 if base is None else math.sqrt(base_head) / head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, scale=self.scale)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.ff2(F.relu(self.ff1(self.ln2(x))))


class SeqTransformer(nn.Module):
    """mnist1d as ``TOKENS`` tokens of ``PATCH`` values: linear embedding + learned positions, one block,
    LayerNorm, mean over tokens, readout. Attention: SP's 1/sqrt(head_dim), or μP's scale for ``base``."""

    def __init__(self, width: int, readout: Callable[..., nn.Module] = nn.Linear, base: int | None = None
                 ) -> None:
        super().__init__()
        self.embed, self.pos = nn.Linear(PATCH, width), nn.Embedding(TOKENS, width)
        self.block, self.ln = Block(width, base), nn.LayerNorm(width)
        self.head = readout(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x.view(x.shape[0], TOKENS, PATCH)) + self.pos.weight
        return self.head(self.ln(self.block(h)).mean(1))


def build(arch: str, width: int, param: str, base_width: int) -> nn.Module:
    """The model on meta; ``param`` picks the readout class and attention scale."""
    readout: Callable[..., nn.Module] = nn.Linear
    if param == "mup package":
        from mup import MuReadout

        readout = MuReadout
    with torch.device("meta"):
        if arch == "mlp":
            return MLP(width, readout)
        return SeqTransformer(width, readout, None if param == "SP" else base_width)


def _setup(arch: str, width: int, base_width: int, param: str, lr: float, seed: int
           ) -> tuple[nn.Module, Any]:
    model = build(arch, width, param, base_width).to_empty(device="cpu")
    if param == "SP":
        init_model(model, "torch:default", seed=seed)
        return model, torch.optim.Adam(model.parameters(), lr=lr)
    base = build(arch, base_width, param, base_width)
    if param == "initlab μP":
        init_model(model, "mup", base=base, seed=seed)
        return model, torch.optim.Adam(mup_param_groups(model, lr, "adam", base=base))
    from mup import MuAdam, set_base_shapes

    init_model(model, "torch:default", seed=seed)  # what mup expects before set_base_shapes rescales
    set_base_shapes(model, base, delta=build(arch, 2 * base_width, param, base_width))
    return model, MuAdam(model.parameters(), lr=lr)


def one_run(arch: str, param: str, width: int, base_width: int, lr: float, seed: int, steps: int,
            batch: int, n_eval: int) -> tuple[float, float]:
    """``steps`` Adam steps, then (the loss on the first ``n_eval`` held-out samples, the mean training loss
    over the last quarter of the steps); (nan, nan) if training diverged. The held-out set is the same for
    every width, LR and seed, so it adds no noise of its own to a comparison between them."""
    model, opt = _setup(arch, width, base_width, param, lr, seed)
    return train(model, opt, seed, steps, batch, n_eval)


def train(model: nn.Module, opt: torch.optim.Optimizer, seed: int, steps: int, batch: int, n_eval: int
          ) -> tuple[float, float]:
    """:func:`one_run`'s training for a model and optimizer already set up (the seed's batch order)."""
    from ._common import dataset

    data = dataset()
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        idx = torch.randint(0, len(data.y_train), (batch,), generator=g)
        loss = F.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            return math.nan, math.nan
    tail = losses[-max(1, steps // 4):]
    with torch.no_grad():
        held = float(F.cross_entropy(model(data.x_test[:n_eval]), data.y_test[:n_eval]))
    return (held if math.isfinite(held) else math.nan), sum(tail) / len(tail)

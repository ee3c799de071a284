"""Models and the training run of the width-transfer experiment: an MLP and a small Transformer on mnist1d
(the 40 features read as 8 tokens of 5), and a character-level Transformer language model (as in Tensor
Programs V, Fig. 1) on a text that needs no download; each under standard parametrization (SP), initlab's
μP, or the ``mup`` package (``MuReadout`` + ``set_base_shapes`` + ``MuAdam``).

Every model is built on meta and initialized by ``init_model`` with a seed: no global RNG is drawn from."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ...model import init_model
from ...width import mup_param_groups

TOKENS, PATCH, HEADS = 8, 5, 4
CONTEXT, VOCAB = 32, 256  # the language model: 32 bytes of context, one token per byte


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

    def __init__(self, d: int, base: int | None = None, causal: bool = False) -> None:
        super().__init__()
        self.causal = causal
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.ff1, self.ff2 = nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        head, base_head = d // HEADS, (base or d) // HEADS
        self.scale = head**-0.5 if base is None else math.sqrt(base_head) / head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, HEADS, d // HEADS).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, scale=self.scale, is_causal=self.causal)
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


class CharLM(nn.Module):
    """A byte-level language model: token + learned position embeddings, one causal pre-LN block,
    LayerNorm, a readout to the ``VOCAB`` next-byte logits at every position."""

    def __init__(self, width: int, readout: Callable[..., nn.Module] = nn.Linear, base: int | None = None
                 ) -> None:
        super().__init__()
        self.embed, self.pos = nn.Embedding(VOCAB, width), nn.Embedding(CONTEXT, width)
        self.block, self.ln = Block(width, base, causal=True), nn.LayerNorm(width)
        self.head = readout(width, VOCAB)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.ln(self.block(self.embed(x) + self.pos.weight[: x.shape[1]])))


@lru_cache(maxsize=1)
def corpus() -> torch.Tensor:
    """The language model's text as bytes: the sources of ``torch.nn.modules`` (0.9 MB of code and English
    docstrings). torch is pinned, so every machine reads the same text, and nothing is downloaded."""
    files = sorted((Path(torch.__file__).parent / "nn" / "modules").glob("*.py"))
    return torch.frombuffer(bytearray(b"".join(f.read_bytes() for f in files)), dtype=torch.uint8).long()


def build(arch: str, width: int, param: str, base_width: int) -> nn.Module:
    """The model on meta; ``param`` picks the readout class and attention scale."""
    readout: Callable[..., nn.Module] = nn.Linear
    if param == "mup package":
        from mup import MuReadout

        readout = MuReadout
    with torch.device("meta"):
        if arch == "mlp":
            return MLP(width, readout)
        model = CharLM if arch == "char-lm" else SeqTransformer
        return model(width, readout, None if param == "SP" else base_width)


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
    """``steps`` Adam steps, then (the loss on ``n_eval`` held-out samples, the mean training loss over the
    last quarter of the steps); (nan, nan) if training diverged. The held-out set is the same for every
    width, LR and seed, so it adds no noise of its own to a comparison between them."""
    model, opt = _setup(arch, width, base_width, param, lr, seed)
    return train(model, opt, seed, steps, batch, n_eval, data=char_data() if arch == "char-lm" else None)


Batches = Callable[[torch.Generator, int], tuple[torch.Tensor, torch.Tensor]]  # (generator, batch) -> x, y
Data = tuple[Batches, Callable[[int], tuple[torch.Tensor, torch.Tensor]]]  # training batches, held-out set


def mnist1d_data() -> Data:
    from ._common import dataset

    d = dataset()

    def batches(g: torch.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(0, len(d.y_train), (batch,), generator=g)
        return d.x_train[idx], d.y_train[idx]

    return batches, lambda n: (d.x_test[:n], d.y_test[:n])


def char_data() -> Data:
    """Windows of ``CONTEXT`` bytes and the bytes that follow them: training windows start anywhere in the
    first 90% of the corpus, the held-out ones (fixed offsets) in the last 10%."""
    text = corpus()
    cut = int(0.9 * len(text))

    def windows(starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        idx = starts[:, None] + torch.arange(CONTEXT + 1)
        return text[idx[:, :-1]], text[idx[:, 1:]]

    def batches(g: torch.Generator, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        return windows(torch.randint(0, cut - CONTEXT - 1, (batch,), generator=g))

    def held_out(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        g = torch.Generator().manual_seed(0)
        return windows(torch.randint(cut, len(text) - CONTEXT - 1, (n,), generator=g))

    return batches, held_out


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, -2), y.flatten())  # (b, classes) or (b, t, vocab)


def train(model: nn.Module, opt: torch.optim.Optimizer, seed: int, steps: int, batch: int, n_eval: int,
          data: Data | None = None) -> tuple[float, float]:
    """:func:`one_run`'s training for a model and optimizer already set up (the seed's batch order; mnist1d
    unless ``data`` says otherwise)."""
    batches, held_out = data or mnist1d_data()
    g = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        x, y = batches(g, batch)
        loss = _loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            return math.nan, math.nan
    tail = losses[-max(1, steps // 4):]
    x, y = held_out(n_eval)
    with torch.no_grad():
        held = float(_loss(model(x), y))
    return (held if math.isfinite(held) else math.nan), sum(tail) / len(tail)

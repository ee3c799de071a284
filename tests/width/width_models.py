"""Models at several widths for the μP tests (a module of its own: ``from conftest import`` picks whichever
``conftest`` another test directory loaded first)."""

import torch
from torch import nn

import initlab.width  # noqa: F401  (registers the "mup" and "spectral" init_model schemes)


def mlp(width: int, n_in: int = 40, n_out: int = 10) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, n_out))


class TinyLM(nn.Module):
    """Embedding -> a pre-norm Transformer block (nn.MultiheadAttention + MLP) -> readout, optionally tied."""

    def __init__(self, d: int, vocab: int = 50, tie: bool = False) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.block = nn.TransformerEncoderLayer(d, 2, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        if tie:
            self.head.weight = self.emb.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.block(self.emb(x))))


def on_meta(factory, *args, **kwargs):
    with torch.device("meta"):
        return factory(*args, **kwargs)

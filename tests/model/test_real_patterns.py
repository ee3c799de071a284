"""Patterns of real models (issue 13 items 2, 3, 5): norms held in buffers, tied input/output embeddings,
parameters no layer owns (fused MoE experts, ViT tokens, position tables, layer scale)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from initlab.model import init_model


class FrozenBN(nn.Module):
    """torchvision's FrozenBatchNorm2d, re-written: affine parameters and statistics are buffers."""

    def __init__(self, n: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        for name, value in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            self.register_buffer(name, torch.full((n,), value))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.weight * (self.running_var + self.eps).rsqrt()
        shift = self.bias - self.running_mean * scale
        return x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)


def test_frozen_batchnorm_is_a_norm_and_auto_stays_finite():
    layers: list[nn.Module] = []
    c = 3
    for _ in range(9):
        layers += [nn.Conv2d(c, 16, 3, padding=1, bias=False), FrozenBN(16), nn.ReLU()]
        c = 16
    model = nn.Sequential(*layers)
    x = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    report = init_model(model, "auto", example_input=x[:4], seed=0)
    stds = [r.std for r in report.rows if r.std is not None]
    # the first conv sees the unit input, the others a ReLU output (edge of chaos, sigma_w^2 = 2)
    assert math.isclose(stds[0], math.sqrt(1 / 27), rel_tol=1e-6)
    # (rel_tol: the frozen norm divides by sqrt(1 + eps))
    assert all(math.isclose(s, math.sqrt(2 / 144), rel_tol=1e-4) for s in stds[1:]), stds
    assert not [r for r in report.rows if r.status == "untouched"] and not report.warnings
    with torch.no_grad():
        out = model(x)
    assert bool(torch.isfinite(out).all())
    q = float((out**2).mean())
    assert 0.1 < q < 10 and report.output_var is not None and 0.1 < report.output_var < 10


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (
            z.reshape(b, t, self.heads, d // self.heads).transpose(1, 2)
            for z in self.qkv(self.ln1(x)).split(d, dim=-1)
        )
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, t, d))
        return x + self.out(F.gelu(self.fc(self.ln2(x))))


class TinyGPT(nn.Module):
    """GPT-2 from plain torch modules: tied token embedding / LM head, learned positions, pre-norm blocks."""

    def __init__(self, vocab: int = 1000, d: int = 256, n_layer: int = 2, ctx: int = 64) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, 4) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
        for blk in self.blocks:
            x = blk(x)
        return self.lm_head(self.ln_f(x))


def test_tied_embeddings_start_near_ln_vocab():
    vocab, d = 1000, 256
    g = torch.Generator().manual_seed(1)
    idx, target = (torch.randint(0, vocab, (16, 64), generator=g) for _ in range(2))
    model = TinyGPT(vocab, d)
    report = init_model(model, "auto", example_input=idx[:2], seed=0)
    row = next(r for r in report.rows if r.name == "wte.weight")
    assert row.std is not None and math.isclose(row.std, 1 / math.sqrt(d), rel_tol=1e-6)  # the head's scale
    assert model.lm_head.weight is model.wte.weight
    with torch.no_grad():
        logits = model(idx)
    loss = float(F.cross_entropy(logits.reshape(-1, vocab), target.reshape(-1)))
    # unit-variance logits: E[loss] ~ ln V + 1/2; the geometric-mean tie gave 14.5 (2.1 ln V)
    assert abs(loss - math.log(vocab)) < 0.15 * math.log(vocab), loss
    # the position embedding summed with the tied one keeps its scale (tokens not drowned by positions)
    pos = next(r for r in report.rows if r.name == "wpe.weight")
    assert pos.std == row.std

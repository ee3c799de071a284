"""The plan's predicted output second moment (``Row.var_out``) against the measured ``E[y^2]`` of every weight
layer, on small torch models written the way the zoo's models are: an eager attention block (the average of
the values keeps ``E[sum p^2]`` of their variance), a causal one (rows average over 1..S keys), a pre-LN
transformer, a ``(1 + w)`` RMSNorm (Gemma), an embedding scaled by ``sqrt(d)`` and a max pool after a ReLU.

The target is the zoo's: within 3x. Each measurement is a mean of squares over at least 8 * 32 * 32 entries
(batch x tokens x features), whose relative standard error is a few percent, so a 3x band cannot be met by
chance; before the fixes these models missed by 5-10x (attention) or 1e2-1e8 (the Gemma patterns)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab

RATIO = 3.0
D, S, B = 64, 32, 8


class Attention(nn.Module):
    def __init__(self, d: int = D, heads: int = 4, causal: bool = False):
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.heads, self.causal = heads, causal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape
        h = self.heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, h, d // h).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        logits = torch.matmul(q, k.transpose(2, 3)) * (d // h) ** -0.5
        if self.causal:
            mask = torch.full((s, s), torch.finfo(x.dtype).min).triu(1)
            logits = logits + mask
        p = torch.softmax(logits, dim=-1)
        y = torch.matmul(p, v).transpose(1, 2).reshape(b, s, d)
        return self.o(y)


class Block(nn.Module):
    def __init__(self, d: int = D):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = Attention(d)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(self.ln2(x))))


class PreLN(nn.Module):
    def __init__(self, d: int = D, layers: int = 2):
        super().__init__()
        self.blocks = nn.ModuleList(Block(d) for _ in range(layers))
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x))


class OffsetRMSNorm(nn.Module):  # Gemma's: x / rms(x) * (1 + w), w initialized to zero
    def __init__(self, d: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-6)
        return (y * (1.0 + self.weight.float())).type_as(x)


class ScaledEmbedding(nn.Embedding):  # Gemma's: rows times sqrt(d)
    def __init__(self, n: int, d: int):
        super().__init__(n, d)
        self.register_buffer("embed_scale", torch.tensor(d**0.5), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return super().forward(ids) * self.embed_scale


class GemmaLike(nn.Module):
    def __init__(self, vocab: int = 500, d: int = D):
        super().__init__()
        self.embed = ScaledEmbedding(vocab, d)
        self.norm1 = OffsetRMSNorm(d)
        self.attn = Attention(d, causal=True)
        self.norm2 = OffsetRMSNorm(d)
        self.gate, self.up, self.down = nn.Linear(d, 2 * d), nn.Linear(d, 2 * d), nn.Linear(2 * d, d)
        self.norm = OffsetRMSNorm(d)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        x = x + self.attn(self.norm1(x))
        h = self.norm2(x)
        x = x + self.down(torch.nn.functional.gelu(self.gate(h), approximate="tanh") * self.up(h))
        return self.norm(x)


class Stem(nn.Module):  # ResNet's: conv, BN, ReLU, 3x3 max pool, then a conv on the pooled maxima
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(32)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.pool(torch.relu(self.bn(self.conv1(x)))))


Measured = dict[str, tuple[float, float]]


def measured(model: nn.Module, report: initlab.InitReport, batch: torch.Tensor) -> Measured:
    """layer -> (measured E[y^2], predicted) for every planned layer with a prediction."""
    rows = {r.layer: r for r in report.rows if r.layer and r.var_out is not None}
    seen: dict[str, float] = {}

    def hook(name: str) -> object:
        def record(_m: nn.Module, _a: object, y: torch.Tensor) -> None:
            seen.setdefault(name, float(y.double().square().mean()))
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n in rows]  # type: ignore[arg-type]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for h in handles:
            h.remove()
    return {n: (seen[n], rows[n].var_out) for n in rows if n in seen}  # type: ignore[misc]


def assert_within(got: Measured, expect: set[str]) -> None:
    assert expect <= set(got), f"no prediction for {sorted(expect - set(got))}"
    bad = {n: round(m / p, 3) for n, (m, p) in got.items() if not (1 / RATIO <= m / p <= RATIO)}
    assert not bad, f"measured / predicted outside [1/3, 3]: {bad}"


def tokens(model: nn.Module, seed: int) -> torch.Tensor:
    return torch.randn(B, S, D, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("scheme", ["auto", "he_normal", "torch:default"])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_average_predicted(scheme: str, causal: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(Attention(causal=causal))
    report = initlab.init_model(model, scheme, example_input=tokens(model, 1), seed=0)
    got = measured(model, report, tokens(model, 2))
    assert_within(got, {"0.q", "0.k", "0.v", "0.o"})
    if scheme == "auto":  # the averaged values are ~e/S of the value's variance: o gets the scale back
        m, p = got["0.o"]
        assert p == pytest.approx(1.0) and 0.5 < m < 2.0


@pytest.mark.parametrize("scheme", ["auto", "he_normal"])
def test_pre_ln_transformer_every_layer_predicted(scheme: str) -> None:
    torch.manual_seed(0)
    model = PreLN()
    report = initlab.init_model(model, scheme, example_input=tokens(model, 1), seed=0)
    got = measured(model, report, tokens(model, 2))
    names = {n for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.LayerNorm)}
    assert_within(got, names)


@pytest.mark.parametrize("scheme", ["auto", "he_normal"])
def test_gemma_patterns_predicted(scheme: str) -> None:
    """(1 + w) norms are planned w = 0 (gain 1) and predicted as norms; the embedding's sqrt(d) is counted."""
    torch.manual_seed(0)
    model = GemmaLike()
    ids = lambda seed: torch.randint(0, 500, (B, S), generator=torch.Generator().manual_seed(seed))  # noqa: E731
    report = initlab.init_model(model, scheme, example_input=ids(1), seed=0)
    for norm in ("norm1", "norm2", "norm"):
        row = report.row(f"{norm}.weight")
        assert row.status == "init" and row.std in (0.0, None) and row.mean in (0.0, None), row
        assert not bool(getattr(model, norm).weight.detach().ne(0).any())
    got = measured(model, report, ids(2))
    assert_within(got, {"embed", "norm1", "attn.q", "attn.o", "gate", "up", "down", "norm"})
    if scheme == "auto":  # unit rows after the sqrt(d) factor
        m, _ = got["embed"]
        assert 0.8 < m < 1.25


@pytest.mark.parametrize("scheme", ["auto", "he_normal"])
def test_max_pool_after_relu_predicted(scheme: str) -> None:
    """A 3x3 max pool of ReLU outputs keeps the largest of 9: ~5x the second moment a pass-through assumes."""
    torch.manual_seed(0)
    model = Stem()
    x = lambda seed: torch.randn(B, 3, 32, 32, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    report = initlab.init_model(model, scheme, example_input=x(1), seed=0)
    got = measured(model, report, x(2))
    assert_within(got, {"conv1", "bn", "conv2"})


def test_attention_share_matches_monte_carlo() -> None:
    """E[sum p^2] of a softmax over n i.i.d. N(0, s2) logits, against an independent torch estimate."""
    from initlab.model.propagate import attention_share

    g = torch.Generator().manual_seed(3)
    for n, s2 in [(2, 1.0), (16, 1.0), (16, 4.0), (128, 0.5)]:
        p = (torch.randn(20000, n, generator=g, dtype=torch.float64) * math.sqrt(s2)).softmax(-1)
        ref = float(p.square().sum(-1).mean())
        assert attention_share((float(n),), s2) == pytest.approx(ref, rel=0.1)
    assert attention_share((), 1.0) == 1.0  # no key counts recorded (fx): the value passes whole


@pytest.mark.parametrize("scheme", ["auto", "he_normal"])
def test_attention_over_averaged_tokens_predicted(scheme: str) -> None:
    """A second attention reads tokens that share the first one's average: that shared part passes its
    average whole (an i.i.d.-token prediction is ~n/e times too small), and the part of the keys every
    token shares cancels in the softmax."""
    torch.manual_seed(0)
    model = nn.Sequential(Attention(), Attention())
    report = initlab.init_model(model, scheme, example_input=tokens(model, 1), seed=0)
    got = measured(model, report, tokens(model, 2))
    assert_within(got, {"0.o", "1.q", "1.v", "1.o"})


def test_a_max_pool_window_spans_every_dim() -> None:
    """``MaxPool2d(3)`` takes the max of 9 entries, not 3 (AlexNet's classifier measured 3x its plan)."""
    from initlab.model._sizes import pool_window

    assert pool_window(3, 2) == 9 and pool_window(3, 1) == 3 and pool_window((2, 3), 2) == 6
    torch.manual_seed(0)
    model = Stem()
    x = lambda seed: torch.randn(B, 3, 32, 32, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    report = initlab.init_model(model, "auto", example_input=x(1), seed=0)
    m, p = measured(model, report, x(2))["conv2"]
    assert 0.75 < m / p < 1.33, m / p  # a window of 3 predicted half of it


class FusedAttention(Attention):
    """The same attention through ``F.scaled_dot_product_attention`` (timm's ViTs, HF's sdpa), with a
    boolean mask, ``is_causal`` or neither: the fused call hides the softmax discovery reads elsewhere."""

    def __init__(self, mask: str = "none") -> None:
        super().__init__()
        self.mask = mask

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, s, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, s, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        keep = torch.ones(s, s, dtype=torch.bool).tril() if self.mask == "bool" else None
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep, is_causal=self.mask == "causal")
        return self.o(y.transpose(1, 2).reshape(b, s, d))


@pytest.mark.parametrize("mask", ["none", "causal", "bool"])
def test_fused_attention_average_predicted_as_the_explicit_one(mask: str) -> None:
    """An i.i.d.-token average over 32 keys keeps ~1/20 of the values' variance: read as a pass-through, a
    fused attention's output projection measured 0.13x its plan (timm's DeiT, BEiT, CrossViT)."""
    torch.manual_seed(0)
    model = nn.Sequential(FusedAttention(mask))
    report = initlab.init_model(model, "he_normal", example_input=tokens(model, 1), seed=0)
    got = measured(model, report, tokens(model, 2))
    assert_within(got, {"0.q", "0.v", "0.o"})
    m, p = got["0.o"]
    assert 0.8 < m / p < 1.25, m / p  # (fixed seeds; a pass-through plan is off by 1 / share, ~10x)


class ClassToken(nn.Module):
    """ViT's class token: a parameter expanded to the batch and put before the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.cls = nn.Parameter(torch.zeros(1, 1, D))
        self.norm, self.attn = nn.LayerNorm(D), FusedAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], dim=1)
        return self.attn(self.norm(x))


def test_a_parameter_expanded_to_the_batch_is_not_its_size() -> None:
    """``cls.expand(B, -1, -1)`` moves the parameter; the batch size is a size, not data (read as data, the
    class token's signal was B^2 = 64 with mean 8, and every token seemed to share 80% of its signal)."""
    torch.manual_seed(0)
    model = ClassToken()
    report = initlab.init_model(model, "he_normal", example_input=tokens(model, 1), seed=0)
    m, p = measured(model, report, tokens(model, 2))["attn.o"]
    assert 0.8 < m / p < 1.25, m / p

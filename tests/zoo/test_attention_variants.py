"""Attention as timm and HF write it beyond softmax(q k^T) v, each planned within the zoo's 3x: ConViT's
gated mix of two softmaxes renormalized by its row sums, a concatenation of unequal parts (CrossViT's class
token before its patch tokens), XCiT's cross-covariance attention over L2-normalized channels (and its
class attention after a stack of it), VOLO's outlook attention (unfold, a local softmax, fold), BERT's
token-type embedding that every position looks up alike, DeBERTa's keys divided by a scale computed in the
forward, and ResNeSt's split attention (branches weighted by a softmax over them, then summed).

Each measurement is a mean of squares over at least 512 entries (at most ~6% standard error), so a 3x
band is not met by chance; each test seeds torch's global RNG for the constructor's draws, which the
example pass reads; before the walker read these patterns the attention outputs missed their
plans by 0.01-0.06x (ConViT, CrossViT, XCiT), 0.0005x (VOLO) and 4x (BERT); each model here fails
before its rule (0.02-0.24x or 3.4-29x)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab

from .test_second_moment import D, assert_within, measured

B, S, HEADS = 8, 16, 4


pytestmark = pytest.mark.usefixtures("seeded_constructors")


def split(t: torch.Tensor) -> torch.Tensor:
    b, s, d = t.shape
    return t.view(b, s, HEADS, d // HEADS).transpose(1, 2)


def merge(t: torch.Tensor) -> torch.Tensor:
    b, h, s, dh = t.shape
    return t.transpose(1, 2).reshape(b, s, h * dh)


class GatedPositionalAttention(nn.Module):
    """ConViT's GPSA: ``(1 - sigmoid(g)) * softmax(q k^T) + sigmoid(g) * softmax(pos)``, divided by its own
    row sums, averages the values."""

    def __init__(self) -> None:
        super().__init__()
        self.qk, self.v, self.proj = nn.Linear(D, 2 * D), nn.Linear(D, D), nn.Linear(D, D)
        self.pos_proj = nn.Linear(3, HEADS)
        self.gating = nn.Parameter(torch.ones(HEADS))
        self.register_buffer("rel", torch.randn(1, S, S, 3, generator=torch.Generator().manual_seed(5)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k = (split(t) for t in self.qk(x).chunk(2, dim=-1))
        patch = (q @ k.transpose(-2, -1) * (D // HEADS) ** -0.5).softmax(dim=-1)
        pos = self.pos_proj(self.rel.expand(x.shape[0], -1, -1, -1)).permute(0, 3, 1, 2).softmax(dim=-1)
        gate = torch.sigmoid(self.gating).view(1, -1, 1, 1)
        attn = (1.0 - gate) * patch + gate * pos
        attn /= attn.sum(dim=-1).unsqueeze(-1)
        return self.proj(merge(attn @ split(self.v(x))))


class UnequalParts(nn.Module):
    """A concatenation of 4 loud channels and 60 quiet ones (DenseNet's and Inception's joins, CrossViT's one
    class token before its patch tokens): its second moment is the parts' average weighted by their
    entries, (4 * 100 + 60 * 1) / 64, not the plain average of the two."""

    def __init__(self) -> None:
        super().__init__()
        self.loud, self.quiet, self.out = nn.Linear(D, 4), nn.Linear(D, 60), nn.Linear(64, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([self.loud(x) * 10.0, self.quiet(x)], dim=-1))


class CrossCovarianceAttention(nn.Module):
    """XCiT's XCA: queries and keys L2-normalized over the tokens, attention among channels."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.temperature = nn.Parameter(torch.ones(HEADS, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, HEADS, d // HEADS).permute(2, 0, 3, 4, 1).unbind(0)
        attn = (F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)) * self.temperature
        y = (attn.softmax(dim=-1) @ v).permute(0, 3, 1, 2).reshape(b, n, d)
        return self.proj(y)


class SharedTokensChannelAttention(nn.Module):
    """Tokens that share most of their signal (a per-sample context added to each), then XCA: an average over
    channels keeps none of what the tokens share (planned as if it did, proj measured 0.09x its plan)."""

    def __init__(self, n: int = 64) -> None:
        super().__init__()
        self.types, self.norm, self.xca = nn.Embedding(2, D), nn.LayerNorm(D), CrossCovarianceAttention()
        self.register_buffer("ids", torch.zeros(1, n, dtype=torch.long), persistent=False)  # as BERT's

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.xca(self.norm(x + self.types(self.ids.expand(x.shape[0], -1))))


class ClassAttention(nn.Module):
    """CaiT's and XCiT's class attention: the class token's query over every token's key and value."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.proj = (nn.Linear(D, D) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = split(self.q(x[:, :1])), split(self.k(x)), split(self.v(x))
        return self.proj(merge((q @ k.transpose(-2, -1) * (D // HEADS) ** -0.5).softmax(dim=-1) @ v))


class ChannelAttentionThenClassAttention(nn.Module):
    """XCiT: tokens sharing a little (a positional table, here a constant at 0.3: ~8% of their second
    moment), 12 pre-norm XCA blocks, then class attention over the tokens. Each XCA output was carried as
    shared by all tokens (an average over channels read as one over positions), the tokens' shared part grew
    block by block, and the class attention was planned for averaging it: its proj measured 0.25x."""

    def __init__(self, n: int = 64, depth: int = 12) -> None:
        super().__init__()
        self.types = nn.Embedding(2, D)
        self.norms = nn.ModuleList(nn.LayerNorm(D) for _ in range(depth + 1))
        self.blocks = nn.ModuleList(CrossCovarianceAttention() for _ in range(depth))
        self.cls = ClassAttention()
        self.register_buffer("ids", torch.zeros(1, n, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + 0.3 * self.types(self.ids.expand(x.shape[0], -1))
        for norm, block in zip(self.norms, self.blocks, strict=False):
            x = x + block(norm(x))
        return self.cls(self.norms[-1](x))


class ClassTokenCutBack(nn.Module):
    """XCiT's class-attention block: the class token normalized and joined back to the patch tokens, then cut
    off again for its MLP (planned for the patch tokens' second moment, 16x the class token's, fc1 measured
    0.06x its plan)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(D), nn.Linear(D, 4 * D), nn.Linear(4 * D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.norm(x[:, 0:1]), 4.0 * x[:, 1:]], dim=1)
        cls = x[:, 0:1]
        return torch.cat([self.fc2(F.gelu(self.fc1(cls))), x[:, 1:]], dim=1)


class PooledQueries(nn.Module):
    """Hiera's mask-unit attention at a stage change: each query the max of 4 tokens' (``amax``), which makes
    the logits larger and the average sharper (read as the queries themselves, Hiera's proj measured 3-4x)."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (split(t) for t in self.qkv(x).chunk(3, dim=-1))
        q = q.reshape(b, HEADS, 4, n // 4, d // HEADS).amax(dim=2)
        return self.proj(merge(F.scaled_dot_product_attention(q, k, v)))


class OutlookAttention(nn.Module):
    """VOLO's: each 3x3 window's values averaged by weights a Linear layer computes from the centre, the
    windows' outputs summed back into the map by ``F.fold``."""

    def __init__(self, side: int = 8, k: int = 3) -> None:
        super().__init__()
        self.side, self.k = side, k
        self.v, self.attn, self.proj = nn.Linear(D, D), nn.Linear(D, HEADS * k**4), nn.Linear(D, D)
        self.unfold = nn.Unfold(k, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        s, kk, dh = self.side, self.k * self.k, d // HEADS
        v = self.unfold(self.v(x).transpose(1, 2).reshape(b, d, s, s))
        v = v.reshape(b, HEADS, dh, kk, n).permute(0, 1, 4, 3, 2)
        attn = self.attn(x).reshape(b, n, HEADS, kk, kk).permute(0, 2, 1, 3, 4)
        y = ((attn * dh**-0.5).softmax(dim=-1) @ v).permute(0, 1, 4, 3, 2).reshape(b, d * kk, n)
        y = F.fold(y, output_size=(s, s), kernel_size=self.k, padding=1)
        return self.proj(y.reshape(b, d, n).transpose(1, 2))


class TokenTypes(nn.Module):
    """BERT's embeddings: word + position + token type (all type 0, from a buffer), LayerNorm, then
    attention."""

    def __init__(self, vocab: int = 500) -> None:
        super().__init__()
        self.word, self.pos, self.types = nn.Embedding(vocab, D), nn.Embedding(S, D), nn.Embedding(2, D)
        self.norm = nn.LayerNorm(D)
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))

        # HF's buffers: position ids 0..S-1 and all-zero token types
        self.register_buffer("position_ids", torch.arange(S).unsqueeze(0), persistent=False)
        self.register_buffer("token_type_ids", torch.zeros(1, S, dtype=torch.long), persistent=False)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        b, s = ids.shape
        types = self.token_type_ids[:, :s].expand(b, s)
        h = self.norm(self.word(ids) + self.pos(self.position_ids[:, :s]) + self.types(types))
        a = F.scaled_dot_product_attention(split(self.q(h)), split(self.k(h)), split(self.v(h)))
        return self.o(merge(a))


def _check(model: nn.Module, batch: object, other: object, expect: set[str]) -> None:
    report = initlab.init_model(model, "auto", example_input=batch, seed=0)
    assert_within(measured(model, report, other), expect)


def _tokens(seed: int, n: int = S) -> torch.Tensor:
    return torch.randn(B, n, D, generator=torch.Generator().manual_seed(seed))


def test_mixed_softmaxes_renormalized_by_their_row_sums_average_like_attention() -> None:
    _check(GatedPositionalAttention(), _tokens(1), _tokens(2), {"proj", "v", "qk"})


def test_a_concatenation_weighs_its_parts_by_their_entries() -> None:
    _check(UnequalParts(), _tokens(1), _tokens(2), {"out", "loud", "quiet"})


def test_l2_normalized_queries_and_keys_give_near_uniform_channel_attention() -> None:
    _check(CrossCovarianceAttention(), _tokens(1, 64), _tokens(2, 64), {"proj", "qkv"})


def test_an_average_over_channels_keeps_nothing_of_what_the_tokens_share() -> None:
    _check(SharedTokensChannelAttention(), _tokens(1, 64), _tokens(2, 64), {"xca.proj", "xca.qkv", "types"})


def test_channel_attention_outputs_are_not_shared_by_the_tokens() -> None:
    _check(ChannelAttentionThenClassAttention(), _tokens(1, 64), _tokens(2, 64),
           {"cls.proj", "cls.v", "blocks.11.proj", "blocks.0.qkv"})


def test_a_slice_that_cuts_a_joined_part_back_off_reads_that_part() -> None:
    _check(ClassTokenCutBack(), _tokens(1, 64), _tokens(2, 64), {"fc1", "fc2"})


def test_queries_max_pooled_over_tokens_sharpen_the_attention() -> None:
    model = PooledQueries()
    report = initlab.init_model(model, "auto", example_input=_tokens(1, 64), seed=0)
    got = measured(model, report, _tokens(2, 64))
    assert all(1 / 1.5 < m / p < 1.5 for m, p in got.values()), got  # proj 1.9x before


def test_outlook_attention_folds_its_windows_back_into_the_map() -> None:
    _check(OutlookAttention(), _tokens(1, 64), _tokens(2, 64), {"proj", "attn", "v"})


def test_an_embedding_every_position_looks_up_alike_is_shared_by_the_tokens() -> None:
    ids = lambda seed: torch.randint(0, 500, (B, S), generator=torch.Generator().manual_seed(seed))  # noqa: E731
    _check(TokenTypes(), ids(1), ids(2), {"o", "v"})


class ScaledByATensor(nn.Module):
    """DeBERTa's attention: keys divided by ``sqrt(head_size)`` computed as a tensor in the forward."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.o = (nn.Linear(D, D) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        scale = torch.sqrt(torch.tensor(q.size(-1), dtype=torch.float))
        p = torch.softmax(q @ (k.transpose(-1, -2) / scale.to(dtype=q.dtype)), dim=-1)
        return self.o(merge(p @ v))


class SplitAttention(nn.Module):
    """ResNeSt's and SK-Net's: two branches weighted by a softmax over the branches and summed."""

    def __init__(self, c: int = 32) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.fc1, self.fc2, self.out = nn.Conv2d(c, c, 1), nn.Conv2d(c, 2 * c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[0], x.shape[1]
        x = F.relu(self.conv(x)).reshape(b, 2, c, *x.shape[2:])
        gap = x.sum(dim=1).mean((2, 3), keepdim=True)
        attn = self.fc2(F.relu(self.fc1(gap))).view(b, 2, c, 1, 1).softmax(dim=1)
        return self.out((x * attn).sum(dim=1))


def test_keys_divided_by_a_scale_computed_in_the_forward() -> None:
    _check(ScaledByATensor(), _tokens(1), _tokens(2), {"o", "v"})


def test_branches_weighted_by_a_softmax_over_them_and_summed() -> None:
    x = lambda seed: torch.randn(B, 32, 8, 8, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    _check(SplitAttention(), x(1), x(2), {"out", "fc1", "fc2", "conv"})



class PaddedWindows(nn.Module):
    """TinyViT's, SAM's and Swin's window attention on a map its windows do not tile: a 3x3 map zero-padded
    to one 12x12 window, a norm, q/k/v, the attention and its projection on every position of it, and a
    slice back to 3x3. Hooks on the norm and on qkv average over the padding too (9 of 144 positions carry
    the signal; predicted 16x too large before); the carrying rows' attention also spreads over the 135
    padded keys (logit 0, value 0) and the padded rows average the 9 values alike, which the projection's
    hook sees; after the slice the map is whole again."""

    def __init__(self) -> None:
        super().__init__()
        self.norm, self.qkv, self.mlp = nn.LayerNorm(D), nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.proj = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, 3, D)
        b, h, w, d = x.shape
        t = self.norm(F.pad(x, (0, 0, 0, 12 - w, 0, 12 - h))).reshape(b, 144, d)
        q, k, v = (split(p) for p in self.qkv(t).chunk(3, dim=-1))
        a = self.proj(merge(F.scaled_dot_product_attention(q, k, v))).reshape(b, 12, 12, d)[:, :h, :w]
        return self.mlp(x + a)


def test_positions_a_zero_pad_adds_are_averaged_in_until_the_slice_takes_them_off() -> None:
    # Within 1.5x, not only 3x: the projection and the layer after the slice measured 0.58x and 0.56x of
    # their plans with the padded keys read as carrying ones (a plan drawn 0.58x too small); over init
    # seeds 0-7 the projection measures 0.89-1.25x its prediction now, so 1.5x is about 4 of that spread.
    x = lambda seed: torch.randn(B, 3, 3, D, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    model = PaddedWindows()
    report = initlab.init_model(model, "auto", example_input=x(1), seed=0)
    got = measured(model, report, x(2))
    assert_within(got, {"norm", "qkv", "proj", "mlp"})
    assert all(1 / 1.5 <= got[n][0] / got[n][1] <= 1.5 for n in ("norm", "qkv", "proj", "mlp")), got

"""Patterns of real models (issue 13 items 2, 3, 5): norms held in buffers, tied input/output embeddings,
parameters no layer owns (fused MoE experts, ViT tokens, position tables, layer scale)."""

from __future__ import annotations

import math
from typing import Any

import pytest
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
    # the first conv sees the unit input, the others a ReLU output (edge of chaos, sigma_w^2 = 2); on 16x16
    # maps a 3x3 kernel's border rows and columns read 2 of its 3 taps
    taps = (46 / 48) ** 2
    assert math.isclose(stds[0], math.sqrt(1 / (27 * taps)), rel_tol=1e-6)
    # (rel_tol: the frozen norm divides by sqrt(1 + eps))
    assert all(math.isclose(s, math.sqrt(2 / (144 * taps)), rel_tol=1e-4) for s in stds[1:]), stds
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


class LayerScale(nn.Module):
    def __init__(self, d: int, init: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((d,), init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Experts(nn.Module):
    """HF Mixtral's layout: E weight matrices (E, out, in), each used through F.linear."""

    def __init__(self, n: int, d: int, hidden: int) -> None:
        super().__init__()
        self.up = nn.Parameter(torch.empty(n, hidden, d).uniform_(-5, 5))
        self.down = nn.Parameter(torch.empty(n, d, hidden).uniform_(-5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.zeros_like(x)
        for e in range(self.up.shape[0]):
            out = out + F.linear(F.silu(F.linear(x, self.up[e])), self.down[e])
        return out / self.up.shape[0]


class TinyViT(nn.Module):
    def __init__(self, d: int = 64, patches: int = 16, regs: int = 4) -> None:
        super().__init__()
        self.patch = nn.Linear(48, d)
        self.cls_token = nn.Parameter(torch.full((1, 1, d), 3.0))
        self.reg_token = nn.Parameter(torch.full((1, regs, d), 3.0))
        self.pos_embed = nn.Parameter(torch.full((1, patches + 1, d), 3.0))
        self.relative_position_bias_table = nn.Parameter(torch.full((49, 4), 3.0))
        self.norm = nn.LayerNorm(d)
        self.experts = Experts(4, d, 2 * d)
        self.ls = LayerScale(d)
        self.head = nn.Linear(d, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.patch(x)
        h = torch.cat([self.cls_token.expand(len(x), -1, -1), h], dim=1) + self.pos_embed
        h = torch.cat([h, self.reg_token.expand(len(x), -1, -1)], dim=1)
        h = h + self.ls(self.experts(self.norm(h)))
        return self.head(h[:, 0] + self.relative_position_bias_table.sum())


def test_parameters_no_layer_owns_get_their_authors_rule():
    model = TinyViT()
    x = torch.randn(2, 16, 48)
    for scheme in ("auto", "he_normal"):
        report = init_model(model, scheme, example_input=x, seed=0)
        rows = {r.name: r for r in report.rows}
        assert not [r for r in report.rows if r.status == "untouched"], scheme
        assert rows["cls_token"].rule == rows["reg_token"].rule == "tokens trunc_normal(.02)"
        assert rows["pos_embed"].rule == "timm:pos_embed trunc_normal(.02)"
        assert rows["relative_position_bias_table"].rule.startswith("swin:relative_position_bias_table")
        assert rows["ls.gamma"].status == "kept" and "constructor value kept" in rows["ls.gamma"].rule
        assert bool((model.ls.gamma == 1e-5).all())
        n = model.pos_embed.numel()
        assert abs(float(model.pos_embed.detach().std()) - 0.02) < 5 * 0.02 / math.sqrt(2 * n)
        tokens = torch.cat([model.cls_token.detach().flatten(), model.reg_token.detach().flatten()])
        assert abs(float(tokens.std()) - 0.02) < 5 * 0.02 / math.sqrt(2 * tokens.numel())
        # fused experts: fans per expert (fan_in = d for up, 2d for down), the scheme's weight rule
        up_std = 1 / math.sqrt(64) if scheme == "auto" else math.sqrt(2 / 64)
        up = model.experts.up.detach()
        assert abs(float(up.std()) - up_std) < 5 * up_std / math.sqrt(2 * up.numel()), scheme
        assert any("rule moe_experts" in note for note in report.notes)


class TalkingHeads(nn.Module):
    """CaiT's talking-heads attention: Linear layers over the heads mix the logits and, after the softmax,
    the probabilities."""

    def __init__(self, d: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.heads, self.qkv, self.proj = heads, nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.proj_l, self.proj_w = nn.Linear(heads, heads), nn.Linear(heads, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = self.proj_l(((q @ k.transpose(-2, -1)) * 0.35).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        attn = self.proj_w(attn.softmax(dim=-1).permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, d))


def test_a_layer_reading_softmax_probabilities_is_planned_for_their_entries():
    """proj_w reads probabilities (entries ~1/n): planned as if they were a 1e-12 signal, it drew std 3.5e5
    in CaiT and the attention output exploded; its measured output is now within 3x of the plan's."""
    model = TalkingHeads()
    g = torch.Generator().manual_seed(0)
    report = init_model(model, "auto", example_input=torch.randn(8, 16, 32, generator=g), seed=0)
    rows = {r.name: r for r in report.rows}
    seen: dict[str, float] = {}

    def record(name: str) -> Any:
        def hook(module: nn.Module, args: Any, out: torch.Tensor) -> None:
            seen[name] = float(out.detach().square().mean())
        return hook

    for name in ("proj_w", "proj"):
        getattr(model, name).register_forward_hook(record(name))
    with torch.no_grad():
        model(torch.randn(8, 16, 32, generator=g))
    for name in ("proj_w", "proj"):
        predicted = rows[f"{name}.weight"].var_out
        assert predicted is not None and 1 / 3 < seen[name] / predicted < 3, (name, seen[name], predicted)


class ObjectQueries(nn.Module):
    """DETR's decoder entry: the query table read whole (``.weight`` repeated over the batch), queries that
    start as zeros shaped like it, positions added to queries and keys but not to values."""

    def __init__(self, d: int = 32, queries: int = 10) -> None:
        super().__init__()
        self.query_pos = nn.Embedding(queries, d)
        self.q_proj, self.v_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.norm, self.out = nn.LayerNorm(d), nn.Linear(d, d)

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        pos = self.query_pos.weight.unsqueeze(0).repeat(memory.shape[0], 1, 1)
        tgt = torch.zeros_like(pos)
        attn = torch.softmax(self.q_proj(tgt + pos) @ memory.transpose(1, 2), dim=-1)
        return self.out(self.norm(tgt + attn @ memory) + self.v_proj(tgt))


def test_a_table_read_whole_and_a_zero_input_are_planned_for_what_they_are():
    """The query table read as data carries its planned rows (read as its constructor's values, q_proj
    drew std 8.4 in DETR); a layer whose input is predicted zero gets a unit-input scale, not 1e12 times it
    (DETR's first decoder v_proj drew std 1.8e5), and the report says its output is not predicted."""
    model = ObjectQueries()
    with torch.no_grad():
        model.query_pos.weight.mul_(0.02)  # HF DETR's constructor draws N(0, 0.02): not what the plan draws
    g = torch.Generator().manual_seed(0)
    report = init_model(model, "auto", example_input=torch.randn(4, 6, 32, generator=g), seed=0)
    rows = {r.name: r for r in report.rows}
    assert rows["v_proj.weight"].std == pytest.approx(1 / math.sqrt(32), rel=1e-6)  # unit input, unit output
    assert rows["v_proj.weight"].var_out is None and "input is predicted zero" in rows["v_proj.weight"].note
    seen: dict[str, float] = {}
    model.q_proj.register_forward_hook(lambda m, a, out: seen.update(q=float(out.detach().square().mean())))
    with torch.no_grad():
        model(torch.randn(4, 6, 32, generator=g))
    predicted = rows["q_proj.weight"].var_out
    assert predicted is not None and 1 / 3 < seen["q"] / predicted < 3, (seen["q"], predicted)


def test_a_layernorm_over_one_entry_outputs_its_bias_and_the_report_says_so():
    """timm's CSATv2 normalizes over one channel: the output is the bias (0), never the unit signal a norm
    gives; the layer after it reads zero (planned for a unit input, output not predicted)."""
    model = nn.Sequential(nn.Linear(8, 1), nn.LayerNorm(1), nn.Linear(1, 4))
    report = init_model(model, "auto", example_input=torch.randn(16, 8), seed=0)
    assert report.row("1.weight").var_out == 0.0
    assert any("LayerNorm over one entry" in n for n in report.notes)
    assert "not predicted" in report.row("2.weight").note
    with torch.no_grad():
        assert float(model[:2](torch.randn(16, 8)).abs().max()) == 0.0


class RmsNormAct2d(nn.Module):
    """timm's: an RMS norm over channels with its activation and dropout as parameter-free children."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.drop, self.act = nn.Identity(), nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.square().mean(1, keepdim=True) + 1e-6) * self.weight[:, None, None]
        return self.act(self.drop(x))


def test_a_hand_written_norm_with_its_activation_inside_is_a_norm():
    """(With children it was no norm: MobileNetV5's convs after it drew std 4.4e4.)"""
    model = nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), RmsNormAct2d(32), nn.Conv2d(32, 32, 1))
    report = init_model(model, "auto", example_input=torch.randn(4, 3, 8, 8), seed=0)
    assert report.row("1.weight").rule == "auto:norm" and report.row("1.weight").mean == 1.0
    assert report.row("0.weight").activation == "gelu"  # the norm's inner activation follows the conv
    assert report.row("2.weight").std < 1.0


def test_an_orthogonal_draw_too_big_to_be_worth_its_qr_is_gaussian():
    """Issue 13 item 7: VGG13's 25088 -> 4096 classifier got looks-linear orthogonal and took 10 s of QR
    (VGG16, one layer short of the plain-chain rule, 0.1 s). Past the QR budget the block is a Gaussian of
    the same variance, and the row says why; the initial network stays the looks-linear identity map."""
    from initlab.model.auto import QR_FLOPS, qr_affordable

    assert qr_affordable(1024, 1024) and not qr_affordable(12544, 2048)
    wide = 4096  # a looks-linear half of 2048 x 2048: 2 * 2048^3 = 1.7e10 > QR_FLOPS
    assert 2 * (wide // 2) ** 3 > QR_FLOPS
    layers: list[nn.Module] = [nn.Linear(16, wide), nn.ReLU()]
    for _ in range(8):
        layers += [nn.Linear(wide, wide), nn.ReLU()]
    model = nn.Sequential(*layers, nn.Linear(wide, 16))
    # (as wide as VGG's classifier, a chain this short is only orthogonal when asked)
    x = torch.randn(2, 16)
    report = init_model(model, "auto", example_input=x, seed=0, dry_run=True, orthogonal=True)
    row = report.row("2.weight")
    assert row.scheme.startswith("looks-linear normal") and "QR" in row.scheme, row.scheme
    assert row.std == pytest.approx((1 / (wide // 2)) ** 0.5, rel=1e-6)  # gain 1 over the 2048 block


class ScaledStdConv2d(nn.Conv2d):
    """timm's NF-Net conv (Brock et al. 2021), as timm writes it: each filter standardized in forward, times
    ``gain * gamma / sqrt(fan_in)``; ``gamma`` (an activation's gain) and ``gain`` (1) set the output."""

    def __init__(self, cin: int, cout: int, k: int, gamma: float = 1.0) -> None:
        super().__init__(cin, cout, k, padding=k // 2)
        self.gain = nn.Parameter(torch.ones(cout, 1, 1, 1))
        self.scale = gamma * self.weight[0].numel() ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = F.batch_norm(self.weight.reshape(1, self.out_channels, -1), None, None,
                         weight=(self.gain * self.scale).view(-1), training=True, momentum=0.0, eps=1e-6)
        return F.conv2d(x, w.reshape_as(self.weight), self.bias, self.stride, self.padding)


def test_a_weight_standardized_conv_is_predicted_from_its_gain_and_its_gain_kept():
    """The drawn scale drops out of a standardized conv: its output is gamma^2 gain^2 Var(x) -- its filters
    have zero mean, so the input's mean drops out too (nf_regnet_b0's convs measured 3-7x the plan, its SE
    layers 25-50x). The gain keeps its constructor value, named."""
    torch.manual_seed(0)
    model = nn.Sequential(ScaledStdConv2d(3, 32, 3, gamma=2.0), nn.SiLU(),
                          ScaledStdConv2d(32, 32, 3, gamma=1.8))
    x = lambda seed: torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    report = init_model(model, "auto", example_input=x(1), seed=0)
    rows = {r.name: r for r in report.rows}
    assert rows["0.gain"].status == "kept" and "standardized" in rows["0.gain"].rule
    assert "standardized in forward" in rows["0.weight"].note
    seen: dict[str, float] = {}
    hooks = [model[i].register_forward_hook(  # (a hook's non-None return would replace the output)
        lambda m, a, y, i=i: seen.update({str(i): float(y.square().mean())})) for i in (0, 2)]
    with torch.no_grad():
        model(x(2))
    for h in hooks:
        h.remove()
    for i in ("0", "2"):
        pred = rows[f"{i}.weight"].var_out
        # (fixed seeds; taking the SiLU's mean through the zero-mean filters would give 0.79 for layer 2)
        assert pred is not None and 0.87 < seen[i] / pred < 1.15, (i, seen[i], pred)


class TinyLayerScale(nn.Module):
    """MobileNetV5's: a block without a skip whose output is scaled by a 1e-5 layer scale, then a LayerNorm
    (eps 1e-6) and a Linear layer: the norm's input, 1e-10, sits below its eps."""

    def __init__(self, d: int = 64) -> None:
        super().__init__()
        self.fc, self.norm, self.out = nn.Linear(d, d), nn.LayerNorm(d, eps=1e-6), nn.Linear(d, d)
        self.gamma = nn.Parameter(torch.full((d,), 1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(self.fc(x) * self.gamma.view(1, -1)))  # as timm's LayerScale2d reads it


def test_a_norm_whose_input_is_below_its_eps_is_planned_for_what_it_passes():
    """``x / sqrt(q + eps)`` of a 1e-10 input with eps 1e-6 is 1e-4, not 1: planned as 1, the norm and the
    layer after it measured 1e-4 of their plans. Mean squares over 256 x 64 entries: a few % of spread."""
    model = TinyLayerScale()
    x = lambda seed: torch.randn(256, 64, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    report = init_model(model, "auto", example_input=x(1), seed=0)
    seen: dict[str, float] = {}
    for name in ("norm", "out"):
        getattr(model, name).register_forward_hook(
            lambda m, a, out, name=name: seen.update({name: float(out.detach().double().square().mean())}))
    with torch.no_grad():
        model(x(2))
    predicted = {r.layer: r.var_out for r in report.rows if r.name.endswith("weight") and r.var_out}
    for name in ("norm", "out"):
        assert 1 / 3 < seen[name] / predicted[name] < 3, (name, seen[name], predicted[name])
    assert predicted["norm"] < 1e-3  # the norm passes about 1e-4 of a unit signal

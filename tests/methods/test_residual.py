import math

import pytest
import torch
from torch import nn

import initlab
from initlab.methods import ResidualError
from initlab.model import discover
from initlab.model.state import ModelState


class Block(nn.Module):
    def __init__(self, width: int, norm: bool = False) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(width, width, bias=not norm), nn.Linear(width, width, bias=not norm)
        self.bn1 = nn.BatchNorm1d(width) if norm else nn.Identity()
        self.bn2 = nn.BatchNorm1d(width) if norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.fc2(torch.relu(self.bn1(self.fc1(x))))))


class ResMLP(nn.Module):
    def __init__(self, blocks: int, width: int, norm: bool = False) -> None:
        super().__init__()
        self.stem = nn.Linear(12, width)
        self.blocks = nn.Sequential(*[Block(width, norm) for _ in range(blocks)])
        self.head = nn.Linear(width, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(torch.relu(self.stem(x))))


def data(n: int = 64, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 12, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_fixup_rule_scales_zeroes_and_keeps_rng():
    torch.manual_seed(0)
    blocks, width = 16, 64
    model = ResMLP(blocks, width)
    rng = torch.get_rng_state()
    report = initlab.init_model(model, "fixup", example_input=data()[0], seed=1)
    assert torch.equal(torch.get_rng_state(), rng)
    for block in model.blocks:
        assert torch.count_nonzero(block.fc2.weight) == 0 and torch.count_nonzero(block.fc2.bias) == 0
    assert torch.count_nonzero(model.head.weight) == 0
    # He normal for ReLU, times L^(-1/(2m-2)) = 16^(-1/2)
    samples = torch.cat([b.fc1.weight.flatten() for b in model.blocks])
    expected = math.sqrt(2 / width) * blocks ** -0.5
    se = expected / math.sqrt(2 * samples.numel())
    assert abs(samples.std().item() - expected) < 5 * se
    stem = math.sqrt(2 / 12)
    assert abs(model.stem.weight.std().item() - stem) < 5 * stem / math.sqrt(2 * 12 * 64)
    assert "16 residual branches" in report.notes[0]
    assert report.row("blocks.3.fc1.weight").note.startswith("he_normal x L^(-1/(2m-2)) = 0.25")


def test_fixup_transform_identity_at_init_and_report():
    torch.manual_seed(0)
    model = ResMLP(4, 16)
    x, _ = data()
    report = initlab.fixup(model, x, seed=0)
    # 4 branches: bias before fc1 and fc2 (fc1 has its own bias: no bias after it), scale + bias after fc2
    assert len(report.added) == 4 * 4 + 1 and report.hooks == 4 * 3 + 1
    assert report.added["blocks.0.fc2.fixup_scale"] == 1.0 and report.added["head.fixup_bias_in"] == 0.0
    assert "blocks.2.fc1.fixup_bias_in" in model.state_dict()
    with torch.no_grad():
        h = torch.relu(model.stem(x))
        assert torch.equal(model.blocks(h), h)  # each block starts as the identity of the non-negative trunk
        assert torch.count_nonzero(model(x)) == 0
    # the scalars are trained: the gradient reaches them once the classifier has moved
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), data()[1]).backward()
        opt.step()
    assert model.blocks[0].fc2.fixup_scale.grad is not None
    assert model.blocks[0].fc2.fixup_scale.item() != 1.0


def test_fixup_trains_at_lr_01_where_he_init_explodes():
    x, y = data(128)
    he, fix = ResMLP(100, 16), ResMLP(100, 16)
    initlab.init_model(he, "he_normal", seed=0)
    with torch.no_grad():
        assert not (nn.functional.cross_entropy(he(x), y).item() < 1e6)  # 2^100 growth: overflow or huge
    initlab.fixup(fix, x, seed=0)
    opt = torch.optim.SGD(fix.parameters(), lr=0.1)
    losses = []
    for _ in range(15):
        loss = nn.functional.cross_entropy(fix(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[0] == pytest.approx(math.log(10), abs=1e-6)  # zero classifier: uniform prediction
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0] - 0.05


def test_transform_refuses_twice_and_non_residual_models_unchanged():
    model = ResMLP(2, 8)
    x, _ = data()
    initlab.fixup(model, x, seed=0)
    snap = ModelState.capture(model)
    with pytest.raises(ResidualError, match="applied before"):
        initlab.fixup(model, x)
    with pytest.raises(ResidualError, match="applied before"):
        initlab.skipinit(model, x)
    assert snap.matches(model)
    plain = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3))
    snap = ModelState.capture(plain)
    with pytest.raises(ResidualError, match="no residual branch"):
        initlab.fixup(plain, x)
    with pytest.raises(ResidualError, match="no residual branch"):
        initlab.init_model(plain, "fixup", example_input=x)
    assert snap.matches(plain) and not any("fixup" in n for n, _ in plain.named_parameters())


def test_skipinit_and_rezero():
    torch.manual_seed(0)
    model = ResMLP(9, 8)
    x, _ = data()
    report = initlab.skipinit(model, x, alpha=None)
    assert report.added == {f"blocks.{i}.fc2.skipinit_alpha": pytest.approx(1 / 3) for i in range(9)}
    rezero = ResMLP(3, 8)
    initlab.init_model(rezero, "rezero", example_input=x, seed=0)
    with torch.no_grad():
        h = torch.relu(rezero.stem(x))
        assert torch.equal(rezero.blocks(h), h)
    assert sum("skipinit_alpha" in n for n, _ in rezero.named_parameters()) == 3


def test_zero_residual_norm_gamma():
    torch.manual_seed(0)
    model = ResMLP(3, 8, norm=True)
    initlab.init_model(model, "zero_residual_norm", example_input=data()[0], seed=0)
    for block in model.blocks:
        assert torch.count_nonzero(block.bn2.weight) == 0 and torch.all(block.bn1.weight == 1)
    with pytest.raises(ResidualError, match="normalization"):
        initlab.init_model(ResMLP(2, 8), "zero_residual_norm", example_input=data()[0], seed=0)


def encoder(layers: int = 4, d: int = 32) -> nn.Module:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(d, 4, 2 * d, dropout=0.0, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


def _std_ratio(w: torch.Tensor, expected: float) -> tuple[float, float]:
    return w.std().item() / expected, 5 / math.sqrt(2 * w.numel())


@pytest.mark.parametrize("scheme", ["t_fixup", "deepnorm"])
def test_transformer_scalings(scheme):
    model, d, n = encoder(), 32, 4
    x = torch.randn(2, 5, d, generator=torch.Generator().manual_seed(0))
    report = initlab.init_model(model, scheme, example_input=x, seed=0)
    factor = 0.67 * n ** -0.25 if scheme == "t_fixup" else (8 * n) ** -0.25
    qkv = torch.cat([layer.self_attn.in_proj_weight for layer in model.layers])
    q_k, v = qkv.view(n, 3, d, d)[:, :2], qkv.view(n, 3, d, d)[:, 2]
    glorot = math.sqrt(2 / (d + d))  # per q/k/v block (fans of one block)
    ratio, tol = _std_ratio(q_k, glorot)
    assert abs(ratio - 1) < tol, ratio
    ratio, tol = _std_ratio(v, glorot * factor)
    assert abs(ratio - 1) < tol, ratio
    w1 = torch.cat([layer.linear1.weight.flatten() for layer in model.layers])
    ratio, tol = _std_ratio(w1, math.sqrt(2 / (d + 2 * d)) * factor)
    assert abs(ratio - 1) < tol, ratio
    if scheme == "deepnorm":
        assert "1.682 * x + f(x)" in report.notes[-1]  # alpha = (2N)^(1/4)


def test_gpt2_residual_projection_scaling():
    model, d = encoder(6, 64), 64
    x = torch.randn(2, 5, d, generator=torch.Generator().manual_seed(0))
    initlab.init_model(model, "gpt2", example_input=x, seed=0)
    out = torch.cat([torch.cat([layer.self_attn.out_proj.weight.flatten(), layer.linear2.weight.flatten()])
                     for layer in model.layers])
    inner = torch.cat([layer.linear1.weight.flatten() for layer in model.layers])
    ratio, tol = _std_ratio(out, 0.02 / math.sqrt(2 * 6))
    assert abs(ratio - 1) < tol, ratio
    ratio, tol = _std_ratio(inner, 0.02)
    assert abs(ratio - 1) < tol, ratio


def test_branches_come_from_the_traced_graph_not_names():
    class Odd(nn.Module):
        """Names say nothing: 'shortcut' is the branch, 'main' is a plain layer."""

        def __init__(self) -> None:
            super().__init__()
            self.main = nn.Linear(8, 8)
            self.shortcut = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
            self.out = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = self.main(x)
            return self.out(h + self.shortcut(h))

    model = Odd()
    graph = discover(model, torch.randn(4, 8))
    initlab.init_model(model, "fixup", example_input=torch.randn(4, 8), seed=0, graph=graph)
    assert torch.count_nonzero(model.shortcut[2].weight) == 0 and torch.count_nonzero(model.out.weight) == 0
    assert torch.count_nonzero(model.main.weight) > 0 and torch.count_nonzero(model.shortcut[0].weight) > 0


def test_delta_orthogonal_scheme():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.Tanh(),
                          nn.Flatten(), nn.Linear(8 * 25, 10))
    initlab.init_model(model, "delta_orthogonal_gain", example_input=torch.randn(2, 4, 5, 5), seed=0)
    w = model[2].weight
    centre = w[:, :, 1, 1]
    assert torch.count_nonzero(w) == torch.count_nonzero(centre)  # only the spatial centre is non-zero
    torch.testing.assert_close(centre @ centre.t(), torch.eye(8), atol=1e-5, rtol=0)  # tanh follows: gain 1
    first = model[0].weight[:, :, 1, 1]
    torch.testing.assert_close(first.t() @ first, torch.eye(4) * 2, atol=1e-5, rtol=0)  # ReLU: gain^2 2
    head = model[5].weight
    torch.testing.assert_close(head @ head.t(), torch.eye(10), atol=1e-5, rtol=0)


class SeparateProjections(nn.Module):
    """Attention written by hand: queries and keys are recognized by name, the branches by the graph."""

    def __init__(self, d: int = 64, n: int = 3) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, d)
        self.layers = nn.ModuleList(nn.ModuleDict({
            "q_proj": nn.Linear(d, d), "k_proj": nn.Linear(d, d), "v_proj": nn.Linear(d, d),
            "out_proj": nn.Linear(d, d), "fc1": nn.Linear(d, 2 * d), "fc2": nn.Linear(2 * d, d)})
            for _ in range(n))
        self.head = nn.Linear(d, 50)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.emb(tokens)
        for layer in self.layers:
            scores = layer["q_proj"](x) @ layer["k_proj"](x).transpose(1, 2) / math.sqrt(x.shape[-1])
            x = x + layer["out_proj"](torch.softmax(scores, -1) @ layer["v_proj"](x))
            x = x + layer["fc2"](torch.relu(layer["fc1"](x)))
        return self.head(x)


def test_t_fixup_separate_projections_and_embeddings():
    torch.manual_seed(0)
    model, d, n = SeparateProjections(), 64, 3
    tokens = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(0))
    initlab.init_model(model, "t_fixup", example_input=tokens, seed=0)
    factor = 0.67 * n ** -0.25
    glorot = math.sqrt(2 / (d + d))

    def stack(key: str) -> torch.Tensor:
        return torch.cat([layer[key].weight.flatten() for layer in model.layers])

    for key, expected in (("q_proj", glorot), ("k_proj", glorot), ("v_proj", glorot * factor),
                          ("out_proj", glorot * factor), ("fc1", math.sqrt(2 / (3 * d)) * factor)):
        ratio, tol = _std_ratio(stack(key), expected)
        assert abs(ratio - 1) < tol, (key, ratio)
    ratio, tol = _std_ratio(model.emb.weight, d ** -0.5)
    assert abs(ratio - 1) < tol, ratio

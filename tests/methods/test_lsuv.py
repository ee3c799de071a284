import math

import pytest
import torch
from torch import nn

import initlab
from initlab.methods import DataInitError, lsuv_reference
from initlab.methods._sweep import primary
from initlab.model.state import ModelState


def mlp(depth: int = 12, width: int = 64, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)  # tests only
    layers: list[nn.Module] = [nn.Linear(16, width), nn.Tanh()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def batch(n: int, *shape: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g) * 3 + 1


KINDS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.MultiheadAttention)


def layer_variances(model: nn.Module, x: torch.Tensor, kinds=KINDS):
    out: dict[str, float] = {}

    def record(name: str, output) -> None:
        out.setdefault(name, primary(output).double().var(unbiased=False).item())

    hooks = [m.register_forward_hook(lambda mod, a, o, n=n: record(n, o))
             for n, m in model.named_modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return out


def variance_standard_error(model: nn.Module, n: int, *shape: int) -> dict[str, float]:
    """Spread of each layer's output variance across independent fresh batches of size n."""
    draws = [layer_variances(model, batch(n, *shape, seed=100 + i)) for i in range(8)]
    return {k: float(torch.tensor([d[k] for d in draws]).std()) for k in draws[0]}


def test_fresh_batch_variance_within_tolerance_and_report():
    model = mlp()
    before = layer_variances(model, batch(2048, 16, seed=1))
    assert max(abs(v - 1) for v in before.values()) > 0.5  # the default init is far off: the test can fail
    rng = torch.get_rng_state()
    report = initlab.lsuv(model, batch(512, 16, seed=0), seed=0)
    assert torch.equal(torch.get_rng_state(), rng)
    assert [c.name for c in report.layers] == [f"{i}" for i in range(0, 23, 2)]
    assert report.converged and report.tol == 0.1 and report.max_iter == 10
    for c in report.layers:
        assert abs(c.variance - 1) < 1e-4 and c.iterations <= 1
    fresh = layer_variances(model, batch(2048, 16, seed=1))
    se = variance_standard_error(model, 2048, 16)
    for name, v in fresh.items():
        assert abs(v - 1) < 0.1, (name, v)
        assert abs(v - 1) < 0.02 + 5 * se[name] * math.sqrt(1 + 2048 / 512), (name, v, se[name])
    assert report.evaluations == len(report.layers) == 12 and report.forward_passes == 1


def test_same_seed_same_result_and_agrees_with_reference():
    a, b, c = mlp(), mlp(), mlp()
    x = batch(256, 16, seed=0)
    ra = initlab.lsuv(a, x, seed=4)
    initlab.lsuv(b, x, seed=4)
    rc = lsuv_reference(c, x, seed=4)
    for pa, pb, pc in zip(a.parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(pa, pb)
        torch.testing.assert_close(pa, pc, rtol=1e-4, atol=1e-6)
    assert rc.evaluations >= 10 * ra.evaluations
    # the reference reruns the whole network for every attempt: 1 + sum over layers of (iters + 1) passes
    assert rc.forward_passes == 1 + sum(x.iterations + 1 for x in rc.layers)
    assert rc.evaluations == 12 * rc.forward_passes


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c, c, 3, padding=1, groups=c)
        self.pointwise = nn.Conv2d(c, c, 1)
        self.up = nn.ConvTranspose2d(c, c, 3, padding=1, groups=2)
        self.attn = nn.MultiheadAttention(c, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.up(torch.relu(self.pointwise(torch.relu(self.depthwise(x)))))
        seq = h.flatten(2).transpose(1, 2)
        return x + self.attn(seq, seq, seq)[0].transpose(1, 2).view_as(x)


def test_grouped_transposed_conv_attention_residual_and_center():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), Block(8), Block(8))
    x = batch(64, 3, 6, 6, seed=0)
    report = initlab.lsuv(model, x, seed=1, center=True)
    assert [c.kind for c in report.layers] == ["Conv2d", *(["Conv2d", "Conv2d", "ConvTranspose2d",
                                                            "MultiheadAttention"] * 2)]
    fresh = layer_variances(model, batch(256, 3, 6, 6, seed=5))
    assert len(fresh) == 9
    for name, v in fresh.items():
        assert abs(v - 1) < 0.15, (name, v)  # smaller batch: wider sampling spread than the MLP test
    conv = model[1].pointwise
    out = conv(torch.relu(model[1].depthwise(model[0](x))))
    assert out.mean(dim=(0, 2, 3)).abs().max() < 1e-4  # centered per channel on the calibration batch


class Saturating(nn.Module):
    """Not linear in its weight: the sweep must re-evaluate it and iterate."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(32, 16) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 3 * torch.tanh(x @ self.weight.t())


def test_nonlinear_layer_is_reevaluated_and_max_iter_respected():
    torch.manual_seed(0)
    model = nn.Sequential(Saturating(), nn.Linear(32, 4))
    report = initlab.lsuv(model, batch(256, 16, seed=0), layers=["0", "1"], pre_init=None)
    sat = report.layers[0]
    assert sat.iterations >= 2 and sat.converged and sat.evaluations == sat.iterations + 1
    model = nn.Sequential(Saturating(), nn.Linear(32, 4))
    report = initlab.lsuv(model, batch(256, 16, seed=0), layers=["0"], pre_init=None, target=9.5, max_iter=3)
    assert report.layers[0].iterations == 3 and not report.layers[0].converged  # 3 tanh cannot reach var 9.5
    assert "NOT CONVERGED" in str(report)


def test_shared_layer_calibrated_once_and_unreached_layer_reported():
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.f = nn.Linear(8, 8)
            self.unused = nn.Linear(8, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.f(torch.relu(self.f(x)))

    model = Twice()
    report = initlab.lsuv(model, batch(128, 8, seed=0), seed=0)
    assert [c.name for c in report.layers] == ["f"] and report.skipped == ["unused"]
    assert report.evaluations == 2


def test_batchnorm_running_stats_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Linear(8, 8))
    mean = model[1].running_mean.clone()
    initlab.lsuv(model, batch(64, 8, seed=0), seed=0)
    assert torch.equal(model[1].running_mean, mean) and model[1].num_batches_tracked == 0


@pytest.mark.parametrize("bad, message", [
    (torch.full((32, 16), 2.0), "zero variance"),
    (torch.tensor([[float("nan")] * 16] * 32), "NaN or infinite"),
    (torch.randn(1, 16), "at least 2 samples"),
])
def test_bad_batches_refused_model_unchanged(bad, message):
    model = mlp(4)
    snap = ModelState.capture(model)
    with pytest.raises(DataInitError, match=message):
        initlab.lsuv(model, bad, seed=0)
    assert snap.matches(model)


def test_layers_after_a_layer_that_outputs_zeros_are_skipped_with_their_reason():
    class Dead(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 0

    model = nn.Sequential(nn.Linear(16, 16), Dead(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 4))
    report = initlab.lsuv(model, batch(64, 16, seed=0), seed=0)
    assert [c.name for c in report.layers] == ["0"] and report.skipped == ["2", "4"]
    assert "input is zero for every sample" in report.reasons["2"]
    assert "input is the same for every sample" in report.reasons["4"]  # relu(bias of layer 2)


def test_constant_output_of_a_varying_input_skipped_with_its_reason():
    model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 4))
    with torch.no_grad():
        model[1].weight.zero_()  # NF-ResNet's zero-initialized last gain: output = bias whatever the input
    report = initlab.lsuv(model, batch(64, 16, seed=0), seed=0, pre_init=None)
    assert [c.name for c in report.layers] == ["0"] and report.skipped == ["1", "2"]
    assert "output is the same for every sample although its input is not" in report.reasons["1"]
    assert "input is the same for every sample" in report.reasons["2"]


class StandardizedConv(nn.Conv2d):
    """timm's ScaledStdConv2d: the weight is standardized in forward, so rescaling it changes nothing."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight
        w = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / w.std(dim=(1, 2, 3), keepdim=True)
        return torch.nn.functional.conv2d(x, w, self.bias, self.stride, self.padding)


def test_a_conv_subclass_is_measured_again_not_assumed_linear():
    model = nn.Sequential(StandardizedConv(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    x = batch(8, 3, 12, 12, seed=0)
    report = initlab.lsuv(model, x, seed=0, max_iter=3)
    first = report.layers[0]
    assert first.evaluations == first.iterations + 1  # re-run after each rescaling
    measured = layer_variances(model, x, kinds=(nn.Conv2d,))["0"]
    assert measured == pytest.approx(first.variance, rel=1e-4)  # the report says what the layer does


def test_overflowing_layer_refused_model_unchanged():
    model = nn.Sequential(nn.Linear(16, 16), nn.Linear(16, 4)).half()
    snap = ModelState.capture(model)
    with pytest.raises(DataInitError, match="NaN or infinite"):
        initlab.lsuv(model, (batch(64, 16, seed=0) * 1e4).half(), seed=0, pre_init=None)
    assert snap.matches(model)


def test_no_weight_layer_and_bad_arguments():
    with pytest.raises(DataInitError, match="no weight layer"):
        initlab.lsuv(nn.Sequential(nn.ReLU()), batch(8, 4, seed=0))
    with pytest.raises(DataInitError, match="tol"):
        initlab.lsuv(mlp(3), batch(8, 16, seed=0), tol=0)


def test_tied_weight_calibrated_once():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8))
    model[2].weight = model[0].weight
    report = initlab.lsuv(model, batch(256, 8, seed=0), seed=0)
    assert report.layers[1].kind == "tied to 0" and report.layers[1].iterations == 0
    assert model[2].weight is model[0].weight


def test_every_packed_attention_block_is_pre_initialized_and_repeats_are_identical():
    # the q/k/v blocks are views made during the pre-init; deduplicating them by id() skipped blocks whenever
    # Python reused a freed view's id, so the weights depended on memory layout
    def make() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(*(Block(8) for _ in range(4)))

    x = batch(32, 8, 4, 4, seed=0)
    first = None
    for _ in range(3):
        model = make()
        initlab.lsuv(model, x, seed=1, pre_init="orthogonal")
        for name, m in model.named_modules():
            if isinstance(m, nn.MultiheadAttention):
                for block in m.in_proj_weight.detach().chunk(3):  # square 8x8: orthogonal means W W^T = I
                    err = (block @ block.T - torch.eye(8)).abs().max().item()
                    assert err < 1e-5, (name, err)
        state = {k: v.clone() for k, v in model.state_dict().items()}
        if first is None:
            first = state
        assert all(torch.equal(first[k], state[k]) for k in state)


# ---- issue 13 item 6: real layer patterns (small plain-torch stand-ins for timm/HF modules) ---------------
class TableBias(nn.Module):
    """Swin-V2's cpb_mlp: an MLP over a coordinate table of batch size 1, added to the activations."""

    def __init__(self, d: int = 16, tokens: int = 6) -> None:
        super().__init__()
        self.fc = nn.Linear(d, d)
        self.register_buffer("coords", torch.linspace(-1, 1, tokens * 2).view(1, tokens, 2))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) + self.cpb_mlp(self.coords)


def test_layer_with_batch_dimension_one_is_skipped_with_a_reason():
    model = TableBias()
    report = initlab.lsuv(model, batch(32, 6, 16, seed=0), seed=0)
    assert [c.name for c in report.layers] == ["fc"]
    assert set(report.skipped) == {"cpb_mlp.0", "cpb_mlp.2"}
    assert all("size 1 along the batch dimension" in report.reasons[n] for n in report.skipped)
    assert "skipped: its output has size 1" in str(report)


class PositionalProjection(nn.Module):
    """A projection of a learned positional table broadcast over the batch (EdgeNeXt/DETR query pos)."""

    def __init__(self, d: int = 16, tokens: int = 6) -> None:
        super().__init__()
        self.pos = nn.Parameter(torch.randn(1, tokens, d, generator=torch.Generator().manual_seed(3)))
        self.pos_proj = nn.Linear(d, d)
        self.fc = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x + self.pos_proj(self.pos.expand(x.shape[0], -1, -1)))


def test_layer_whose_input_is_the_same_for_every_sample_is_skipped_not_fatal():
    model = PositionalProjection()
    x = batch(64, 6, 16, seed=0)
    report = initlab.lsuv(model, x, seed=0)
    assert [c.name for c in report.layers] == ["fc"] and report.skipped == ["pos_proj"]
    assert "input is the same for every sample" in report.reasons["pos_proj"]
    assert abs(layer_variances(model, x)["fc"] - 1.0) < report.tol  # the rest is still calibrated


def test_weight_norm_over_dim_2_is_pre_initialized_and_calibrated():
    conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(8, 8, 5, padding=2, groups=2), dim=2)
    model = nn.Sequential(nn.Conv1d(4, 8, 1), nn.GELU(), conv)
    x = batch(16, 4, 40, seed=0)
    report = initlab.lsuv(model, x, seed=0)
    assert [c.name for c in report.layers] == ["0", "2"] and report.converged and not report.skipped
    g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    assert g.shape == (1, 1, 5)
    with torch.no_grad():
        assert abs(layer_variances(model, x, kinds=(nn.Conv1d,))["2"] - 1.0) < report.tol
        # the gain is rescaled, the direction v keeps its orthogonal pre-init
        assert torch.allclose(conv.weight, g * v / torch.norm_except_dim(v, 2, 2))


class FunctionalAttention(nn.Module):
    """torchvision Swin: the qkv/proj Linears are never called; their weights go through F.linear."""

    def __init__(self, d: int = 16) -> None:
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = torch.nn.functional.linear(x, self.qkv.weight, self.qkv.bias.clone()).chunk(3, dim=-1)
        attn = torch.softmax(q @ k.transpose(-1, -2) / 4, dim=-1)
        return torch.nn.functional.linear(attn @ v, self.proj.weight, self.proj.bias)


def test_linear_used_through_f_linear_is_calibrated():
    model = FunctionalAttention()
    x = batch(32, 6, 16, seed=0)
    report = initlab.lsuv(model, x, seed=0)
    assert [c.name for c in report.layers] == ["qkv", "proj"] and not report.skipped and report.converged
    with torch.no_grad():
        qkv = torch.nn.functional.linear(x, model.qkv.weight, model.qkv.bias)
        assert abs(float(qkv.var(unbiased=False)) - 1.0) < report.tol
        assert abs(float(model(x).var(unbiased=False)) - 1.0) < report.tol


class Conv1D(nn.Module):
    """HF transformers' Conv1D (GPT-2): a Linear whose weight is stored (in, out), applied with addmm."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf, generator=torch.Generator().manual_seed(1)) * 0.02)
        self.bias = nn.Parameter(torch.zeros(nf))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return out.view(*x.shape[:-1], self.nf)


def test_hf_conv1d_is_a_weight_layer_and_calibrated_exactly():
    model = nn.Sequential(Conv1D(32, 16), nn.GELU(), Conv1D(16, 32))
    x = batch(64, 5, 16, seed=0)
    report = initlab.lsuv(model, x, seed=0, center=True)
    assert [c.name for c in report.layers] == ["0", "2"] and report.converged and not report.skipped
    assert all(c.evaluations == 1 for c in report.layers)  # linear in (weight, bias): rescaled in place
    got = layer_variances(model, x, kinds=(Conv1D,))
    assert all(abs(v - 1.0) < report.tol for v in got.values())


def test_weight_used_through_another_op_is_named_not_called_unreached():
    class Matmul(nn.Module):  # Mamba's dt_proj: `dt_proj.weight @ x`
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(16, 16)
            self.proj = nn.Linear(16, 16)
            self.unused = nn.Linear(16, 16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x @ self.proj.weight.t())

    report = initlab.lsuv(Matmul(), batch(32, 16, seed=0), seed=0)
    assert [c.name for c in report.layers] == ["fc"] and report.skipped == ["proj", "unused"]
    assert "used through t outside the module's forward" in report.reasons["proj"]
    assert report.reasons["unused"] == "not reached by the forward pass"


def test_init_model_lsuv_covers_functional_and_conv1d_layers_and_names_skips():
    report = initlab.init_model(FunctionalAttention(), "lsuv", example_input=batch(32, 6, 16, seed=0))
    assert [r.name for r in report.rows] == ["qkv.weight", "proj.weight"]
    gpt2_like = nn.Sequential(Conv1D(32, 16), nn.GELU(), Conv1D(16, 32))
    report = initlab.init_model(gpt2_like, "lsuv", example_input=batch(64, 5, 16, seed=0))
    assert [r.name for r in report.rows] == ["0.weight", "2.weight"]
    report = initlab.init_model(TableBias(), "lsuv", example_input=batch(32, 6, 16, seed=0))
    assert [r.name for r in report.rows] == ["fc.weight"]
    assert sum("LSUV skipped cpb_mlp" in n and "size 1 along the batch" in n for n in report.notes) == 2

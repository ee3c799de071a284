"""init_model with catalog schemes and profiles: fans, gains, blocks, rules, atomicity, bad input."""

import math

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations

from initlab.model import InitReport, ModelState, init_model, register_model_scheme
from initlab.model.plan import apply_plan


def within(sample: torch.Tensor, std: float, k: float = 5.0) -> bool:
    """Sample std against theory, tolerance k standard errors (SE of a std ~ std / sqrt(2n))."""
    n = sample.numel()
    return abs(sample.detach().double().std().item() - std) <= k * std / math.sqrt(2 * n)


def test_he_normal_uses_the_following_leaky_relu_slope_and_grouped_fans():
    model = nn.Sequential(nn.Conv2d(8, 64, 3), nn.LeakyReLU(0.2), nn.Conv2d(64, 64, 3, groups=64), nn.ReLU())
    report = init_model(model, "he_normal", seed=0)
    std0 = math.sqrt(2 / (1 + 0.2**2) / (8 * 9))
    assert report.row("0.weight").std == pytest.approx(std0)
    assert within(model[0].weight, std0)
    assert report.row("2.weight").fan_in == 9  # depthwise: 1 input channel x 3x3
    assert within(model[2].weight, math.sqrt(2 / 9))
    assert report.row("0.bias").std == 0 and torch.count_nonzero(model[0].bias) == 0


def test_strided_conv_transpose_fans():
    model = nn.Sequential(nn.ConvTranspose2d(64, 32, 4, stride=2), nn.ReLU())
    report = init_model(model, "he_normal", seed=0)
    fan_in = 64 * 16 / 4
    assert report.row("0.weight").fan_in == fan_in
    assert within(model[0].weight, math.sqrt(2 / fan_in))


def test_gate_blocks_orthogonal_and_forget_bias():
    lstm = nn.LSTM(6, 8)
    report = init_model(lstm, "orthogonal", seed=0)
    eye = torch.eye(8)
    for w in (lstm.weight_ih_l0, lstm.weight_hh_l0):
        for block in w.detach().chunk(4, 0):
            gram = block @ block.T if block.shape[0] <= block.shape[1] else block.T @ block
            assert torch.allclose(gram, torch.eye(gram.shape[0]), atol=1e-5)
    assert torch.allclose(lstm.weight_hh_l0[:8] @ lstm.weight_hh_l0[:8].T, eye, atol=1e-5)
    total = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach()
    assert torch.equal(total[8:16], torch.ones(8)) and torch.count_nonzero(total[:8]) == 0
    assert report.row("weight_hh_l0").rule.endswith("rnn_recurrent")


def test_attention_q_k_v_blocks_separately():
    mha = nn.MultiheadAttention(16, 2)
    init_model(mha, "orthogonal", seed=0)
    for block in mha.in_proj_weight.detach().chunk(3, 0):
        assert torch.allclose(block @ block.T, torch.eye(16), atol=1e-5)
    init_model(mha, "torch:default", seed=0)  # torch's own: xavier_uniform on the stacked (3E, E) matrix
    bound = math.sqrt(6 / (16 + 48))
    assert mha.in_proj_weight.abs().max() <= bound and mha.in_proj_weight.abs().max() > 0.9 * bound


def test_torch_default_profile_matches_torch_bounds():
    model = nn.Sequential(nn.Linear(50, 20), nn.Conv1d(4, 6, 5), nn.LSTM(3, 7))
    report = init_model(model, "torch:default", seed=1, dry_run=True)
    assert report.row("0.weight").bound == pytest.approx(1 / math.sqrt(50))
    assert report.row("0.bias").bound == pytest.approx(1 / math.sqrt(50))
    assert report.row("1.weight").bound == pytest.approx(1 / math.sqrt(20))
    for name in ("2.weight_ih_l0", "2.weight_hh_l0", "2.bias_ih_l0"):
        assert report.row(name).bound == pytest.approx(1 / math.sqrt(7))


def test_embedding_padding_row_and_delta_orthogonal_fallback():
    model = nn.Sequential(nn.Embedding(30, 8, padding_idx=3), nn.Linear(8, 8))
    report = init_model(model, "delta_orthogonal", seed=0)
    assert torch.count_nonzero(model[0].weight[3]) == 0 and torch.count_nonzero(model[0].weight[4]) == 8
    assert "orthogonal" in report.row("1.weight").note
    w = model[1].weight.detach()
    assert torch.allclose(w @ w.T, torch.eye(8), atol=1e-5)


def test_rules_first_match_wins_and_are_reported():
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    rules = {"2.*": "zeros", nn.Linear: "normal(0, 0.5)", (lambda name, m: name.endswith("bias")): "ones"}
    report = init_model(model, "he_normal", seed=0, rules=rules)
    assert report.row("2.weight").rule == "rule 2.*" and torch.count_nonzero(model[2].weight) == 0
    assert report.row("0.weight").rule == "rule Linear" and report.row("0.weight").std == 0.5
    assert report.row("0.bias").rule == "rule Linear"
    keep = model[0].weight.detach().clone()
    init_model(model, "he_normal", seed=1, rules={"0.weight": "keep"})
    assert torch.equal(model[0].weight, keep)


def test_seed_reproducible_and_global_rng_untouched():
    a, b = nn.Linear(16, 16), nn.Linear(16, 16)
    state = torch.get_rng_state()
    init_model(a, "he_uniform", seed=7)
    init_model(b, "he_uniform", seed=7)
    assert torch.equal(a.weight, b.weight) and torch.equal(state, torch.get_rng_state())


def test_tied_weight_once_and_weight_norm_effective_weight():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 64)
            self.wn = parametrizations.weight_norm(nn.Linear(64, 64))
            self.head = nn.Linear(64, 20, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, idx):
            return self.head(torch.relu(self.wn(self.emb(idx))))

    model = M()
    report = init_model(model, "he_normal", seed=0)
    assert report.row("emb.weight").tied == ["head.weight"]
    assert sum(r.name in ("emb.weight", "head.weight") for r in report.rows) == 1
    assert within(model.wn.weight, math.sqrt(2 / 64))  # the effective weight is what was drawn (ReLU gain)


def test_wrappers_and_meta_device_plan():
    inner = nn.Sequential(nn.Linear(32, 32), nn.Tanh())
    report = init_model(nn.DataParallel(inner), "glorot_normal", seed=0)
    assert report.row("0.weight").activation == "tanh"
    with torch.device("meta"):
        meta = nn.Sequential(nn.Linear(32, 32), nn.ReLU())
    report = init_model(meta, "he_normal", seed=3)
    assert report.row("0.weight").std == pytest.approx(0.25)
    meta.to_empty(device="cpu")
    apply_plan(meta, report.plan, seed=3)
    assert within(meta[0].weight, 0.25)


def test_dry_run_changes_nothing():
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8))
    model[1].running_mean.fill_(3.0)
    state = ModelState.capture(model)
    report = init_model(model, "he_normal", seed=0, dry_run=True)
    assert report.dry_run and state.matches(model)
    assert "dry run" in str(report)


def test_report_table_json_and_health():
    model = nn.Sequential(*[nn.Linear(16, 16) for _ in range(3)])
    report = init_model(model, "normal(0, 1)", seed=0)
    text = str(report)
    assert "0.weight" in text and "Linear" in text and "normal" in text
    data = report.to_dict()
    assert data["rows"][0]["shape"] == [16, 16] and data["rows"][0]["var_out"] == pytest.approx(16.0)
    assert '"scheme": "normal(mean=0, std=1)"' in report.to_json() or '"scheme"' in report.to_json()
    with pytest.raises(AssertionError, match="explodes"):
        init_model(model, "normal(0, 10)", seed=0).assert_healthy()
    init_model(model, "lecun_normal", seed=0).assert_healthy()


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"scheme": "he_nromal"}, "did you mean"),
        ({"scheme": "he_normal", "rules": {"decoder.*": "zeros"}}, "matches no parameter"),
        ({"scheme": "he_normal", "example_input": torch.randn(3, 5)}, "does not fit"),
        ({"scheme": "he_normal", "example_input": torch.tensor([[0.0, float("nan"), 1.0, 2.0]])}, "NaN"),
        ({"scheme": "orthogonal", "rules": {"a.bias": "orthogonal"}}, "a.bias"),
    ],
)
def test_bad_input_one_clear_error_model_unchanged(kwargs, error):
    model = Tiny()
    state = ModelState.capture(model)
    with pytest.raises(ValueError, match=error):
        init_model(model, **kwargs)
    assert state.matches(model)


def test_model_without_parameters():
    with pytest.raises(ValueError, match="no parameters"):
        init_model(nn.Sequential(nn.ReLU()))


def test_failure_midway_restores_everything():
    model = Tiny()
    state = ModelState.capture(model)

    def half_then_fail(model, graph, options):
        init_model(model, "ones")
        raise RuntimeError("boom")

    register_model_scheme("test_half_then_fail", half_then_fail, overwrite=True)
    with pytest.raises(RuntimeError, match="boom"):
        init_model(model, "test_half_then_fail")
    assert state.matches(model)


def test_registered_model_scheme_dispatch_and_dry_run():
    seen = {}

    def zero_last(model, graph, options):
        report = init_model(model, "he_normal", generator=options.generator)
        last = [i for i in graph.layers if i.kind == "linear"][-1]
        with torch.no_grad():
            model.get_parameter(last.params["weight"]).zero_()
        seen.update(options.extra)
        return report

    register_model_scheme("test_zero_last", zero_last, overwrite=True)
    model = Tiny()
    report = init_model(model, "test_zero_last", seed=0, depth=3)
    assert isinstance(report, InitReport) and seen == {"depth": 3}
    assert torch.count_nonzero(model.b.weight) == 0 and torch.count_nonzero(model.a.weight) == 16
    state = ModelState.capture(model)
    init_model(model, "test_zero_last", seed=1, dry_run=True)
    assert state.matches(model)
    with pytest.raises(ValueError, match="already registered"):
        register_model_scheme("test_zero_last", lambda m, g, o: None)


def test_lazy_modules_materialized_by_example_input():
    model = nn.Sequential(nn.LazyLinear(16), nn.ReLU(), nn.LazyLinear(4))
    with pytest.raises(ValueError, match="Lazy"):
        init_model(model, "he_normal")
    x = torch.randn(2, 10)
    state = torch.get_rng_state()
    report = init_model(model, "he_normal", seed=0, example_input=x)
    assert report.row("0.weight").fan_in == 10 and torch.equal(state, torch.get_rng_state())


def test_layer_never_called_is_initialized_and_flagged():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.unused = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x):
            return self.a(x)

    report = init_model(M(), "auto", seed=0)
    assert "not reached" in report.row("unused.weight").note and report.row("a.weight").note == ""
    assert report.row("unused.weight").status == "init"


def _generator_net() -> nn.Module:
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))


def test_default_generator_is_the_counter_generator():
    a, b, c = _generator_net(), _generator_net(), _generator_net()
    report = init_model(a, "he_normal", seed=4)
    init_model(b, "he_normal", seed=4, generator="counter")
    init_model(c, "he_normal", seed=4, generator="torch")
    assert report.seed == 4
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[0].weight, c[0].weight)


def test_torch_generator_by_name_or_object_gives_torch_stream():
    a, b = _generator_net(), _generator_net()
    init_model(a, "he_normal", seed=4, generator="torch")
    init_model(b, "he_normal", generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_default_generator_without_seed_records_one():
    a, b = _generator_net(), _generator_net()
    report = init_model(a, "he_normal")
    assert isinstance(report.seed, int)
    init_model(b, "he_normal", seed=report.seed)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_bad_generator_name_is_refused_before_anything_changes():
    model = _generator_net()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match="unknown generator 'philox'"):
        init_model(model, "he_normal", generator="philox")
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))

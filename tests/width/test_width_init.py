"""μP / spectral init: each parameter's sample std against the std expected for its class, within 5 standard
errors of the variance estimate (uniform draws: kurtosis 1.8, normal: 3); dry run, zero readout, errors."""

import math

import pytest
import torch
from width_models import TinyLM, mlp, on_meta

import initlab
from initlab.model import ModelState


def _check(t: torch.Tensor, std: float, kurtosis: float, name: str) -> None:
    x = t.detach().double().ravel()
    n = x.numel()
    se = std**2 * math.sqrt((kurtosis - 1) / n)
    assert abs(float(x.var()) - std**2) < 5 * se, (name, float(x.std()), std)


def test_mup_std_per_class_torch_default():
    """torch:default weights are U(+-1/sqrt(fan_in)): std 1/sqrt(3 fan_in); μP: input and biases keep the
    base width's std, hidden 1/sqrt(3 n), output 1/sqrt(3 n0) / (n / n0)."""
    n0, n = 64, 512
    model = mlp(n)
    initlab.init_model(model, "mup", base=on_meta(mlp, n0), seed=3)
    expected = {
        "0.weight": 1 / math.sqrt(3 * 40),          # input: fan_in 40 at every width
        "0.bias": 1 / math.sqrt(3 * 40),            # vector
        "2.weight": 1 / math.sqrt(3 * n),           # hidden: 1/fan_in
        "2.bias": 1 / math.sqrt(3 * n0),            # vector: the base width's scale
        "4.weight": 1 / math.sqrt(3 * n0) * n0 / n,  # output: 1/fan_in^2 scaling
    }
    params = dict(model.named_parameters())
    for name, std in expected.items():
        _check(params[name], std, 1.8, name)


def test_mup_std_fixed_std_base_scheme_and_dict_base():
    """A fixed-std base (N(0, 0.02), GPT-2 style): hidden std 0.02 / sqrt(n / n0), output 0.02 n0 / n."""
    n0, n = 64, 1024
    model = mlp(n)
    base = on_meta(mlp, n0)
    initlab.init_model(model, "mup", base=base, base_scheme="normal(0, 0.02)", seed=1)
    params = dict(model.named_parameters())
    _check(params["0.weight"], 0.02, 3, "input")
    _check(params["2.weight"], 0.02 / math.sqrt(n / n0), 3, "hidden")
    _check(params["4.weight"], 0.02 * n0 / n, 3, "output")
    # the same plan from a dict of base shapes for a fan_in scheme (std inferred from fan_in)
    shapes = {k: tuple(p.shape) for k, p in base.named_parameters()}
    a = initlab.init_model(mlp(n), "mup", base=base, seed=1, dry_run=True)
    b = initlab.init_model(mlp(n), "mup", base=shapes, seed=1, dry_run=True)
    for ra, rb in zip(a.rows, b.rows, strict=True):
        assert ra.std == pytest.approx(rb.std, rel=1e-12), ra.name


def test_spectral_std():
    """Spectral: std proportional to min(1, sqrt(fan_out/fan_in)) / sqrt(fan_in), relative to the base; with
    base width 16 < fan_in 40 the input layer grows by sqrt(40/16) up to width 40."""
    n0, n = 16, 256
    model = mlp(n)
    initlab.init_model(model, "spectral", base=on_meta(mlp, n0), seed=2)
    params = dict(model.named_parameters())
    _check(params["0.weight"], 1 / math.sqrt(3 * 40) * math.sqrt(40 / n0), 1.8, "input")
    _check(params["2.weight"], 1 / math.sqrt(3 * n), 1.8, "hidden")
    _check(params["4.weight"], 1 / math.sqrt(3 * n0) * n0 / n, 1.8, "output")


def test_mup_is_sp_at_base_width_and_zero_readout():
    base = on_meta(mlp, 64)
    sp, mup = mlp(64), mlp(64)
    initlab.init_model(sp, "torch:default", seed=5)
    initlab.init_model(mup, "mup", base=base, seed=5)
    for (name, a), b in zip(sp.named_parameters(), mup.parameters(), strict=True):
        assert torch.equal(a, b), name
    zero = mlp(256)
    initlab.init_model(zero, "mup", base=base, readout="zero", seed=5)
    assert not zero[4].weight.any() and zero[2].weight.std() > 0


def test_dry_run_changes_nothing_and_plan_is_the_transformed_one():
    model = TinyLM(64)
    state = ModelState.capture(model)
    report = initlab.init_model(model, "mup", base=on_meta(TinyLM, 32), seed=0, dry_run=True)
    assert state.matches(model)
    assert report.row("head.weight").rule == "mup:output"
    head = next(a for a in report.plan.assignments if a.name == "head.weight")
    assert head.draws[0].std == pytest.approx(report.row("head.weight").std)


def test_materialize_uses_the_transformed_plan():
    base = on_meta(mlp, 64)
    ref = mlp(256)
    initlab.init_model(ref, "mup", base=base, seed=9)
    meta = on_meta(mlp, 256)
    initlab.materialize(meta, "cpu", "mup", seed=9, base=base)
    for (name, a), b in zip(ref.named_parameters(), meta.parameters(), strict=True):
        assert torch.equal(a, b), name


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="needs base="):
        initlab.init_model(mlp(64), "mup")
    with pytest.raises(ValueError, match="readout must be"):
        initlab.init_model(mlp(64), "mup", base=on_meta(mlp, 32), readout="small")
    with pytest.raises(ValueError, match="spectral"):
        initlab.init_model(TinyLM(64, tie=True), "spectral", base=on_meta(TinyLM, 32, tie=True))

"""Each verdict fires on a network built to have the problem and stays silent once it is initialized well."""

from __future__ import annotations

import math

import pytest
from torch import nn

import initlab

from . import nets


@pytest.mark.parametrize("name", list(nets.PROBLEMS))
def test_verdict_fires_on_the_broken_net(name: str) -> None:
    build, expected = nets.PROBLEMS[name]
    d = initlab.diagnose(build(), nets.batch())
    assert expected <= d.codes, (name, d.codes)
    for code in expected:
        v = d.verdict(code)
        assert v is not None and v.evidence and ("init_model" in v.fix)


@pytest.mark.parametrize("name", list(nets.PROBLEMS))
def test_healthy_init_is_silent(name: str) -> None:
    build, _ = nets.PROBLEMS[name]
    d = initlab.diagnose(nets.healthy(build()), nets.batch())
    assert d.codes == set(), [v.evidence for v in d.verdicts]
    assert d.healthy


def test_tanh_n01_numbers() -> None:
    """N(0,1) weights, width 32: pre-activations have std ~ sqrt(32 E[tanh²]) ~ 5, far past tanh's 5% point"""
    d = initlab.diagnose(nets.mlp(50, nn.Tanh, std=1.0), nets.batch())
    hidden = d.layers[1:50]
    assert min(la.saturated or 0 for la in hidden) > 0.5
    assert all(3 < la.output.std < 8 for la in hidden)
    grad = d.summary()["grad_growth"]
    assert grad is not None and grad > 1.3  # chi = 32 E[sech^4] > 1: chaotic phase, gradients grow backwards


def test_vanishing_crossing_layer() -> None:
    """N(0, 0.01²) on width 32 multiplies the RMS by ~0.01·sqrt(32) = 0.057 per layer: it crosses 1e-3 of the
    input's at the second hidden layer (0.057² = 3.2e-3, 0.057³ = 1.8e-4)."""
    d = initlab.diagnose(nets.mlp(50, nn.Tanh, std=0.01), nets.batch())
    v = d.verdict("vanishing_signal")
    assert v is not None and v.layers == [2]
    rate = d.summary()["signal_growth"]
    assert rate is not None and 0.04 < rate < 0.075


def test_symmetry_every_hidden_layer_one_group() -> None:
    d = initlab.diagnose(nets.mlp(8, nn.Tanh, constant=0.5), nets.batch())
    hidden = [la for la in d.layers if la.activation == "tanh"]
    assert len(hidden) == 8
    for la in hidden:
        assert la.symmetry is not None and la.symmetry.groups == 1 and la.symmetry.largest == nets.WIDTH
        assert la.effective_rank == pytest.approx(1.0, abs=1e-3)
    head = d.layers[-1]  # the random cotangent differs per output: its units are told apart
    assert head.symmetry is not None and head.symmetry.groups == 10


def test_dead_units_with_negative_bias() -> None:
    d = initlab.diagnose(nets.mlp(8, nn.ReLU, std=(2 / nets.WIDTH) ** 0.5, bias=-3.0), nets.batch())
    relu = [la for la in d.layers if la.activation == "relu"]
    # the first layer still sees the full-scale input (std ~1.4 against the bias -3: some samples get
    # through); each layer after it passes on less, until no unit is ever positive
    assert [la.dead for la in relu[3:]] == [1.0] * 5
    assert relu[0].dead is not None and relu[0].dead < 0.5
    v = d.verdict("dead_units")
    assert v is not None and "negative" in v.evidence


def test_linear_net_has_no_activation_verdicts() -> None:
    d = initlab.diagnose(nets.healthy(nets.mlp(6, nn.Identity, std=1.0)), nets.batch())
    assert all(la.dead is None and la.saturated is None for la in d.layers)
    assert math.isfinite(d.layers[-1].output.rms)


def test_no_mean_shift_from_a_narrow_head_of_a_healthy_net():
    # a 10-unit head's |mean| / RMS is ~|N(0, 1)| / sqrt(10) from its random per-unit offsets alone
    codes = []
    for seed in range(10):
        net = nets.mlp(12, nn.Tanh, std=1.0)
        initlab.init_model(net, "auto", seed=seed)
        codes.append(initlab.diagnose(net, nets.batch()).codes)
    assert all("mean_shift" not in c for c in codes), codes

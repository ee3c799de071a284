"""Gains (classic table, variance-preserving, mean-field) and fans (every layout, torch's helper as
reference)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from initlab.catalog import (
    Axes,
    chi,
    classic_gain,
    compute_fans,
    critical_sigma_w2,
    fixed_point_q,
    gain,
    moments,
    variance_gain,
    variance_scaling,
)


def test_classic_table_is_torchs() -> None:
    for name in ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "sigmoid"]:
        assert classic_gain(name) == nn.init.calculate_gain(name) == 1
    for name, param in [("tanh", None), ("relu", None), ("selu", None), ("leaky_relu", None),
                        ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", 10)]:
        assert classic_gain(name, param) == nn.init.calculate_gain(name, param)


@pytest.mark.parametrize("phi, expected", [
    ("relu", math.sqrt(2)), ("linear", 1.0), ("selu", 1.0), ("leaky_relu(0.2)", math.sqrt(2 / 1.04)),
    ("prelu(0.0)", math.sqrt(2)),
])
def test_variance_preserving_gain_known_values(phi: str, expected: float) -> None:
    assert variance_gain(phi) == pytest.approx(expected, abs=2e-4)


def test_variance_gain_of_tanh_is_not_the_classic_five_thirds() -> None:
    g = variance_gain("tanh")
    m = moments("tanh")
    assert g == pytest.approx(1 / math.sqrt(m.second), rel=1e-12) and 1.5 < g < 1.7 and g != 5 / 3


def test_variance_gain_against_monte_carlo() -> None:
    z = np.random.default_rng(0).standard_normal(400_000)
    for phi in ["gelu", "silu", "elu", "softplus", "sigmoid"]:
        second = float(np.mean(gain_fn(phi)(z) ** 2))
        se = float(np.std(gain_fn(phi)(z) ** 2)) / math.sqrt(z.size)
        assert moments(phi).second == pytest.approx(second, abs=5 * se)


def gain_fn(phi: str):  # type: ignore[no-untyped-def]
    from initlab.catalog import activation

    return activation(phi)


def test_gain_accepts_torch_modules_and_callables() -> None:
    assert gain(nn.ReLU()) == pytest.approx(math.sqrt(2))
    assert gain(nn.LeakyReLU(0.2)) == pytest.approx(math.sqrt(2 / 1.04))
    assert variance_gain(nn.GELU()) == pytest.approx(variance_gain("gelu"), rel=1e-9)
    assert variance_gain(lambda x: np.maximum(x, 0)) == pytest.approx(math.sqrt(2), abs=2e-4)


@pytest.mark.parametrize("sigma_b2, expected", [(0.0, 1.0), (0.01, 1.424), (0.05, 1.761), (0.10, 1.986)])
def test_tanh_edge_of_chaos(sigma_b2: float, expected: float) -> None:
    s = critical_sigma_w2("tanh", sigma_b2)
    assert s == pytest.approx(expected, abs=1.5e-3)
    if sigma_b2 > 0:
        assert chi("tanh", s, sigma_b2) == pytest.approx(1.0, abs=1e-6)
        assert chi("tanh", s * 1.1, sigma_b2) > 1 > chi("tanh", s * 0.9, sigma_b2)


def test_fixed_point_of_relu_length_map() -> None:
    # q <- s_w^2 q / 2 + s_b^2  =>  q* = s_b^2 / (1 - s_w^2 / 2)
    assert fixed_point_q("relu", 1.0, 0.1) == pytest.approx(0.2, rel=1e-9)


def test_he_family_takes_gain_from_activation() -> None:
    from initlab.catalog import get
    from initlab.catalog.initializers import Context

    shape = (64, 100)
    assert get("he_normal").resolve(shape).std == pytest.approx(math.sqrt(2 / 100))
    assert get("he_normal").resolve(shape, Context(activation="tanh")).std == pytest.approx(5 / 3 / 10)
    gelu = get("he_normal").resolve(shape, Context(activation="gelu"))
    assert gelu.std == pytest.approx(variance_gain("gelu") / 10)
    assert get("he_normal(nonlinearity='leaky_relu', gain=None)").resolve(shape).std == \
        pytest.approx(math.sqrt(2 / 1.0001) / 10)
    assert get("lecun_normal").resolve(shape, Context(activation="relu")).std == pytest.approx(0.1)


# ---- fans --------------------------------------------------------------------------------------------------
shapes = st.lists(st.integers(1, 7), min_size=2, max_size=5).map(tuple)


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_torch_layout_equals_torchs_helper(shape: tuple[int, ...]) -> None:
    fans = compute_fans(shape, "torch")
    assert (fans.fan_in, fans.fan_out) == nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_layouts_agree_on_the_same_layer(shape: tuple[int, ...]) -> None:
    """The same conv in torch (out, in, *k), Keras/JAX (*k, in, out) and explicit Axes has the same fans."""
    out_c, in_c, *k = shape
    torch_fans = compute_fans(shape, "torch")
    keras_shape = (*k, in_c, out_c)
    assert compute_fans(keras_shape, "keras") == torch_fans == compute_fans(keras_shape, "jax")
    assert compute_fans(shape, Axes(in_axis=1, out_axis=0)) == torch_fans


@settings(max_examples=40, deadline=None)
@given(shapes, st.floats(0.1, 4.0), st.sampled_from(["fan_in", "fan_out", "fan_avg", "fan_geo_avg"]))
def test_variance_scaling_variance(shape: tuple[int, ...], scale: float, mode: str) -> None:
    fi, fo = nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    n = {"fan_in": fi, "fan_out": fo, "fan_avg": (fi + fo) / 2, "fan_geo_avg": math.sqrt(fi * fo)}[mode]
    for dist in ["normal", "uniform", "truncated_normal"]:
        draw = variance_scaling(scale, mode, dist).resolve(shape)
        assert draw.std == pytest.approx(math.sqrt(scale / n), rel=1e-9)


@pytest.mark.parametrize("t", [1.0, 1.5, 2.0, 3.0])
def test_truncation_correction_is_computed_not_hard_coded(t: float) -> None:
    from scipy import stats

    draw = variance_scaling(1.0, "fan_in", "truncated_normal", truncation=t).resolve((10, 100))
    assert draw.scale * stats.truncnorm(-t, t).std() == pytest.approx(0.1, rel=1e-12)
    raw = variance_scaling(1.0, "fan_in", "truncated_normal", truncation=t, correct=False).resolve((10, 100))
    assert raw.scale == pytest.approx(0.1)


@pytest.mark.parametrize("shape, kw, expected", [
    ((64, 4, 3, 3), {"groups": 4}, (36, 144)),             # Conv2d(16, 64, 3, groups=4)
    ((32, 1, 3, 3), {"groups": 32}, (9, 9)),               # depthwise
    ((16, 32, 4, 4), {"stride": 2}, None),                 # transposed, see below
    ((256, 48), {"blocks": 4}, (48, 64)),                  # LSTM weight_ih
    ((192, 64), {"blocks": 3}, (64, 64)),                  # packed q/k/v
])
def test_fans_corrections(shape: tuple[int, ...], kw: dict, expected: tuple[int, int] | None) -> None:
    if expected is None:
        f = compute_fans(shape, "torch_transposed", **kw)  # ConvTranspose2d(16, 32, 4, stride=2)
        assert (f.fan_in, f.fan_out) == (64, 512)
    else:
        f = compute_fans(shape, "torch", **kw)
        assert (f.fan_in, f.fan_out) == expected


def test_hf_conv1d_in_out_and_keras_1d() -> None:
    assert compute_fans((768, 2304), "in_out", blocks=3) == compute_fans((768, 768), "in_out")
    assert compute_fans((768, 2304), "in_out").fan_in == 768
    assert compute_fans((7,), "keras").fan_in == 7
    with pytest.raises(ValueError, match="at least 2 dims"):
        compute_fans((7,), "torch")
    with pytest.raises(ValueError, match="unknown layout 'tf'"):
        compute_fans((7, 3), "tf")  # type: ignore[arg-type]

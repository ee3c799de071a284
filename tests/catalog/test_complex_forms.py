"""``Initializer.resolve_complex`` (JAX's complex forms) without JAX: which draw each scheme maps to, which it
refuses, and the numpy and torch backends drawing the same law (E|z|^2, |z| bounds, uniform phase)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import initlab
from initlab.backends.numpy_backend import complex_array, haar_orthogonal
from initlab.backends.torch_backend import _fill_complex
from initlab.catalog import draws as d
from initlab.catalog import get

FANS = initlab.catalog.Fans(144, 288)


@pytest.mark.parametrize(
    ("spec", "radial", "var"),
    [
        ("jax:normal(stddev=0.3)", "normal", 0.09),
        ("jax:lecun_normal", "truncated", 1 / 144),
        ("jax:glorot_uniform", "disk", 2 / (144 + 288)),
        ("jax:variance_scaling(2.0, 'fan_out', 'normal')", "normal", 2 / 288),
        ("he_normal", "normal", 2 / 144),
        ("flax:default", "truncated", 1 / 144),
    ],
)
def test_schemes_map_to_jaxs_complex_form(spec: str, radial: str, var: float) -> None:
    draw = get(spec).resolve_complex((3, 3, 16, 32), initlab.catalog.Context("keras", FANS))
    assert draw == d.ComplexCircular(pytest.approx(math.sqrt(var)), radial)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec",
    ["jax:uniform", "jax:truncated_normal", "normal(0.1, 1.0)", "keras:he_normal", "torch:kaiming_normal",
     "truncated_normal", "variance_scaling(truncation=3.0)", "sparse"],
)
def test_what_jax_cannot_draw_complex_raises_with_the_fix(spec: str) -> None:
    with pytest.raises(TypeError, match=r"no complex form in JAX.*jax:glorot_normal"):
        get(spec).resolve_complex((16, 32), initlab.catalog.Context("keras", FANS))


@pytest.mark.parametrize("radial", ["normal", "disk", "truncated"])
def test_numpy_and_torch_draw_the_same_complex_law(radial: str) -> None:
    n = 200_000
    draw = d.ComplexCircular(0.5, radial)  # type: ignore[arg-type]
    a = complex_array(draw, (n,), np.random.default_rng(0))
    t = torch.empty(n, dtype=torch.complex64)
    _fill_complex(t, draw, torch.Generator().manual_seed(0))
    b = t.numpy().astype(np.complex128)
    truncated = (1 - 4 * math.exp(-4) / -math.expm1(-4)) / d.COMPLEX_TRUNC2_STD**2
    want = 0.25 * (truncated if radial == "truncated" else 1.0)
    for z in (a, b):
        m2 = np.abs(z) ** 2
        assert abs(m2.mean() - want) < 5 * m2.std() / math.sqrt(n)
        assert abs(np.mean(np.exp(1j * np.angle(z)))) < 5 / math.sqrt(n)  # uniform phase
    limit = {"normal": np.inf, "disk": 0.5 * math.sqrt(2), "truncated": 1.0 / d.COMPLEX_TRUNC2_STD}[radial]
    assert np.abs(a).max() <= limit * (1 + 1e-12) and np.abs(b).max() <= limit * (1 + 1e-6)


def test_complex_orthogonal_is_unitary_on_both_backends() -> None:
    w = initlab.init_(torch.empty(48, 32, dtype=torch.complex128), "orthogonal(gain=2.0)", seed=0)
    np.testing.assert_allclose(w.T.conj() @ w / 4, np.eye(32), atol=1e-12)
    q = haar_orthogonal(32, 48, np.random.default_rng(0), complex_=True)
    np.testing.assert_allclose(q @ q.conj().T, np.eye(32), atol=1e-12)


def test_integer_tensor_still_refused() -> None:
    with pytest.raises(TypeError, match="complex64/complex128"):
        initlab.init_(torch.empty(4, 4, dtype=torch.int64), "jax:lecun_normal", seed=0)

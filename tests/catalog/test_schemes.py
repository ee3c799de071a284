"""Every elementwise scheme x layout x dtype: sample moments, support and the KS test against the scheme's
published formula; same seed -> same tensor; the global RNGs are never touched."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from catalog_expect import EXPECT, LAYOUTS, STRUCTURED, Layout, check_sample, expected

from initlab.backends.numpy_backend import sample
from initlab.backends.torch_backend import init_
from initlab.catalog import available

DTYPES = {torch.float32: 2**-24, torch.float64: 2**-53, torch.float16: 2**-11, torch.bfloat16: 2**-8}
N_MIN = 20_000
LINEAR = LAYOUTS[0]


def draw_torch(name: str, layout: Layout, dtype: torch.dtype = torch.float32, seed: int = 0) -> np.ndarray:
    """At least N_MIN values: as many copies of the weight as needed, one generator for all."""
    g = torch.Generator().manual_seed(seed)
    reps = math.ceil(N_MIN / math.prod(layout.shape))
    out = []
    for _ in range(reps):
        w = torch.empty(layout.shape, dtype=dtype)
        init_(w, name, g, **layout.ctx)
        out.append(w.float().numpy().ravel())
    return np.concatenate(out)


def test_every_registered_scheme_has_an_expectation() -> None:
    assert set(available()) == set(EXPECT) | STRUCTURED


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda lay: lay.name)
@pytest.mark.parametrize("name", sorted(EXPECT))
def test_scheme_matches_formula_on_layout(name: str, layout: Layout) -> None:
    check_sample(draw_torch(name, layout), expected(name, layout), ulp=DTYPES[torch.float32])


@pytest.mark.parametrize("dtype", list(DTYPES)[1:], ids=str)
@pytest.mark.parametrize("name", sorted(EXPECT))
def test_scheme_matches_formula_in_dtype(name: str, dtype: torch.dtype) -> None:
    layout = LAYOUTS[2]  # conv2d
    x = draw_torch(name, layout, dtype)
    check_sample(x, expected(name, layout), ulp=DTYPES[dtype])


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_numpy_backend_matches_formula(name: str) -> None:
    layout = LAYOUTS[2]
    rng = np.random.default_rng(0)
    reps = math.ceil(N_MIN / math.prod(layout.shape))
    x = np.concatenate([sample(name, layout.shape, rng, dtype=np.float64, **layout.ctx).ravel()
                        for _ in range(reps)])
    check_sample(x, expected(name, layout))


@pytest.mark.parametrize("name", sorted(available()))
def test_same_seed_same_tensor_and_global_rng_untouched(name: str) -> None:
    shape = (8, 8, 3, 3) if "dirac" in name or "delta" in name else (9, 1, 16) if "stft" in name else (24, 24)
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    a, b, c = (torch.empty(shape) for _ in range(3))
    init_(a, name, seed=7)
    init_(b, name, seed=7)
    init_(c, name, seed=8)
    x, y = sample(name, shape, 7), sample(name, shape, 7)
    assert torch.equal(a, b)
    np.testing.assert_array_equal(x, y)
    if a.unique().numel() > 2 and "zero" not in name and "stft" not in name:  # STFT: fixed values
        assert not torch.equal(a, c), "a different seed must give a different tensor"
    assert torch.equal(torch.get_rng_state(), torch_state), "init_ touched torch's global RNG"
    assert all(np.array_equal(u, v) for u, v in zip(np.random.get_state(), np_state, strict=True))


def test_half_noncontiguous_equals_contiguous_values() -> None:
    """A transposed bf16 view gets exactly the values a contiguous bf16 tensor of the same shape gets."""
    base = torch.empty(300, 200, dtype=torch.bfloat16)
    view = base.t()  # (200, 300), not contiguous
    ref = torch.empty(200, 300, dtype=torch.bfloat16)
    init_(view, "he_normal", seed=3)
    init_(ref, "he_normal", seed=3)
    assert torch.equal(view, ref)


@pytest.mark.parametrize("dtype", list(DTYPES), ids=str)
def test_large_noncontiguous_half_uses_blocks(dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch) -> None:
    from initlab.backends import torch_backend

    monkeypatch.setattr(torch_backend, "BLOCK", 1000)  # force many blocks, some splitting rows
    w = torch.empty(64, 3000, dtype=dtype)[:, ::2]  # (64, 1500) strided
    init_(w, "truncated_normal(0, 1, -1, 2)", seed=1)
    check_sample(w.float().numpy(), expected_trunc(-1, 2), ulp=DTYPES[dtype])


def expected_trunc(lo: float, hi: float) -> object:
    from scipy import stats

    return stats.truncnorm(lo, hi)


@pytest.mark.parametrize("name", ["he_normal", "orthogonal", "truncated_normal", "dirac", "sparse"])
def test_meta_and_zero_size(name: str) -> None:
    shape = (6, 4, 3, 3) if name == "dirac" else (6, 4)
    meta = torch.empty(shape, device="meta", dtype=torch.bfloat16)
    assert init_(meta, name, seed=0) is meta
    empty = torch.empty(0, *shape[1:])
    assert init_(empty, name, seed=0).shape == empty.shape


def test_meta_tensor_shape_is_still_checked() -> None:
    with pytest.raises(ValueError, match="2 dims"):
        init_(torch.empty(5, device="meta"), "he_normal")


def test_requires_grad_parameter_is_filled_in_place() -> None:
    p = torch.nn.Parameter(torch.zeros(32, 16))
    init_(p, "glorot_uniform", seed=0)
    assert p.requires_grad and p.abs().max() > 0 and p.grad_fn is None


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("lo, hi", [(-3, 3), (-10, 10), (-1, 2), (2, 3), (-6, -5), (0.5, 8)])
def test_truncated_normal_every_path(lo: float, hi: float, dtype: torch.dtype) -> None:
    """Rejection (wide), inverse CDF in float32 (inside +-4) and in float64 (far tails), flipped intervals."""
    from scipy import stats

    w = init_(torch.empty(N_MIN, dtype=dtype), f"truncated_normal(1.0, 2.0, {lo}, {hi})", seed=4)
    # bf16 holds only ~64 values in a 1-std-wide interval: the sample is visibly stepped, so no KS there
    stepped = dtype == torch.bfloat16 and hi - lo <= 1
    check_sample(w.double().numpy(), stats.truncnorm(lo, hi, loc=1.0, scale=2.0), ulp=DTYPES[dtype],
                 ks_p=-1.0 if stepped else 1e-4)

"""Structured schemes: orthogonality (and the Haar distribution), identity, dirac, delta-orthogonal, sparse,
ZerO
-- in both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import linalg, stats

from initlab.backends import numpy_backend, torch_backend
from initlab.backends.torch_backend import init_
from initlab.catalog.initializers import Context


def _flat(w: torch.Tensor | np.ndarray, flatten: str) -> np.ndarray:
    a = np.asarray(w, dtype=np.float64)
    return a.reshape(a.shape[0], -1) if flatten == "torch" else a.reshape(-1, a.shape[-1])


def _orthogonality_error(m: np.ndarray, gain: float) -> float:
    gram = m @ m.T if m.shape[0] <= m.shape[1] else m.T @ m
    return float(np.abs(gram - gain**2 * np.eye(gram.shape[0])).max())


ORTHO = [("orthogonal", "torch", 1.0), ("orthogonal(gain=2.0)", "torch", 2.0),
         ("torch:orthogonal", "torch", 1.0),
         # keras:/jax: on a torch-layout tensor: the framework's kernel transposed, torch's flattening
         ("keras:orthogonal(0.5)", "torch", 0.5), ("jax:orthogonal", "torch", 1.0),
         ("orthogonal(flatten='keras')", "keras", 1.0)]
SHAPES = [(3, 4), (4, 3), (20, 2, 3, 4), (2, 3, 4, 5), (64, 64), (100, 30)]
TOL = {torch.float32: 1e-5, torch.float64: 1e-12, torch.float16: 5e-3, torch.bfloat16: 3e-2}


@pytest.mark.parametrize("dtype", list(TOL), ids=str)
@pytest.mark.parametrize("spec, flatten, gain", ORTHO)
def test_orthogonal_gram_is_gain_squared_identity(spec: str, flatten: str, gain: float,
                                                  dtype: torch.dtype) -> None:
    for shape in SHAPES:
        w = init_(torch.empty(shape, dtype=dtype), spec, seed=1)
        assert _orthogonality_error(_flat(w.double(), flatten), gain) < TOL[dtype] * max(1, gain**2), shape
        x = numpy_backend.sample(spec, shape, 1, dtype=np.float64)
        assert _orthogonality_error(_flat(x, flatten), gain) < 1e-12, shape


def test_orthogonal_4096_float32_error_below_1e5() -> None:
    q = torch_backend.haar_orthogonal(1024, 1024, torch.Generator().manual_seed(0))
    err = (q.T @ q - torch.eye(1024)).abs().max().item()
    assert err < 1e-5


def _qr_haar(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    """The reference construction (torch.nn.init.orthogonal_): QR of a Gaussian matrix, sign-fixed."""
    q, r = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=torch.float64))
    return q * torch.diagonal(r).sign()


def _samples(make: object, n: int, k: int, reps: int = 3000) -> np.ndarray:
    g = torch.Generator().manual_seed(11)
    return np.stack([make(n, k, g).numpy() for _ in range(reps)])  # type: ignore[operator]


def _householder(n: int, k: int, g: torch.Generator) -> torch.Tensor:
    return torch_backend.haar_orthogonal(n, k, g, torch.float64)


@pytest.mark.parametrize("n, k", [(4, 4), (5, 3)])
def test_householder_construction_is_haar(n: int, k: int) -> None:
    """Q[0,0]^2 of a Haar matrix is Beta(1/2, (n-1)/2); det = +-1 equally likely; other statistics agree with
    QR-of-Gaussian samples (two-sample KS)."""
    ours, ref = _samples(_householder, n, k), _samples(_qr_haar, n, k)
    beta = stats.beta(0.5, (n - 1) / 2)
    for i, j in [(0, 0), (n - 1, k - 1), (1, 0)]:
        assert stats.kstest(ours[:, i, j] ** 2, beta.cdf).pvalue > 1e-3
        assert stats.ks_2samp(ours[:, i, j], ref[:, i, j]).pvalue > 1e-3  # signs too
    trace_ours = np.trace(ours[:, :k, :k], axis1=1, axis2=2)
    trace_ref = np.trace(ref[:, :k, :k], axis1=1, axis2=2)
    assert stats.ks_2samp(trace_ours, trace_ref).pvalue > 1e-3
    if n == k:
        det = np.sign(np.linalg.det(ours))
        assert abs(det.mean()) < 5 / math.sqrt(len(det))
        # Haar O(n), n >= 4: tr Q has mean 0, variance 1 and fourth moment 3 (as N(0, 1)): 5 standard errors
        assert abs(trace_ours.mean()) < 5 / math.sqrt(len(det))
        assert abs(trace_ours.var() - 1) < 5 * math.sqrt(2 / len(det))


def test_haar_test_has_power_against_an_unsigned_householder_q() -> None:
    """Without the sign fix the same construction is not Haar, and the test above notices."""
    def unsigned(n: int, k: int, g: torch.Generator) -> torch.Tensor:
        q = torch_backend.haar_orthogonal(n, k, g, torch.float64)
        a = q[0].sign()  # undo the sign fix in a data-dependent way: Q[0, j] >= 0 always
        return q * a
    ours, ref = _samples(unsigned, 4, 4, 1000), _samples(_qr_haar, 4, 4, 1000)
    assert stats.ks_2samp(ours[:, 0, 0], ref[:, 0, 0]).pvalue < 1e-6


def test_numpy_haar_matches_beta_law() -> None:
    rng = np.random.default_rng(2)
    x = np.array([numpy_backend.haar_orthogonal(4, 4, rng)[0, 0] for _ in range(3000)])
    assert stats.kstest(x**2, stats.beta(0.5, 1.5).cdf).pvalue > 1e-3
    assert abs(np.mean(x > 0) - 0.5) < 5 * 0.5 / math.sqrt(3000)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_identity_and_gain(backend: str) -> None:
    for shape in [(3, 5), (5, 3), (4, 4)]:
        w = _draw(backend, "identity(gain=2.0)", shape)
        np.testing.assert_array_equal(w, 2.0 * np.eye(*shape))


def _draw(backend: str, spec: str, shape: tuple[int, ...], **ctx: object) -> np.ndarray:
    if backend == "numpy":
        return numpy_backend.sample(spec, shape, 0, dtype=np.float64, **ctx)  # type: ignore[arg-type]
    return init_(torch.empty(shape, dtype=torch.float64), spec, seed=0, **ctx).numpy()  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["torch", "numpy"])
@pytest.mark.parametrize("dims, conv", [(3, F.conv1d), (4, F.conv2d), (5, F.conv3d)])
@pytest.mark.parametrize("groups", [1, 3])
def test_dirac_preserves_input_channels(backend: str, dims: int, conv: object, groups: int) -> None:
    in_c, out_per_group, k = 3, 3, 3
    shape = (out_per_group * groups, in_c, *([k] * (dims - 2)))
    w = torch.from_numpy(_draw(backend, f"dirac(groups={groups})", shape)).float()
    assert int((w != 0).sum()) == min(out_per_group, in_c) * groups
    x = torch.randn(2, in_c, *([5] * (dims - 2)), generator=torch.Generator().manual_seed(0))
    y = conv(x, w)  # type: ignore[operator]
    inner = (slice(None), slice(None), *([slice(1, -1)] * (dims - 2)))
    for grp in range(groups):
        torch.testing.assert_close(y[:, grp * out_per_group:grp * out_per_group + in_c], x[inner])


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_delta_orthogonal_centre(backend: str) -> None:
    for shape in [(8, 4, 3, 3), (6, 6, 4), (5, 5, 3, 3, 3)]:
        w = _draw(backend, "delta_orthogonal(gain=1.5)", shape)
        centre = (slice(None), slice(None), *((k - 1) // 2 for k in shape[2:]))
        m = w[centre]
        np.testing.assert_allclose(m.T @ m, 2.25 * np.eye(shape[1]), atol=1e-12)
        assert np.count_nonzero(w) == np.count_nonzero(m)
    # channels-last (Keras/JAX kernels (*k, in, out))
    w = _draw(backend, "jax:delta_orthogonal", (3, 3, 4, 8), layout="jax")
    np.testing.assert_allclose(w[1, 1] @ w[1, 1].T, np.eye(4), atol=1e-12)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_sparse_zeros_per_column_and_normal_nonzeros(backend: str) -> None:
    rows, cols, sparsity, std = 200, 150, 0.3, 0.05
    w = _draw(backend, f"sparse(sparsity={sparsity}, std={std})", (rows, cols))
    assert np.all((w == 0).sum(0) == math.ceil(sparsity * rows))
    assert stats.kstest(w[w != 0], stats.norm(0, std).cdf).pvalue > 1e-4


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_zero_hadamard(backend: str) -> None:
    np.testing.assert_array_equal(_draw(backend, "zero_hadamard", (5, 5)), np.eye(5))
    np.testing.assert_array_equal(_draw(backend, "zero_hadamard", (4, 7)), np.eye(4, 7))
    p, q = 6, 3  # expanding: c * H_m[:p, :q], m = ceil(log2 p), c = 2^{-(m-1)/2}
    m = 3
    expected = 2 ** (-(m - 1) / 2) * linalg.hadamard(8)[:p, :q]
    np.testing.assert_allclose(_draw(backend, "zero_hadamard", (p, q)), expected)
    w = _draw(backend, "zero_hadamard", (q, p), layout="in_out")  # HF Conv1D (in, out): the transpose
    np.testing.assert_allclose(w, 2 ** (-(m - 1) / 2) * linalg.hadamard(8)[:p, :q].T)


def test_context_layout_reaches_structured_draws() -> None:
    assert Context(layout="jax").layout == "jax"

"""Complex dtypes: every ``jax:``/``flax:`` name that JAX draws for a complex dtype, against the real JAX.

initlab draws them twice: through ``initlab.jax.get(name)(key, shape, jnp.complex64)`` (the numpy backend
behind a ``pure_callback``) and by ``init_`` on a complex64 torch tensor (the torch backend); both from the
catalog's ``resolve_complex``. Each side's real parts, imaginary parts and moduli must have JAX's law (std
within 5 SE, KS p > 1e-4, same support), the real and imaginary parts must be uncorrelated as in JAX, and
an orthogonal draw must be unitary wherever JAX's is. Names JAX refuses complex dtypes for raise on both
paths."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import initlab
import initlab.backends.numpy_backend
from initlab.catalog import draws as d
from initlab.catalog.initializers import LayoutWarning

from . import frameworks as fw
from ._stats import law_mismatch

SEED = 4321
D = (256, 384)
C = (3, 3, 64, 96)


@dataclass(frozen=True)
class ComplexCase:
    spec: str
    jax_name: str
    shape: tuple[int, ...]
    args: tuple[object, ...] = ()
    unitary: bool = False

    def jax_draw(self) -> np.ndarray:
        jax = fw.need("jax")
        f = getattr(jax.nn.initializers, self.jax_name)
        init = f if self.jax_name in ("zeros", "ones") else f(*self.args)
        return np.asarray(init(jax.random.key(SEED), self.shape, jax.numpy.complex64))


CASES = [
    ComplexCase("jax:normal(stddev=0.3)", "normal", D, (0.3,)),
    ComplexCase("jax:constant(value=0.7)", "constant", D, (0.7,)),
    ComplexCase("jax:ones", "ones", D),
    ComplexCase("jax:glorot_normal", "glorot_normal", C),  # truncated: the modulus cut at 2
    ComplexCase("jax:he_uniform", "he_uniform", C),  # the uniform disk
    ComplexCase("jax:variance_scaling(2.0, 'fan_out', 'normal')", "variance_scaling", C,
                (2.0, "fan_out", "normal")),
    ComplexCase("jax:variance_scaling(1.0, 'fan_geo_avg', 'truncated_normal')", "variance_scaling", C,
                (1.0, "fan_geo_avg", "truncated_normal")),
    ComplexCase("jax:orthogonal(scale=1.5)", "orthogonal", (384, 256), (1.5,), unitary=True),
    ComplexCase("jax:orthogonal", "orthogonal", (96, 384), unitary=True),
    ComplexCase("jax:delta_orthogonal", "delta_orthogonal", (3, 3, 96, 96)),
]
REFUSED = ["jax:uniform(scale=0.3)", "jax:truncated_normal(stddev=0.5)"]


def via_jax(spec: str, shape: tuple[int, ...]) -> np.ndarray:
    jax = fw.need("jax")
    import initlab.jax as ijax

    return np.asarray(ijax.get(spec)(jax.random.key(SEED + 1), shape, jax.numpy.complex64))


def via_torch(spec: str, shape: tuple[int, ...]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LayoutWarning)
        w = initlab.init_(torch.empty(shape, dtype=torch.complex64), spec, seed=SEED + 2, layout="keras")
    return w.numpy()


def complex_mismatch(mine: np.ndarray, theirs: np.ndarray, unitary: bool) -> str:
    if mine.shape != theirs.shape or mine.dtype != theirs.dtype:
        return f"shape/dtype {mine.shape} {mine.dtype} vs {theirs.shape} {theirs.dtype}"
    for part, f in (("real", np.real), ("imag", np.imag), ("|z|", np.abs)):
        why = law_mismatch(f(mine), f(theirs))
        if why:
            return f"{part}: {why}"
    a = mine.ravel().astype(np.complex128)
    if a.std() > 0:  # E[re * im] = 0 in JAX's forms; 5 SE of the sample correlation
        corr = np.corrcoef(a.real, a.imag)[0, 1]
        if abs(corr) > 5 / np.sqrt(a.size):
            return f"real and imaginary parts correlated: {corr:.3g}"
    if unitary:
        m = mine.reshape(-1, mine.shape[-1]).astype(np.complex128)
        m = m if m.shape[0] >= m.shape[1] else m.T
        gram = m.conj().T @ m
        err = np.abs(gram / gram[0, 0].real - np.eye(gram.shape[0])).max()
        if err > 1e-4:
            return f"not unitary: |Q^H Q / g^2 - I| = {err:.2g}"
    return ""


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.spec)
@pytest.mark.parametrize("path", ["jax", "torch"])
def test_complex_draw_matches_jax(case: ComplexCase, path: str) -> None:
    theirs = case.jax_draw()
    mine = via_jax(case.spec, case.shape) if path == "jax" else via_torch(case.spec, case.shape)
    if case.spec.startswith("jax:delta_orthogonal"):  # the centre tap is JAX's unitary, the rest zeros
        assert np.array_equal(mine != 0, theirs != 0)
        mine, theirs = mine[1, 1], theirs[1, 1]
    why = complex_mismatch(mine, theirs, case.unitary or case.spec.startswith("jax:delta"))
    assert not why, f"{case.spec} ({path}): {why}"


@pytest.mark.parametrize("spec", REFUSED)
def test_what_jax_refuses_is_refused(spec: str) -> None:
    jax = fw.need("jax")
    name, arg = spec.split(":")[1].split("(")[0], float(spec.split("=")[1].rstrip(")"))
    with pytest.raises(ValueError, match="float dtype"):
        getattr(jax.nn.initializers, name)(arg)(jax.random.key(0), (4, 4), jax.numpy.complex64)
    with pytest.raises(TypeError, match="no complex form"):
        via_jax(spec, (4, 4))
    with pytest.raises(TypeError, match="no complex form"):
        via_torch(spec, (4, 4))


def test_flax_embed_is_jax_circular_normal() -> None:
    """flax:embed names its own axes: N(0, 1/features) becomes a circular normal with E|z|^2 = 1/features."""
    linen = fw.need("flax.linen")
    jax = fw.need("jax")
    key = jax.random.key(SEED)
    theirs = np.asarray(linen.linear.default_embed_init(key, (1000, 128), jax.numpy.complex64))
    for mine in (via_jax("flax:embed", (1000, 128)), via_torch("flax:embed", (1000, 128))):
        assert not complex_mismatch(mine, theirs, False)


def test_the_truncation_constant_is_jaxs_not_the_cut_std() -> None:
    """JAX divides by 0.9531, not by the std of the cut modulus (0.96196): E|w|^2 = 1.0187 var, as in JAX."""
    rng = np.random.default_rng(0)
    z = initlab.backends.numpy_backend.complex_array(d.ComplexCircular(1.0, "truncated"), (400_000,), rng)
    m2 = np.abs(z) ** 2
    expected = (1 - 4 * np.exp(-4) / -np.expm1(-4)) / d.COMPLEX_TRUNC2_STD**2
    assert abs(m2.mean() - expected) < 5 * m2.std() / np.sqrt(m2.size)
    assert abs(expected - 1.0187) < 1e-4 and np.abs(z).max() <= 2 / d.COMPLEX_TRUNC2_STD

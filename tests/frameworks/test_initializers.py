"""Every catalog scheme through ``initlab.keras.get`` and ``initlab.jax.get``: moments, support and a KS test
against the scheme's published formula with fans worked out by hand for the channels-last layout (the same
tolerances as tests/catalog); structured schemes equal the numpy backend's draw and keep their algebra; a
Keras model using initlab initializers survives a save/load round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="keras is not installed (pip install -e '.[keras]')")
jax = pytest.importorskip("jax", reason="jax is not installed (pip install -e '.[jax]')")
jnp = pytest.importorskip("jax.numpy")

from catalog_expect import EXPECT, STRUCTURED, check_sample  # noqa: E402

import initlab.jax as ijax  # noqa: E402
import initlab.keras as ikeras  # noqa: E402
from initlab.backends.numpy_backend import sample  # noqa: E402
from initlab.catalog import available, compute_fans  # noqa: E402

N_MIN = 20_000
DENSE = (80, 96)  # Keras Dense(96) on 80 inputs: (in, out), fan_in 80, fan_out 96
CONV = (3, 3, 16, 32)  # Conv2D(32, 3) on 16 channels: fan_in 16 * 9, fan_out 32 * 9
F32 = 2**-24


def expected(name: str, shape: tuple[int, ...], fan_in: int, fan_out: int):
    # the layer's fans serve torch: dialects too (initlab passes them explicitly)
    return EXPECT[name](fan_in, fan_out, fan_in, fan_out, shape)


def draw_keras(name: str, shape: tuple[int, ...]) -> np.ndarray:
    reps = math.ceil(N_MIN / math.prod(shape))
    return np.concatenate([np.asarray(ikeras.get(name, seed=s)(shape)).ravel() for s in range(reps)])


def draw_jax(name: str, shape: tuple[int, ...], dtype=jnp.float32) -> np.ndarray:
    init = ijax.get(name)
    reps = math.ceil(N_MIN / math.prod(shape))
    keys = jax.random.split(jax.random.key(0), reps)
    return np.concatenate([np.asarray(init(k, shape, dtype)).ravel() for k in keys])


def test_every_catalog_name_is_covered() -> None:
    assert set(available()) == set(EXPECT) | STRUCTURED


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_keras_initializer_matches_formula(name: str) -> None:
    check_sample(draw_keras(name, DENSE), expected(name, DENSE, 80, 96), ulp=F32)


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_jax_initializer_matches_formula(name: str) -> None:
    check_sample(draw_jax(name, CONV), expected(name, CONV, 144, 288), ulp=F32)


@pytest.mark.parametrize("name", sorted(STRUCTURED))
def test_structured_schemes_are_the_numpy_backends_draw(name: str) -> None:
    shape = CONV if ("dirac" in name or "delta" in name) else (16, 1, 9) if "stft" in name else (48, 32)
    fans = compute_fans(shape, "keras")
    ref = sample(name, shape, np.random.default_rng(3), dtype=np.float64, layout="keras", fans=fans)
    got = np.asarray(ikeras.get(name, seed=3)(shape), dtype=np.float64)
    np.testing.assert_allclose(got, ref.astype(np.float32), rtol=0, atol=0)
    if "orthogonal" in name and len(shape) == 2:
        w = got.astype(np.float64)
        g = w.T @ w  # 48 x 32: orthonormal columns (times gain^2)
        np.testing.assert_allclose(g / g[0, 0], np.eye(32), atol=1e-5)


def test_same_seed_same_values_and_jit() -> None:
    init = ijax.get("he_normal")
    a = init(jax.random.key(5), DENSE)
    b = jax.jit(init, static_argnums=(1, 2))(jax.random.key(5), DENSE, jnp.float32)
    c = init(jax.random.key(6), DENSE)
    assert bool((a == b).all()) and not bool((a == c).all())
    k1, k2 = ikeras.get("he_normal", seed=1), ikeras.get("he_normal", seed=1)
    assert np.array_equal(np.asarray(k1(DENSE)), np.asarray(k2(DENSE)))


@pytest.mark.parametrize("name", ["jax:glorot_normal", "jax:he_uniform", "jax:lecun_normal", "normal"])
def test_complex_dtypes_have_the_real_variance(name: str) -> None:
    z = draw_jax(name, CONV, jnp.complex64).astype(np.complex128)
    n = z.size
    var = float(expected(name, CONV, 144, 288).var())
    m2 = np.abs(z) ** 2  # E|z|^2 = var; its sample mean within 5 standard errors
    assert abs(m2.mean() - var) <= 5 * m2.std() / math.sqrt(n) + var * 1e-6
    assert abs(z.mean()) <= 5 * math.sqrt(var / n)
    assert np.std(np.angle(z)) > 1.7  # a uniform phase: std pi / sqrt(3) = 1.81


def test_complex_without_a_form_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="no complex form"):
        ijax.get("jax:uniform")(jax.random.key(0), (4, 4), jnp.complex64)  # JAX refuses it too


def test_bad_names_fail_at_construction() -> None:
    with pytest.raises(ValueError, match="did you mean"):
        ikeras.get("he_normall")
    with pytest.raises(ValueError, match="did you mean"):
        ijax.get("he_normall")


def test_keras_save_load_round_trip(tmp_path) -> None:
    def build() -> keras.Model:
        return keras.Sequential([
            keras.Input((12,)),
            keras.layers.Dense(16, activation="relu", kernel_initializer=ikeras.get("he_normal", seed=4)),
            keras.layers.Dense(3, kernel_initializer=ikeras.get("normal(0, 0.02)", seed=5),
                               bias_initializer=ikeras.get("constant", value=0.1)),
        ])
    model = build()
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    init = loaded.layers[1].kernel_initializer
    assert isinstance(init, ikeras.Initializer)
    assert init.get_config() == model.layers[1].kernel_initializer.get_config()
    rebuilt = keras.Sequential.from_config(model.get_config())  # re-initialized from the configs
    for a, b in zip(model.weights, rebuilt.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert np.allclose(np.asarray(rebuilt.layers[1].bias), 0.1)

"""``initlab.jax.get``: a catalog scheme as a JAX initializer ``(key, shape, dtype) -> Array``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..catalog import get as catalog_get
from ..catalog import to_config
from ..frameworks._host import complex_draw, host_sample, resolve

JaxInitializer = Callable[..., jax.Array]


def get(scheme: Any, *, activation: str | None = None, **params: Any) -> JaxInitializer:
    """A JAX/Flax initializer for any catalog name, call form or config: ``init(key, shape, dtype=float32)``,
    with fans from JAX's layout ``(*kernel, in, out)``. Usable under ``jit`` (the draw runs on the host
    through ``jax.pure_callback``, by the numpy backend, seeded by the key's data). Complex dtypes get JAX's
    complex forms (:meth:`initlab.catalog.Initializer.resolve_complex`): a circular normal, a uniform disk or
    a modulus-truncated circular normal with ``E|w|^2`` the real variance, a Haar unitary for orthogonal,
    constants as they are; schemes JAX refuses complex dtypes for (``jax:uniform``...) raise here too.

    >>> import flax.nnx as nnx  # doctest: +SKIP
    >>> nnx.Linear(64, 64, kernel_init=get("he_normal"), rngs=nnx.Rngs(0))  # doctest: +SKIP
    """
    config = to_config(catalog_get(scheme, **params) if params else catalog_get(scheme))

    def init(key: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape = tuple(int(s) for s in shape)
        dt = jnp.dtype(dtype)
        resolve(config, shape, activation)  # bad shapes and fans raise here, not inside the callback
        cplx = bool(jnp.issubdtype(dt, jnp.complexfloating))
        if cplx:
            complex_draw(config, shape, activation)  # no complex form: raise now, not in the callback
        data = _key_words(key)

        def host(words: np.ndarray) -> np.ndarray:
            entropy = [int(w) for w in np.asarray(words).ravel()]
            return host_sample(config, shape, entropy, dt, activation)

        return jax.pure_callback(host, jax.ShapeDtypeStruct(shape, dt), data)

    init.__name__ = f"initlab_{config['name']}".replace(":", "_")
    init.__qualname__ = init.__name__
    return init


def _key_words(key: Any) -> jax.Array:
    if isinstance(key, int | np.integer):
        raise TypeError("pass a JAX key (jax.random.key(0)), not an int, as the initializer's first argument")
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    if key.dtype != jnp.uint32:
        raise TypeError(f"expected a JAX PRNG key, got an array of dtype {key.dtype}")
    return key

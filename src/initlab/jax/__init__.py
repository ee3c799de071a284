"""initlab for JAX: catalog schemes as JAX initializers.

Owns ``get(scheme) -> (key, shape, dtype) -> jax.Array`` (:mod:`._initializer`). May import jax, numpy, the
catalog, :mod:`initlab.backends.numpy_backend` and :mod:`initlab.frameworks._host`; never torch. Nothing else
in initlab imports it (the Flax package uses it).
"""

from ._initializer import JaxInitializer, get

__all__ = ["JaxInitializer", "get"]

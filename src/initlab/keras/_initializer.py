"""``initlab.keras.get``: a catalog scheme as a Keras 3 ``Initializer``."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from ..catalog import get as catalog_get
from ..catalog import to_config
from ..frameworks._host import host_sample


@keras.saving.register_keras_serializable(package="initlab", name="Initializer")
class Initializer(keras.initializers.Initializer):
    """Any initlab catalog scheme (``"he_normal"``, ``"orthogonal(gain=2)"``, ``"torch:default"``...) for a
    Keras weight: fans from Keras' layout ``(*kernel, in, out)``.

    ``seed``: an int gives the same values at every call (as Keras' own initializers with an int seed); None
    draws a fresh seed from Keras' global seed generator at each call (``keras.utils.set_random_seed`` makes
    it reproducible). ``activation``: the activation that follows, for schemes whose gain depends on it.
    """

    def __init__(self, scheme: Any = "glorot_uniform", seed: int | None = None,
                 activation: str | None = None):
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self.scheme = to_config(catalog_get(scheme))  # validates the name now, not at build time
        self.seed = None if seed is None else int(seed)
        self.activation = activation

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        dt = keras.backend.standardize_dtype(dtype or keras.config.floatx())
        seed = self.seed if self.seed is not None else _fresh_seed()
        value = host_sample(self.scheme, tuple(shape), seed, "float64", self.activation)
        return keras.ops.cast(keras.ops.convert_to_tensor(value.astype(np.float32)), dt)

    def get_config(self) -> dict[str, Any]:
        return {"scheme": self.scheme, "seed": self.seed, "activation": self.activation}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Initializer:
        return cls(**config)

    def __repr__(self) -> str:
        return f"initlab.keras.Initializer({catalog_get(self.scheme)!s}, seed={self.seed})"


def _fresh_seed() -> int:
    """A seed from Keras' global seed generator (the state ``keras.utils.set_random_seed`` sets)."""
    words = keras.random.randint((2,), 0, 2**31 - 1, seed=None)
    a, b = (int(w) for w in keras.ops.convert_to_numpy(words))
    return (a << 31) | b


def get(scheme: Any, *, seed: int | None = None, activation: str | None = None, **params: Any) -> Initializer:
    """A Keras initializer for any catalog name, call form (``"normal(0, 0.02)"``), config or initlab
    initializer; ``params`` are the scheme's keywords (``get("normal", std=0.02)``).

    >>> layer = keras.layers.Dense(64, kernel_initializer=get("he_normal"))  # doctest: +SKIP
    """
    return Initializer(catalog_get(scheme, **params) if params else scheme, seed=seed, activation=activation)

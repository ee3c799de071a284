"""Keras 3's initializer classes with their draws replaced by initlab's ``keras:`` dialect (test adapter).

Each class subclasses the Keras class of the same name, so construction arguments, attributes, ``get_config``
and serialization are Keras' own; ``__init__`` also builds the initlab scheme (so initlab's validation runs
and must reject what Keras rejects) and ``__call__`` draws with initlab, in Keras' native layout. Keras' own
``*_test.py`` files run against this module in place of ``keras.src.initializers`` (test_keras_suite.py)."""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
import torch

import initlab

from . import frameworks as fw

keras = fw.need("keras")
K = keras.initializers
Initializer = K.Initializer


def _seed(init: Any) -> int:
    seed = getattr(init, "seed", None)
    if isinstance(seed, int):
        return seed
    if seed is None:
        return secrets.randbits(31)
    return int(np.asarray(keras.ops.convert_to_numpy(keras.random.randint((), 0, 2**31 - 1, seed=seed))))


class _Draws:
    spec = ""

    def params(self) -> dict[str, Any]:
        return {}

    def scheme(self) -> Any:
        return initlab.catalog.get(self.spec, **self.params())

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        shape = tuple(int(s) for s in shape)
        w = initlab.init_(
            torch.empty(shape, dtype=torch.float32), self.scheme(), seed=_seed(self), layout="keras"
        )
        return keras.ops.convert_to_tensor(w.numpy(), dtype=dtype or "float32")


def _adapt(base: Any, spec: str, fields: tuple[str, ...] = (), renames: dict[str, str] | None = None) -> type:
    renames = renames or {}

    def __init__(self: Any, *args: Any, **kw: Any) -> None:
        base.__init__(self, *args, **kw) if not fields else None
        if fields:  # initlab validates first, so an error is initlab's, not Keras'
            named = dict(
                zip(
                    ("scale", "mode", "distribution") if spec == "keras:variance_scaling" else fields,
                    args,
                    strict=False,
                )
            )
            named.update({k: v for k, v in kw.items() if k in fields})
            initlab.catalog.get(spec, **{renames.get(k, k): v for k, v in named.items()})
            base.__init__(self, *args, **kw)

    def params(self: Any) -> dict[str, Any]:
        return {renames.get(f, f): getattr(self, f) for f in fields}

    cls = type(base.__name__, (_Draws, base), {"__init__": __init__, "params": params, "spec": spec})
    return keras.saving.register_keras_serializable(package="initlab_keras_adapter")(cls)


Zeros = _adapt(K.Zeros, "keras:zeros")
Ones = _adapt(K.Ones, "keras:ones")
Constant = _adapt(K.Constant, "keras:constant", ("value",))
Identity = _adapt(K.Identity, "keras:identity", ("gain",))
RandomNormal = _adapt(K.RandomNormal, "keras:random_normal", ("mean", "stddev"))
RandomUniform = _adapt(K.RandomUniform, "keras:random_uniform", ("minval", "maxval"))
TruncatedNormal = _adapt(K.TruncatedNormal, "keras:truncated_normal", ("mean", "stddev"))
VarianceScaling = _adapt(
    K.VarianceScaling,
    "keras:variance_scaling",
    ("scale", "mode", "distribution", "input_axes", "output_axes"),
)
Orthogonal = _adapt(K.Orthogonal, "keras:orthogonal", ("gain",))
GlorotNormal = _adapt(K.GlorotNormal, "keras:glorot_normal")
GlorotUniform = _adapt(K.GlorotUniform, "keras:glorot_uniform")
HeNormal = _adapt(K.HeNormal, "keras:he_normal")
HeUniform = _adapt(K.HeUniform, "keras:he_uniform")
LecunNormal = _adapt(K.LecunNormal, "keras:lecun_normal")
LecunUniform = _adapt(K.LecunUniform, "keras:lecun_uniform")
STFT = _adapt(K.STFT, "keras:stft", ("side", "window", "scaling", "periodic"))
IdentityInitializer, OrthogonalInitializer, STFTInitializer = Identity, Orthogonal, STFT
ADAPTED = {
    c.__name__: c
    for c in (
        Zeros,
        Ones,
        Constant,
        Identity,
        RandomNormal,
        RandomUniform,
        TruncatedNormal,
        VarianceScaling,
        Orthogonal,
        GlorotNormal,
        GlorotUniform,
        HeNormal,
        HeUniform,
        LecunNormal,
        LecunUniform,
        STFT,
    )
}


def get(identifier: Any) -> Any:
    """``keras.initializers.get`` that hands back the adapted class for the names initlab covers."""
    found = K.get(identifier)
    if found is None:
        return None
    adapted = ADAPTED.get(type(found).__name__)
    return adapted.from_config(found.get_config()) if adapted is not None else found


def __getattr__(name: str) -> Any:
    return getattr(K, name)

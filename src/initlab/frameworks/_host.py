"""Host-side draws for framework initializers: a catalog scheme sampled by the numpy backend for a weight in
the channels-last layout (Keras, JAX, Flax: ``(*kernel, in, out)``), real or complex."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..backends.numpy_backend import complex_array, draw_array
from ..catalog import draws as d
from ..catalog import get
from ..catalog.fans import compute_fans
from ..catalog.initializers import Context


def _context(init: Any, shape: tuple[int, ...], activation: Any) -> Context:
    # fans passed explicitly, so that ``torch:`` dialects size a Keras kernel by its layer, not by torch's
    # reading of the stored shape; a scheme naming its own axes (flax:embed) keeps them
    explicit_axes = getattr(getattr(init, "initializer", init), "axes", None) is not None
    fans = compute_fans(shape, "keras") if len(shape) >= 2 and not explicit_axes else None
    return Context("keras", fans, activation=activation)


def resolve(scheme: Any, shape: Sequence[int], activation: Any = None) -> d.Draw:
    """The catalog draw of ``scheme`` for a channels-last weight (fans from that layout)."""
    shape = tuple(int(s) for s in shape)
    init = get(scheme)
    return init.resolve(shape, _context(init, shape, activation))


def complex_draw(scheme: Any, shape: Sequence[int], activation: Any = None) -> d.Draw:
    """The catalog's complex draw of ``scheme`` (JAX's complex forms) for a channels-last weight; a scheme
    with no complex form in JAX raises, naming the fix."""
    shape = tuple(int(s) for s in shape)
    init = get(scheme)
    return init.resolve_complex(shape, _context(init, shape, activation))


def host_sample(scheme: Any, shape: Sequence[int], entropy: Sequence[int] | int, dtype: Any,
                activation: Any = None) -> np.ndarray:
    """``scheme`` drawn for ``shape`` with ``numpy.random.default_rng(entropy)``, cast to ``dtype``."""
    shape = tuple(int(s) for s in shape)
    rng = np.random.default_rng(entropy)
    dt = np.dtype(dtype)
    if dt.kind == "c":
        return complex_array(complex_draw(scheme, shape, activation), shape, rng).astype(dt)
    if dt.kind not in "fV":  # "V": ml_dtypes' bfloat16 and friends
        raise TypeError(f"cannot draw {scheme!s} in dtype {dt}: use a floating-point (or complex) dtype")
    return draw_array(resolve(scheme, shape, activation), shape, rng).astype(dt)

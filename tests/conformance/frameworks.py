"""Draws from the real frameworks, as numpy arrays in each framework's native layout.

Each maker is ``make(shape, seed) -> np.ndarray``. Imports happen inside the makers, so a missing framework
skips only the cases that need it (see :func:`need`)."""

from __future__ import annotations

import importlib
import importlib.util
import math
from collections.abc import Callable
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

Maker = Callable[[tuple[int, ...], int], np.ndarray]


@cache
def _import(name: str) -> ModuleType | str:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        return f"{name} cannot be imported here: {type(exc).__name__}: {exc}"


def need(name: str) -> Any:
    """The module, or skip the calling test with the import error as the reason."""
    mod = _import(name)
    if isinstance(mod, str):
        pytest.skip(mod)
    return mod


@cache
def timm_weight_init() -> ModuleType:
    """timm/layers/weight_init.py loaded by itself: it needs torch only, while ``import timm`` needs
    torchvision."""
    spec = importlib.util.find_spec("timm")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("timm is not installed")
    path = f"{next(iter(spec.submodule_search_locations))}/layers/weight_init.py"
    file_spec = importlib.util.spec_from_file_location("_timm_weight_init", path)
    assert file_spec is not None and file_spec.loader is not None
    module = importlib.util.module_from_spec(file_spec)
    file_spec.loader.exec_module(module)
    return module


def jax_init(name: str, *args: Any, **kw: Any) -> Maker:
    def make(shape: tuple[int, ...], seed: int) -> np.ndarray:
        jax = need("jax")
        f = getattr(jax.nn.initializers, name)
        init = f if name in ("zeros", "ones") else f(*args, **kw)
        return np.asarray(init(jax.random.key(seed), shape, jax.numpy.float32))

    return make


def flax_init(attr: str, *args: Any, **kw: Any) -> Maker:
    def make(shape: tuple[int, ...], seed: int) -> np.ndarray:
        jax = need("jax")
        linen = need("flax.linen")
        obj = (
            getattr(linen.linear, attr) if hasattr(linen.linear, attr) else getattr(linen.initializers, attr)
        )
        init = obj(*args, **kw) if (args or kw or attr == "lecun_normal") else obj
        return np.asarray(init(jax.random.key(seed), shape, jax.numpy.float32))

    return make


def keras_init(cls: str, seeded: bool = True, **kw: Any) -> Maker:
    def make(shape: tuple[int, ...], seed: int) -> np.ndarray:
        keras = need("keras")
        init = getattr(keras.initializers, cls)(**kw, **({"seed": seed} if seeded else {}))
        return np.asarray(keras.ops.convert_to_numpy(init(shape, dtype="float32")))

    return make


def torch_init(fn: Callable[..., Any], *args: Any, **kw: Any) -> Maker:
    def make(shape: tuple[int, ...], seed: int) -> np.ndarray:
        w = torch.empty(shape)
        g = torch.Generator().manual_seed(seed)
        try:
            fn(w, *args, generator=g, **kw)
        except TypeError:  # functions without a generator argument: torch's global RNG, saved and restored
            with torch.random.fork_rng():
                torch.manual_seed(seed)
                fn(w, *args, **kw)
        return w.numpy()

    return make


def torch_default_linear(shape: tuple[int, ...], seed: int) -> np.ndarray:
    w = torch.empty(shape)
    torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=torch.Generator().manual_seed(seed))
    return w.numpy()


def timm_init(name: str, **kw: Any) -> Maker:
    def make(shape: tuple[int, ...], seed: int) -> np.ndarray:
        fn = getattr(timm_weight_init(), name)
        w = torch.empty(shape)
        with torch.random.fork_rng():  # timm draws from torch's global generator
            torch.manual_seed(seed)
            fn(w, **kw)
        return w.numpy()

    return make


def hf_init(name: str, **kw: Any) -> Maker:
    def make(shape: tuple[int, ...], seed: int) -> np.ndarray:
        init = need("transformers.initialization")
        w = torch.empty(shape)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            getattr(init, name)(w, **kw)
        return w.numpy()

    return make

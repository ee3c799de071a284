"""Torch-layout draws to the channels-last layouts of Keras and Flax (numpy in, numpy out)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def dense(w: np.ndarray) -> np.ndarray:
    """Linear ``(out, in)`` -> Dense kernel ``(in, out)``."""
    return np.ascontiguousarray(w.T)


def conv(w: np.ndarray) -> np.ndarray:
    """Conv ``(out, in/groups, *k)`` -> ``(*k, in/groups, out)``; ConvTranspose ``(in, out, *k)`` -> Keras'
    ``(*k, out, in)`` (the same permutation)."""
    n = w.ndim
    return np.ascontiguousarray(w.transpose(*range(2, n), 1, 0))


def depthwise(w: np.ndarray, multiplier: int) -> np.ndarray:
    """Conv ``(in * mult, 1, *k)`` with ``groups=in`` -> Keras DepthwiseConv kernel ``(*k, in, mult)``."""
    k = w.shape[2:]
    blocks = w.reshape(w.shape[0] // multiplier, multiplier, *k)
    return np.ascontiguousarray(blocks.transpose(*range(2, 2 + len(k)), 0, 1))


def gates(w: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Reorder the gate blocks stacked along dim 0 (torch GRU r,z,n -> Keras z,r,h: ``order=(1, 0, 2)``)."""
    blocks = np.split(w, len(order), axis=0)
    return np.concatenate([blocks[i] for i in order], axis=0)


def conv_transpose(w: np.ndarray) -> np.ndarray:
    """ConvTranspose ``(in, out/groups, *k)`` -> Flax ConvTranspose kernel ``(*k, in, out)``."""
    return np.ascontiguousarray(w.transpose(*range(2, w.ndim), 0, 1))


def qkv(w: np.ndarray, i: int, heads: int) -> np.ndarray:
    """Block ``i`` (query, key, value) of a packed ``(3E, E)`` in_proj weight as an ``(E, heads, E/heads)``
    kernel, or of the ``(3E,)`` bias as ``(heads, E/heads)``."""
    dim = w.shape[0] // 3
    block = w[i * dim:(i + 1) * dim]
    return dense(block).reshape(dim, heads, -1) if block.ndim == 2 else block.reshape(heads, -1)

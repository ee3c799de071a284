"""Fans of a weight from its shape and layout.

Layouts: ``"torch"`` ``(out, in/groups, *k)``; ``"torch_transposed"`` ``(in, out/groups, *k)``
(ConvTranspose);
``"keras"``/``"jax"`` ``(*k, in, out)``; ``"in_out"`` (HF ``Conv1D``: ``(in, out)``); or explicit
:class:`Axes`.

``fan_in`` is the number of inputs that reach one output unit, ``fan_out`` the number of outputs one input
unit reaches. With ``groups=1`` and no stride this equals PyTorch's ``_calculate_fan_in_and_fan_out`` for the
"torch" layout; ``groups``, ``blocks`` (stacked LSTM/GRU gates, packed q/k/v) and ``stride`` (transposed conv)
make it exact where torch's helper is not.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

LayoutName = Literal["torch", "torch_transposed", "keras", "jax", "in_out"]


@dataclass(frozen=True)
class Axes:
    """Explicit axes, as in JAX's ``variance_scaling(in_axis, out_axis, batch_axis)``."""

    in_axis: int | tuple[int, ...] = -2
    out_axis: int | tuple[int, ...] = -1
    batch_axis: tuple[int, ...] = ()


Layout = Union[LayoutName, Axes]  # noqa: UP007 - runtime alias
LAYOUTS: tuple[str, ...] = ("torch", "torch_transposed", "keras", "jax", "in_out")


@dataclass(frozen=True)
class Fans:
    """``fan_in``/``fan_out`` of one weight (per gate block and group), and its receptive field size."""

    fan_in: float
    fan_out: float
    receptive: float = 1

    def by_mode(self, mode: str) -> float:
        """The fan a variance-scaling ``mode`` divides by."""
        if mode == "fan_in":
            return self.fan_in
        if mode == "fan_out":
            return self.fan_out
        if mode == "fan_avg":
            return (self.fan_in + self.fan_out) / 2.0
        if mode == "fan_geo_avg":
            return math.sqrt(self.fan_in * self.fan_out)
        raise ValueError(f"unknown mode {mode!r}; use one of fan_in, fan_out, fan_avg, fan_geo_avg")


def _prod(xs: Sequence[int]) -> int:
    return math.prod(int(x) for x in xs)


def _axes_tuple(axis: int | tuple[int, ...], ndim: int) -> tuple[int, ...]:
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"axis {a} is out of range for a {ndim}-D weight")
        out.append(a % ndim)
    return tuple(out)


def compute_fans(
    shape: Sequence[int],
    layout: Layout = "torch",
    *,
    groups: int = 1,
    blocks: int = 1,
    stride: Sequence[int] | int | None = None,
) -> Fans:
    """Fans of a weight of ``shape`` stored in ``layout``.

    ``groups``: conv groups (depthwise: ``groups == in_channels``). ``blocks``: number of stacked blocks on
    the
    output axis (4 for LSTM ``weight_ih``, 3 for GRU or packed q/k/v); fans are those of one block.
    ``stride``: transposed-conv stride; each output then sees ``in/groups * prod(k) / prod(stride)`` inputs.

    >>> compute_fans((64, 4, 3, 3), groups=4)        # Conv2d(16, 64, 3, groups=4)
    Fans(fan_in=36, fan_out=144, receptive=9)
    >>> compute_fans((3, 3, 64, 128), "keras")
    Fans(fan_in=576, fan_out=1152, receptive=9)
    """
    shape = tuple(int(s) for s in shape)
    if groups < 1 or blocks < 1:
        raise ValueError(f"groups and blocks must be >= 1, got groups={groups}, blocks={blocks}")
    ndim = len(shape)
    if isinstance(layout, Axes):
        if ndim < 2:
            raise ValueError(f"fans need a weight with at least 2 dims, got shape {shape}")
        in_axes = _axes_tuple(layout.in_axis, ndim)
        out_axes = _axes_tuple(layout.out_axis, ndim)
        batch_axes = _axes_tuple(layout.batch_axis, ndim)
        n_in = _prod([shape[a] for a in in_axes])
        n_out = _prod([shape[a] for a in out_axes])
        n_batch = _prod([shape[a] for a in batch_axes])
        receptive = _prod(shape) / max(1, n_in * n_out * n_batch)
        return Fans(n_in * receptive, n_out * receptive / blocks, receptive)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; use one of {', '.join(LAYOUTS)} or Axes(...)")
    if layout == "keras" and ndim < 2:  # Keras: 1-D -> fan_in = fan_out = shape[0]; scalar -> 1
        n = shape[0] if ndim == 1 else 1
        return Fans(n, n, 1)
    if ndim < 2:
        raise ValueError(
            f"fans need a weight with at least 2 dims, got shape {shape}: a fan-based scheme cannot size a "
            "bias or scale vector by itself; pass fans=... (e.g. the weight's) or use a fixed scheme "
            "such as 'zeros' or 'normal(0, 0.02)'"
        )
    fan_in: float
    if layout == "torch":
        if shape[0] % groups:
            raise ValueError(f"shape {shape}: {shape[0]} output channels do not split into groups={groups}")
        receptive = _prod(shape[2:])
        fan_in = shape[1] * receptive
        fan_out = shape[0] // blocks // groups * receptive
    elif layout == "torch_transposed":
        receptive = _prod(shape[2:])
        strides = (stride,) * (ndim - 2) if isinstance(stride, int) else tuple(stride or ())
        fan_in = shape[0] // groups * receptive / max(1, _prod(strides))
        fan_out = shape[1] * receptive
    elif layout in ("keras", "jax"):
        receptive = _prod(shape[:-2])
        fan_in = shape[-2] * receptive
        fan_out = shape[-1] // blocks * receptive
    else:  # in_out
        receptive = _prod(shape[2:])
        fan_in = shape[0] * receptive
        fan_out = shape[1] // blocks * receptive
    if isinstance(fan_in, float) and fan_in.is_integer():
        fan_in = int(fan_in)
    return Fans(fan_in, fan_out, receptive)


Framework = Literal["torch", "keras", "flax"]


def framework_fans(framework: Framework, shape: Sequence[int], layout: Layout = "torch", *, groups: int = 1,
                   depthwise: bool = False) -> Fans:
    """The fans ``framework``'s own layer computes for a weight stored the torch way (``layout`` "torch" or
    "torch_transposed"), i.e. for the framework's kernel transposed into that storage.

    torch: ``_calculate_fan_in_and_fan_out`` of the stored shape (dim 1 x k, dim 0 x k: no groups, stride or
    layout). Keras: the kernel ``(*k, in/groups, out)`` -- the same numbers, except DepthwiseConv
    ``(*k, in, multiplier)`` (``depthwise``: fan_in = in x k, fan_out = multiplier x k) -- and Conv*Transpose
    ``(*k, out, in)``, again torch's numbers. Flax/JAX: as torch for convs, but ConvTranspose's kernel is
    ``(*k, in, out)``: fan_in = in x k whatever the stride.

    >>> framework_fans("keras", (128, 1, 3, 3), groups=64, depthwise=True)   # DepthwiseConv2D(3, 2) on 64 ch
    Fans(fan_in=576, fan_out=18, receptive=9)
    >>> framework_fans("flax", (64, 128, 4, 4), "torch_transposed")
    Fans(fan_in=1024, fan_out=2048, receptive=16)
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2:
        raise ValueError(f"fans need a weight with at least 2 dims, got shape {shape}")
    receptive = _prod(shape[2:])
    if framework == "keras" and depthwise and layout == "torch":
        return Fans(groups * receptive, shape[0] // max(groups, 1) * receptive, receptive)
    if framework == "flax" and layout == "torch_transposed":
        return Fans(shape[0] * receptive, shape[1] * groups * receptive, receptive)
    return compute_fans(shape, "torch")

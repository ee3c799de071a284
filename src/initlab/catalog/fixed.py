"""Initializers with fixed values that depend on the shape only: an array-valued constant (Keras 3's and
JAX's ``Constant(value=<array>)``, broadcast to the weight) and Keras' STFT kernel. Both resolve to
:class:`~.draws.Values`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from . import draws as d
from .initializers import Context, Initializer, native_fans


def _broadcast_to(values: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        return np.broadcast_to(values, shape)
    except ValueError:
        raise ValueError(f"{what} of shape {values.shape} does not broadcast to the weight's shape {shape}: "
                         "pass an array of a shape that does (a Keras kernel (in, out) stored the torch way "
                         "is (out, in): transpose the value)") from None


@dataclass(frozen=True)
class ArrayConstantInit(Initializer):
    """``w = value`` broadcast to the weight's shape (numpy's rules), as ``ops.cast(value) * ops.ones(shape)``
    in Keras and ``jnp.full(shape, value)`` in JAX. ``values`` row-major, ``shape`` the array's."""

    config_name: ClassVar[str] = "constant"
    values: tuple[float, ...]
    shape: tuple[int, ...]

    @classmethod
    def of(cls, value: Any) -> ArrayConstantInit:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"constant: value must be a number or an array of numbers, got {value!r}") \
                from None
        if not np.isfinite(arr).all():
            raise ValueError("constant: the value array holds non-finite numbers; pass finite values")
        return cls(tuple(float(v) for v in arr.ravel()), tuple(int(s) for s in arr.shape))

    def array(self) -> np.ndarray:
        return np.asarray(self.values, dtype=np.float64).reshape(self.shape)

    def get_config(self) -> dict[str, Any]:
        return {"value": self.array().tolist()}

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        shape = tuple(int(s) for s in shape)
        _broadcast_to(self.array(), shape, "constant value")
        return d.Values(self.values, self.shape)

    def resolve_complex(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        return self.resolve(shape, ctx)


STFT_SIDES = ("real", "imag")
STFT_SCALINGS = ("density", "spectrum")


@dataclass(frozen=True)
class STFTInit(Initializer):
    """Keras 3 ``STFT`` (keras/src/initializers/constant_initializers.py): a Conv1D kernel ``(T, C, F)``
    (Keras' layout; torch's ``(F, C, T)`` is its transpose) with ``cos`` ("real") or ``sin`` ("imag") of
    ``-2 pi t f / (2 (F - 1))``, times the window (a ``scipy.signal.get_window`` name, values of length T, or
    None), divided by its L2 norm ("density") or L1 norm ("spectrum") or not at all (None). Computed in
    float64 (Keras computes the phase in float32: it differs from this by up to ~1e-4 at T = 256)."""

    config_name: ClassVar[str] = "keras:stft"
    side: str = "real"
    window: str | tuple[float, ...] | None = "hann"
    scaling: str | None = "density"
    periodic: bool = False

    def __post_init__(self) -> None:
        if self.side not in STFT_SIDES:
            raise ValueError(f"side should be 'real' or 'imag', not {self.side}")
        if isinstance(self.window, str):
            from scipy import signal  # on first use: the catalog needs scipy only for named windows

            signal.get_window(self.window, 1)  # raises ValueError for an unknown window, as Keras does
        if self.scaling is not None and self.scaling not in STFT_SCALINGS:
            raise ValueError(f"Scaling is invalid, it must be `None`, 'density' or 'spectrum'. Received "
                             f"scaling={self.scaling}")

    def get_config(self) -> dict[str, Any]:
        window = list(self.window) if isinstance(self.window, tuple) else self.window
        return {"side": self.side, "window": window, "scaling": self.scaling, "periodic": self.periodic}

    def _window(self, frames: int) -> np.ndarray | None:
        if self.window is None:
            return None
        if isinstance(self.window, str):
            from scipy import signal

            return np.asarray(signal.get_window(self.window, frames, self.periodic), dtype=np.float64)
        win = np.asarray(self.window, dtype=np.float64)
        if win.shape != (frames,):
            raise ValueError(f"The shape of `window` must be equal to [frame_length]. Received: window "
                             f"shape={win.shape} for frame_length={frames}")
        return win

    def kernel(self, frames: int, bins: int) -> np.ndarray:
        """The ``(T, 1, F)`` kernel."""
        if bins < 2:
            raise ValueError(f"STFT needs at least 2 frequency bins (F = fft_length // 2 + 1), got {bins}")
        t = np.arange(frames, dtype=np.float64).reshape(-1, 1, 1)
        f = np.arange(bins, dtype=np.float64).reshape(1, 1, -1) / ((bins - 1) * 2)
        args = -2.0 * t * f * math.pi
        k = np.cos(args) if self.side == "real" else np.sin(args)
        win = self._window(frames)
        if win is not None:
            norm = {"density": math.sqrt(float(np.sum(win**2))), "spectrum": float(np.sum(np.abs(win)))}
            k = k * win.reshape(-1, 1, 1) / norm.get(self.scaling or "", 1.0)
        return k

    def resolve(self, shape: Sequence[int], ctx: Context | None = None) -> d.Draw:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3:
            raise ValueError("keras:stft needs a Conv1D kernel (frame_length, channels, fft_length // 2 + 1),"
                             f" got shape {shape}")
        ctx = ctx or Context()
        torch_layout = ctx.layout in ("torch", "torch_transposed")
        if ctx.layout == "torch":
            native_fans(shape, ctx, "keras:stft")  # says which layout it assumed
        frames, bins = (shape[2], shape[0]) if torch_layout else (shape[0], shape[2])
        k = self.kernel(frames, bins)
        if torch_layout:  # the same kernel stored the torch way: (out = F, in = C, T)
            k = np.moveaxis(k, (0, 2), (2, 0))
        return d.Values(tuple(float(v) for v in k.ravel()), tuple(k.shape))

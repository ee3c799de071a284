"""``torch.nn.init``, function for function, on initlab's catalog and torch backend.

``from initlab.compat import torch as init`` then ``init.kaiming_uniform_(w, a=math.sqrt(5))``: same names,
signatures, defaults, errors and warnings as ``torch.nn.init`` (torch 2.13), each drawing through the
catalog's
``torch:`` dialect (:mod:`initlab.catalog.dialects`) and :func:`initlab.backends.torch_backend.fill_`.

Parity, including torch's pitfalls, on purpose:

- ``generator=None`` draws from torch's global generator, exactly as ``torch.nn.init`` does (the main API,
  :func:`initlab.init_`, never does: it takes ``seed=`` or a generator).
- ``trunc_normal_(a, b)``: ``a`` and ``b`` are *absolute values*, not standard deviations, and the variance
  is not corrected; with ``std=0.02`` nothing is truncated. Use ``"truncated_normal"`` (std units) in the
  main API. Values come from a one-pass inverse CDF instead of torch's rejection loop: the same distribution,
  different numbers, 10x+ faster, no full-size temporaries.
- ``sparse_`` draws its zero mask with ``torch.randperm`` on the *global* generator, ignoring ``generator``,
  like torch; the main API's ``"sparse"`` takes the mask from the generator too.
- Tensors initlab does not draw into (integer, bool, complex; half types for ``orthogonal_``) go to
  ``torch.nn.init`` itself: the same values or the same ``NotImplementedError``. Bad ranges raise torch's own
  ``RuntimeError`` (``uniform_(a > b)``, ``normal_(std < 0)``, ``trunc_normal_(a > b)``); the main API raises
  initlab's ``ValueError`` for them and draws orthogonal matrices in half precision.
- Fans are torch's ``_calculate_fan_in_and_fan_out`` of the stored shape (no groups, gate blocks, layouts).

Also bit-identical to torch for a given generator state: ``uniform_``, ``normal_``, ``xavier_*``,
``kaiming_*`` on contiguous float32/float64 tensors, and the deterministic ones. ``orthogonal_`` has the same
(Haar) distribution but different values (Householder construction, no QR).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import torch
from torch import Tensor

from ..backends.torch_backend import fill_
from ..catalog import get
from ..catalog.fans import compute_fans
from ..catalog.gains import classic_gain

__all__ = [
    "calculate_gain", "constant", "constant_", "dirac", "dirac_", "eye", "eye_", "kaiming_normal",
    "kaiming_normal_", "kaiming_uniform", "kaiming_uniform_", "normal", "normal_", "ones_", "orthogonal",
    "orthogonal_", "sparse", "sparse_", "trunc_normal_", "uniform", "uniform_", "xavier_normal",
    "xavier_normal_", "xavier_uniform", "xavier_uniform_", "zeros_",
]

_FanMode = Literal["fan_in", "fan_out"]
_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
           "sigmoid")
_TORCH_NAMES = (*_LINEAR, "tanh", "relu", "leaky_relu", "selu")


_DRAWN = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
_SCRATCH = torch.Generator()  # for torch's own argument checks on empty tensors: nothing is drawn from it


def _torch_fallback(tensor: Tensor, name: str, generator: torch.Generator | None, **params: Any) -> bool:
    """Run ``torch.nn.init``'s own function where initlab does not draw (integer, bool and complex tensors;
    ``orthogonal_`` on half types): same values or, mostly, the same ``NotImplementedError``."""
    unsupported = tensor.dtype not in _DRAWN or (name == "orthogonal_" and tensor.dtype.itemsize == 2)
    if unsupported:
        getattr(torch.nn.init, name)(tensor, **params, generator=generator)
    return unsupported


def _check_uniform(a: float, b: float) -> None:
    """torch's RuntimeError for a bad range (from > to, NaN, out of float range), raised by torch itself."""
    torch.empty(0).uniform_(a, b, generator=_SCRATCH)


def _check_normal(std: float) -> None:
    torch.empty(0).normal_(0.0, std, generator=_SCRATCH)


def _fill(tensor: Tensor, name: str, generator: torch.Generator | None, **params: Any) -> Tensor:
    draw = get(name, **params).resolve(tuple(tensor.shape))
    with torch.no_grad():
        return fill_(tensor, draw, generator, finite=False)  # torch writes inf for normal_(std=1e300)


def calculate_gain(nonlinearity: str, param: int | float | None = None) -> float:
    """torch's gain table (linear/conv/sigmoid 1, tanh 5/3, relu sqrt 2, leaky_relu sqrt(2/(1+s^2)), selu
    3/4)."""
    if nonlinearity not in _TORCH_NAMES:
        raise ValueError(f"Unsupported nonlinearity {nonlinearity}")
    if nonlinearity in _LINEAR:
        return 1
    return classic_gain(nonlinearity, param if nonlinearity == "leaky_relu" else None)


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: torch.Generator | None = None) -> Tensor:
    """Fill with U(a, b)."""
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(uniform_, (tensor,), tensor=tensor, a=a, b=b,
                                                     generator=generator)
    if _torch_fallback(tensor, "uniform_", generator, a=a, b=b):
        return tensor
    _check_uniform(a, b)
    return _fill(tensor, "torch:uniform", generator, a=a, b=b)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: torch.Generator | None = None) -> Tensor:
    """Fill with N(mean, std^2)."""
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(normal_, (tensor,), tensor=tensor, mean=mean, std=std,
                                                     generator=generator)
    if _torch_fallback(tensor, "normal_", generator, mean=mean, std=std):
        return tensor
    _check_normal(std)
    return _fill(tensor, "torch:normal", generator, mean=mean, std=std)


def trunc_normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator: torch.Generator | None = None) -> Tensor:
    """N(mean, std^2) conditioned on ``a <= w <= b`` -- absolute bounds, torch semantics (see module doc)."""
    if tensor.is_meta:
        return tensor
    if (mean < a - 2 * std) or (mean > b + 2 * std):
        warnings.warn("mean is more than 2 std from [a, b] in nn.init.trunc_normal_. "
                      "The distribution of values may be incorrect.", stacklevel=2)
    if _torch_fallback(tensor, "trunc_normal_", generator, mean=mean, std=std, a=a, b=b):
        return tensor
    # torch 2.13 rejects from N(mean, std) when [a, b] holds > 0.3 of the mass, else from U(a, b): its
    # errors (std < 0, a > b; ZeroDivisionError for std=0) come from the draw it picks
    p = _norm_cdf((b - mean) / std) - _norm_cdf((a - mean) / std)
    _check_normal(std) if p > 0.3 else _check_uniform(a, b)
    return _fill(tensor, "torch:trunc_normal", generator, mean=mean, std=std, a=a, b=b)


def _norm_cdf(x: float) -> float:
    return (1.0 + math.erf(x / math.sqrt(2.0))) / 2.0


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``."""
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(constant_, (tensor,), tensor=tensor, val=val)
    with torch.no_grad():
        return tensor.fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0."""
    with torch.no_grad():
        return tensor.zero_()


def eye_(tensor: Tensor) -> Tensor:
    """The identity matrix on a 2-D tensor (rectangular: ones on the main diagonal)."""
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _fill(tensor, "torch:eye", None)


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Dirac delta at the kernel centre ``k // 2``, channel i -> i within each group (3-, 4-, 5-D)."""
    if tensor.ndimension() not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if tensor.size(0) % groups != 0:
        raise ValueError("dim 0 must be divisible by groups")
    return _fill(tensor, "torch:dirac", None, groups=groups)


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    if tensor.dim() < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    fans = compute_fans(tuple(tensor.shape), "torch")
    return int(fans.fan_in), int(fans.fan_out)


def _calculate_correct_fan(tensor: Tensor, mode: _FanMode) -> int:
    mode = mode.lower()  # type: ignore[assignment]
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"Mode {mode} not supported, please use one of {['fan_in', 'fan_out']}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """U(+-gain sqrt(6 / (fan_in + fan_out)))."""
    _calculate_fan_in_and_fan_out(tensor)
    if _torch_fallback(tensor, "xavier_uniform_", generator, gain=gain):
        return tensor
    return _fill(tensor, "torch:xavier_uniform", generator, gain=gain)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: torch.Generator | None = None) -> Tensor:
    """N(0, gain^2 2 / (fan_in + fan_out)), untruncated."""
    _calculate_fan_in_and_fan_out(tensor)
    if _torch_fallback(tensor, "xavier_normal_", generator, gain=gain):
        return tensor
    return _fill(tensor, "torch:xavier_normal", generator, gain=gain)


def _kaiming(kind: str, tensor: Tensor, a: float, mode: _FanMode, nonlinearity: str,
             generator: torch.Generator | None) -> Tensor:
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return tensor
    _calculate_correct_fan(tensor, mode)
    calculate_gain(nonlinearity, a)
    if _torch_fallback(tensor, f"kaiming_{kind}_", generator, a=a, mode=mode, nonlinearity=nonlinearity):
        return tensor
    return _fill(tensor, f"torch:kaiming_{kind}", generator, a=a, mode=mode.lower(),
                 nonlinearity=nonlinearity)


def kaiming_uniform_(tensor: Tensor, a: float = 0, mode: _FanMode = "fan_in",
                     nonlinearity: str = "leaky_relu", generator: torch.Generator | None = None) -> Tensor:
    """U(+-gain sqrt(3 / fan)), gain = calculate_gain(nonlinearity, a)."""
    if torch.overrides.has_torch_function_variadic(tensor):
        return torch.overrides.handle_torch_function(
            kaiming_uniform_, (tensor,), tensor=tensor, a=a, mode=mode, nonlinearity=nonlinearity,
            generator=generator)
    return _kaiming("uniform", tensor, a, mode, nonlinearity, generator)


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: _FanMode = "fan_in",
                    nonlinearity: str = "leaky_relu", generator: torch.Generator | None = None) -> Tensor:
    """N(0, gain^2 / fan), untruncated."""
    return _kaiming("normal", tensor, a, mode, nonlinearity, generator)


def orthogonal_(tensor: Tensor, gain: float = 1, generator: torch.Generator | None = None) -> Tensor:
    """``gain * Q`` with Q Haar-distributed, flattened to (dim 0, rest); Householder construction."""
    if tensor.ndimension() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:  # torch returns before it draws
        return tensor
    if _torch_fallback(tensor, "orthogonal_", generator, gain=gain):
        return tensor
    return _fill(tensor, "torch:orthogonal", generator, gain=gain)


def sparse_(tensor: Tensor, sparsity: float, std: float = 0.01,
            generator: torch.Generator | None = None) -> Tensor:
    """N(0, std^2) with ``ceil(sparsity * rows)`` zeros per column; the mask ignores ``generator`` (torch
    parity:
    it uses ``torch.randperm`` on the global generator)."""
    if tensor.ndimension() != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    if tensor.is_meta:
        return tensor
    if _torch_fallback(tensor, "sparse_", generator, sparsity=sparsity, std=std):
        return tensor
    _check_normal(std)
    rows, cols = tensor.shape
    num_zeros = math.ceil(sparsity * rows)
    _fill(tensor, "torch:normal", generator, mean=0.0, std=std)
    with torch.no_grad():
        for col_idx in range(cols):
            tensor[torch.randperm(rows)[:num_zeros], col_idx] = 0
    return tensor


_R = TypeVar("_R")


def _make_deprecate(meth: Callable[..., _R]) -> Callable[..., _R]:
    new_name = meth.__name__
    old_name = new_name[:-1]

    def deprecated_init(*args: Any, **kwargs: Any) -> _R:
        warnings.warn(f"`nn.init.{old_name}` is now deprecated in favor of `nn.init.{new_name}`.",
                      FutureWarning, stacklevel=2)
        return meth(*args, **kwargs)

    deprecated_init.__doc__ = f"{old_name}(...): deprecated, use :func:`{new_name}`."
    deprecated_init.__name__ = old_name
    return deprecated_init


uniform = _make_deprecate(uniform_)
normal = _make_deprecate(normal_)
constant = _make_deprecate(constant_)
eye = _make_deprecate(eye_)
dirac = _make_deprecate(dirac_)
xavier_uniform = _make_deprecate(xavier_uniform_)
xavier_normal = _make_deprecate(xavier_normal_)
kaiming_uniform = _make_deprecate(kaiming_uniform_)
kaiming_normal = _make_deprecate(kaiming_normal_)
orthogonal = _make_deprecate(orthogonal_)
sparse = _make_deprecate(sparse_)

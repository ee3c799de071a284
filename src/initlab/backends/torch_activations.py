"""torch activation modules and functions -> catalog activations (``nn.LeakyReLU(0.2)`` ->
``leaky_relu(0.2)``).

Known modules map to the catalog's exact numpy form with their parameters; any other module or callable is
wrapped so the catalog can evaluate it on float64 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..catalog import activations as acts
from ..catalog.activations import Activation

_SIMPLE: dict[type, str] = {
    nn.ReLU: "relu", nn.ReLU6: "relu6", nn.Tanh: "tanh", nn.Sigmoid: "sigmoid", nn.SELU: "selu",
    nn.SiLU: "silu", nn.Mish: "mish", nn.Hardswish: "hardswish", nn.Hardsigmoid: "hardsigmoid",
    nn.Softsign: "softsign", nn.Identity: "linear",
}
_FUNCTIONS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu6: "relu6", torch.tanh: "tanh", F.tanh: "tanh",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", F.selu: "selu", torch.selu: "selu", F.silu: "silu",
    F.mish: "mish", F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid", F.softsign: "softsign",
    F.gelu: "gelu", F.elu: "elu", F.leaky_relu: "leaky_relu", F.softplus: "softplus", F.hardtanh: "hardtanh",
    torch.Tensor.relu: "relu", torch.Tensor.tanh: "tanh", torch.Tensor.sigmoid: "sigmoid",
    F.relu_: "relu", torch.relu_: "relu", torch.tanh_: "tanh", torch.sigmoid_: "sigmoid",
    torch.Tensor.relu_: "relu", torch.Tensor.tanh_: "tanh", torch.Tensor.sigmoid_: "sigmoid",
}


def module_activation(obj: Any) -> Activation | None:
    """The catalog activation for a torch module or function, or None if ``obj`` is not a torch callable."""
    if isinstance(obj, nn.Module):
        for cls, name in _SIMPLE.items():
            if type(obj) is cls:
                return acts.activation(name)
        if isinstance(obj, nn.LeakyReLU):
            return acts.activation("leaky_relu", negative_slope=obj.negative_slope)
        if isinstance(obj, nn.ELU):
            return acts.activation("elu", alpha=obj.alpha)
        if isinstance(obj, nn.CELU):
            return acts.activation("celu", alpha=obj.alpha)
        if isinstance(obj, nn.GELU):
            return acts.activation("gelu_tanh" if obj.approximate == "tanh" else "gelu")
        if isinstance(obj, nn.Hardtanh) and (obj.min_val, obj.max_val) == (-1.0, 1.0):
            return acts.activation("hardtanh")
        if isinstance(obj, nn.Softplus) and obj.beta == 1:
            return acts.activation("softplus")
        if isinstance(obj, nn.PReLU) and obj.weight.numel() == 1 and obj.weight.device.type != "meta":
            return acts.activation("leaky_relu", negative_slope=float(obj.weight.detach().reshape(())))
        return _wrap(obj, type(obj).__name__)
    if obj in _FUNCTIONS if _hashable(obj) else False:
        return acts.activation(_FUNCTIONS[obj])
    return None


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


def _wrap(fn: Callable[[torch.Tensor], torch.Tensor], name: str) -> Activation:
    def numpy_fn(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return fn(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))).double().numpy()

    return Activation(name, numpy_fn)


if module_activation not in acts.ADAPTERS:
    acts.ADAPTERS.append(module_activation)

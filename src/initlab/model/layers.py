"""What initlab knows about module types and torch functions: layer kinds, parameter roles, fans, activations.

One table for discovery, planning and the "auto" scheme: ``layer_kind(module)`` says which kind of weight
layer a module is ("linear", "conv", "rnn", ...), ``param_specs(kind, module)`` gives each of its parameters'
role, layout, groups, gate blocks and stride, and ``function_category(func)`` sorts torch functions seen
during tracing into activations, layer ops on raw parameters, residual additions, concatenations and
shape-only ("transparent") ops."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backends.torch_activations import module_activation
from ..catalog import activations as acts
from ..catalog.activations import Activation
from ..catalog.fans import Fans, Layout, compute_fans

NORMS: tuple[type, ...] = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
)
TRANSFORMER_LAYERS: tuple[type, ...] = (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)
COMPOSITES: tuple[type, ...] = (
    *TRANSFORMER_LAYERS,
    nn.TransformerEncoder,
    nn.TransformerDecoder,
    nn.Transformer,
)
TRANSPARENT_MODULES: tuple[type, ...] = (
    nn.Dropout,
    nn.Dropout1d,
    nn.Dropout2d,
    nn.Dropout3d,
    nn.AlphaDropout,
    nn.FeatureAlphaDropout,
    nn.Flatten,
    nn.Unflatten,
    nn.Identity,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d,
    nn.AdaptiveMaxPool3d,
    nn.ZeroPad1d,
    nn.ZeroPad2d,
    nn.ZeroPad3d,
    nn.ReflectionPad1d,
    nn.ReflectionPad2d,
    nn.ReplicationPad1d,
    nn.ReplicationPad2d,
    nn.Upsample,
    nn.PixelShuffle,
    nn.PixelUnshuffle,
    nn.ChannelShuffle,
)
AVG_POOL_MODULES: tuple[type, ...] = (
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
)
RNN_CELLS: tuple[type, ...] = (nn.RNNCell, nn.LSTMCell, nn.GRUCell)


def is_hf_conv1d(module: nn.Module) -> bool:
    """HuggingFace ``Conv1D``: a Linear whose weight is stored ``(in, out)``."""
    w = getattr(module, "weight", None)
    return (
        type(module).__name__ == "Conv1D"
        and isinstance(w, torch.Tensor)
        and w.dim() == 2
        and getattr(module, "nf", None) == w.shape[1]
    )


def layer_kind(module: nn.Module) -> str | None:
    """The weight-layer kind of ``module``, or None when it is not a layer initlab initializes itself."""
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.Bilinear):
        return "bilinear"
    if isinstance(module, nn.modules.conv._ConvTransposeNd):
        return "conv_transpose"
    if isinstance(module, nn.modules.conv._ConvNd):
        return "conv"
    if isinstance(module, nn.Embedding):
        return "embedding"
    if isinstance(module, nn.EmbeddingBag):
        return "embedding_bag"
    if isinstance(module, nn.RNNBase | nn.RNNCellBase):
        return "rnn"
    if isinstance(module, nn.MultiheadAttention):
        return "attention"
    if isinstance(module, NORMS):
        return "norm"
    if is_hf_conv1d(module):
        return "hf_conv1d"
    return None


def is_leaf(module: nn.Module) -> bool:
    """Modules discovery treats as one node (it does not look inside)."""
    return (
        layer_kind(module) is not None
        or isinstance(module, COMPOSITES + TRANSPARENT_MODULES + AVG_POOL_MODULES)
        or module_act(module) is not None
        or isinstance(module, nn.PReLU)
    )


# ---- parameters --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParamSpec:
    """How one parameter of a layer is laid out: its role (profile key), layout and block structure."""

    role: str  # weight, bias, embedding, rnn_input, rnn_recurrent, rnn_bias, attention_in, ...
    layout: Layout = "torch"
    groups: int = 1
    blocks: int = 1
    stride: tuple[int, ...] | None = None
    fans_of: str | None = None  # bias-like: resolve with the fans of this sibling parameter

    def fans(self, shape: tuple[int, ...]) -> Fans | None:
        if len(shape) < 2:
            return None
        return compute_fans(shape, self.layout, groups=self.groups, blocks=self.blocks, stride=self.stride)


def _gates(module: nn.Module) -> int:
    mode = getattr(module, "mode", None) or type(module).__name__
    return 4 if "LSTM" in mode else 3 if "GRU" in mode else 1


def param_specs(kind: str, module: nn.Module) -> dict[str, ParamSpec]:
    """Local parameter name -> spec for a layer module of ``kind``."""
    if kind in ("linear", "bilinear"):
        return {"weight": ParamSpec("weight"), "bias": ParamSpec("bias", fans_of="weight")}
    if kind == "hf_conv1d":
        return {"weight": ParamSpec("weight", "in_out"), "bias": ParamSpec("bias", fans_of="weight")}
    if kind == "conv":
        groups = int(getattr(module, "groups", 1))
        return {"weight": ParamSpec("weight", groups=groups), "bias": ParamSpec("bias", fans_of="weight")}
    if kind == "conv_transpose":
        groups = int(getattr(module, "groups", 1))
        stride = tuple(int(s) for s in getattr(module, "stride", (1,)))
        return {
            "weight": ParamSpec("weight", "torch_transposed", groups=groups, stride=stride),
            "bias": ParamSpec("bias", fans_of="weight"),
        }
    if kind in ("embedding", "embedding_bag"):
        return {"weight": ParamSpec("embedding")}
    if kind == "norm":
        return {"weight": ParamSpec("norm_weight"), "bias": ParamSpec("norm_bias")}
    if kind == "attention":
        specs = {n: ParamSpec("attention_in") for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight")}
        specs["in_proj_weight"] = ParamSpec("attention_in", blocks=3)
        specs["in_proj_bias"] = ParamSpec("bias", blocks=3, fans_of="in_proj_weight")
        specs["bias_k"] = ParamSpec("bias")
        specs["bias_v"] = ParamSpec("bias")
        specs["out_proj.weight"] = ParamSpec("attention_out")
        specs["out_proj.bias"] = ParamSpec("bias", fans_of="out_proj.weight")
        return specs
    if kind == "rnn":
        g = _gates(module)
        specs = {}
        for name, _ in module.named_parameters(recurse=False):
            if name.startswith("weight_ih"):
                specs[name] = ParamSpec("rnn_input", blocks=g)
            elif name.startswith("weight_hh"):
                specs[name] = ParamSpec("rnn_recurrent", blocks=g)
            elif name.startswith("weight_hr"):
                specs[name] = ParamSpec("rnn_input")
            elif name.startswith("bias"):
                specs[name] = ParamSpec("rnn_bias", blocks=g, fans_of=name.replace("bias", "weight"))
        return specs
    return {}


def raw_spec(op: str) -> ParamSpec:
    """Spec of a raw parameter used as the weight of ``op`` (``x @ W`` stores W as (in, out))."""
    return ParamSpec("weight", "in_out") if op == "matmul_in_out" else ParamSpec("weight")


# ---- activations -------------------------------------------------------------------------------------------
def _elementwise(act: Activation) -> bool:
    x = np.linspace(-3.0, 3.0, 13)
    try:
        y = act(x)
        return bool(np.shape(y) == x.shape and np.allclose(act(x[::-1]), np.asarray(y)[::-1], equal_nan=True))
    except Exception:
        return False


_ACT_CACHE: dict[type, bool] = {}


def module_act(module: nn.Module) -> Activation | None:
    """The catalog activation of an activation module (known types, or a parameter-free custom module that
    acts elementwise), else None."""
    if layer_kind(module) is not None or isinstance(
        module, COMPOSITES + TRANSPARENT_MODULES + AVG_POOL_MODULES
    ):
        return None
    if isinstance(module, nn.Softmax | nn.LogSoftmax | nn.Softmin):
        return None
    known = module.__class__.__module__.startswith("torch.nn.modules.activation")
    if not known and (
        next(iter(module.children()), None) is not None
        or next(iter(module.parameters(recurse=False)), None) is not None
    ):
        return None
    act = module_activation(module)
    if act is None:
        return None
    if known and act.fn is not None and act.name in acts.activation_names():
        return act
    cls = type(module)
    if cls not in _ACT_CACHE:
        _ACT_CACHE[cls] = _elementwise(act)
    return act if _ACT_CACHE[cls] else None


def _arg(args: tuple[Any, ...], kwargs: dict[str, Any], index: int, key: str, default: Any) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(key, default)


def _num(v: Any, default: float) -> float:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else default


_ACT_FUNCS: dict[str, Callable[[tuple[Any, ...], dict[str, Any]], str | None]] = {
    "relu": lambda a, k: "relu",
    "relu_": lambda a, k: "relu",
    "relu6": lambda a, k: "relu6",
    "tanh": lambda a, k: "tanh",
    "tanh_": lambda a, k: "tanh",
    "sigmoid": lambda a, k: "sigmoid",
    "sigmoid_": lambda a, k: "sigmoid",
    "selu": lambda a, k: "selu",
    "selu_": lambda a, k: "selu",
    "silu": lambda a, k: "silu",
    "mish": lambda a, k: "mish",
    "hardswish": lambda a, k: "hardswish",
    "hardsigmoid": lambda a, k: "hardsigmoid",
    "softsign": lambda a, k: "softsign",
    "gelu": lambda a, k: "gelu_tanh" if _arg(a, k, 1, "approximate", "none") == "tanh" else "gelu",
    "elu": lambda a, k: f"elu({_num(_arg(a, k, 1, 'alpha', 1.0), 1.0)})",
    "elu_": lambda a, k: f"elu({_num(_arg(a, k, 1, 'alpha', 1.0), 1.0)})",
    "celu": lambda a, k: f"celu({_num(_arg(a, k, 1, 'alpha', 1.0), 1.0)})",
    "leaky_relu": lambda a, k: f"leaky_relu({_num(_arg(a, k, 1, 'negative_slope', 0.01), 0.01)})",
    "leaky_relu_": lambda a, k: f"leaky_relu({_num(_arg(a, k, 1, 'negative_slope', 0.01), 0.01)})",
    "softplus": lambda a, k: "softplus" if _num(_arg(a, k, 1, "beta", 1.0), 1.0) == 1.0 else None,
    "hardtanh": lambda a, k: (
        "hardtanh"
        if (_num(_arg(a, k, 1, "min_val", -1.0), -1.0), _num(_arg(a, k, 2, "max_val", 1.0), 1.0))
        == (-1.0, 1.0)
        else None
    ),
    "sin": lambda a, k: "sin",
}
ADD_NAMES = frozenset({"add", "__add__", "__radd__", "__iadd__", "add_"})
MUL_NAMES = frozenset({"mul", "__mul__", "__rmul__", "__imul__", "mul_", "div", "__truediv__", "div_"})
CAT_NAMES = frozenset({"cat", "concat", "concatenate", "stack"})
SOFTMAX_NAMES = frozenset({"softmax", "log_softmax", "softmin"})
AVG_POOL_NAMES = frozenset(
    {
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "mean",
    }
)
TRANSPARENT_NAMES = frozenset(
    {
        "view",
        "reshape",
        "flatten",
        "unflatten",
        "permute",
        "transpose",
        "t",
        "contiguous",
        "squeeze",
        "unsqueeze",
        "__getitem__",
        "getitem",
        "dropout",
        "dropout1d",
        "dropout2d",
        "dropout3d",
        "alpha_dropout",
        "feature_alpha_dropout",
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "adaptive_max_pool3d",
        "max_pool1d_with_indices",
        "max_pool2d_with_indices",
        "pad",
        "chunk",
        "split",
        "to",
        "float",
        "double",
        "half",
        "bfloat16",
        "type_as",
        "clone",
        "expand",
        "expand_as",
        "repeat",
        "narrow",
        "view_as",
        "reshape_as",
        "movedim",
        "swapaxes",
        "interpolate",
        "pixel_shuffle",
        "pixel_unshuffle",
        "unbind",
        "tensor_split",
        "split_with_sizes",
        "detach",
        "roll",
        "flip",
    }
)
LAYER_FUNCS: dict[str, str] = {
    "linear": "linear",
    "conv1d": "conv",
    "conv2d": "conv",
    "conv3d": "conv",
    "conv_transpose1d": "conv_transpose",
    "conv_transpose2d": "conv_transpose",
    "conv_transpose3d": "conv_transpose",
    "embedding": "embedding",
    "bilinear": "bilinear",
    "matmul": "matmul",
    "__matmul__": "matmul",
    "__rmatmul__": "matmul",
    "mm": "matmul",
    "addmm": "matmul",
    "bmm": "matmul",
}


def func_name(func: Any) -> str:
    if func in (operator.add, operator.iadd):
        return "add"
    if func in (operator.mul, operator.imul, operator.truediv):
        return "mul"
    if func is operator.getitem:
        return "getitem"
    if func is operator.matmul:
        return "matmul"
    name = getattr(func, "__name__", None) or str(func)
    return str(name)


def function_act(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """Catalog spec of a functional activation call, or None."""
    build = _ACT_FUNCS.get(name)
    return build(args, kwargs) if build is not None else None


def activation_spec(act: Activation) -> str:
    return act.spec if act.name in acts.activation_names() else act.name

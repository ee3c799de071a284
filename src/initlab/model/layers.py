"""What discovery knows about modules and torch functions besides the layer registry: which modules are
composites, shape-only or pooling, which are activations, and how torch functions seen during tracing sort
into activations, layer ops on raw parameters, additions, concatenations and shape-only ops.

Layer kinds, parameter roles and fans live in :mod:`._registry` (``layer_kind`` and ``param_specs`` here are
lookups into it)."""

from __future__ import annotations

import operator
import weakref
from typing import Any

import numpy as np
from torch import nn

from ..backends.torch_activations import function_activation, module_activation
from ..catalog import activations as acts
from ..catalog.activations import Activation
from ..catalog.fans import Layout
from . import _layer_types  # noqa: F401 - registers the built-in layer types
from ._registry import Kind, ParamSpec, layer_type

# built-in norm classes (the registry's "norm" type; trace hooks them to record norm inputs)
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
    nn.Unfold,  # im2col: entries copied (and zero-padded), so what positions share stays shared
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


def layer_kind(module: nn.Module) -> Kind | None:
    """The kind of ``module`` from the :mod:`._registry` (None: not a layer initlab initializes itself)."""
    t = layer_type(module)
    return t.kind if t is not None else None


def is_leaf(module: nn.Module) -> bool:
    """Modules discovery treats as one node (it does not look inside)."""
    return (
        layer_type(module) is not None
        or isinstance(module, COMPOSITES + TRANSPARENT_MODULES + AVG_POOL_MODULES)
        or module_act(module) is not None
        or isinstance(module, nn.PReLU)
    )


def param_specs(kind: str | None, module: nn.Module) -> dict[str, ParamSpec]:
    """Local parameter name -> spec for a layer module (its registered type decides; ``kind`` is ignored)."""
    t = layer_type(module)
    return t.specs(module) if t is not None else {}


def raw_spec(op: str) -> ParamSpec:
    """Spec of a raw parameter used as the weight of ``op`` (``x @ W`` stores W as (in, out)); a 3-D weight
    in a batched product holds one matrix per leading index (fused experts), fans per matrix."""
    layout: Layout = "in_out" if op == "matmul_in_out" else "torch"
    return ParamSpec("weight", layout, batched=True)


# ---- activations -------------------------------------------------------------------------------------------
def _elementwise(module: nn.Module, act: Activation) -> bool:
    """Whether a parameter-free custom module acts entry by entry, asked of it in eval mode: dropout and
    stochastic depth are random masks in training, not the function. The answer is kept per class, and
    asked of a training instance with a drop rate it was "no" (its masks differ between two calls), so
    whichever model came first in a process decided for every later one: NextViT-S read timm's ``DropPath``
    as a traced random mask (159 of 171 layers within 3x) after NesT, and as the identity alone (171)."""
    x = np.linspace(-3.0, 3.0, 13)
    training = module.training
    module.training = False
    try:
        y = act(x)
        return bool(np.shape(y) == x.shape and np.allclose(act(x[::-1]), np.asarray(y)[::-1], equal_nan=True))
    except Exception:
        return False
    finally:
        module.training = training


_ACT_CACHE: weakref.WeakKeyDictionary[type, bool] = weakref.WeakKeyDictionary()  # (keeps no class alive)


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
        _ACT_CACHE[cls] = _elementwise(module, act)
    return act if _ACT_CACHE[cls] else None


ADD_NAMES = frozenset({"add", "__add__", "__radd__", "__iadd__", "add_"})
DIV_NAMES = frozenset({"div", "__truediv__", "div_"})  # products whose second factor divides
MUL_NAMES = frozenset({"mul", "__mul__", "__rmul__", "__imul__", "mul_"}) | DIV_NAMES
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
        "unfold",
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
    """Catalog spec of a functional activation call, or None (the catalog's table, via the torch backend)."""
    act = function_activation(name, args, kwargs)
    return act.spec if act is not None else None


def activation_spec(act: Activation) -> str:
    return act.spec if act.name in acts.activation_names() else act.name

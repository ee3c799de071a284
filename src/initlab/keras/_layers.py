"""Keras layer kinds -> shadow torch layers, and how each drawn torch tensor becomes a Keras variable."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
from torch import nn

from ..frameworks import _layout as L
from ..frameworks._shadow import Label, SelfAttention, ShadowBuilder, activation_module

Convert = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class Write:
    """One Keras variable and how to make its value from the drawn shadow tensors ``needs``."""

    variable: Any
    needs: tuple[str, ...]
    convert: Convert


@dataclass
class Ctx:
    builder: ShadowBuilder = field(default_factory=ShadowBuilder)
    writes: list[Write] = field(default_factory=list)
    labels: dict[str, Label] = field(default_factory=dict)  # shadow name -> Keras variable, layer, shape
    skipped: list[str] = field(default_factory=list)  # weighted layers initlab does not know
    notes: list[str] = field(default_factory=list)

    def write(self, layer: Any, var: Any, needs: tuple[str, ...], convert: Convert) -> None:
        self.writes.append(Write(var, needs, convert))
        one = len(needs) == 1 and needs[0] not in self.labels
        for i, n in enumerate(needs):
            part = "" if len(needs) == 1 else f" ({('input', 'recurrent')[i]} part)"
            if n in self.labels:  # one shadow tensor to several variables (packed q/k/v)
                path, cls, _ = self.labels[n]
                self.labels[n] = (f"{path}+{var.path.rsplit('/', 2)[-2]}", cls, None)
            else:
                self.labels[n] = (var.path + part, type(layer).__name__, tuple(var.shape) if one else None)


def activation_of(fn: Any) -> nn.Module | None:
    """The torch module of a Keras activation function or name; unknown -> KeyError."""
    name = fn if isinstance(fn, str) else keras.activations.serialize(fn)
    if isinstance(name, dict):
        name = name.get("config", name.get("class_name", "?"))
    return activation_module(str(name))


def _act(ctx: Ctx, layer: Any, node: int) -> int:
    fn = getattr(layer, "activation", None)
    if fn is None:
        return node
    try:
        return ctx.builder.act(activation_of(fn), node)
    except KeyError:
        ctx.notes.append(f"{layer.name}: unknown activation {fn!r} treated as linear")
        return node


def dense(ctx: Ctx, layer: Any, src: int) -> int:
    n_in, n_out = layer.kernel.shape
    node, p = ctx.builder.layer(lambda: nn.Linear(n_in, n_out, bias=layer.use_bias), src)
    ctx.write(layer, layer.kernel, (f"{p}.weight",), lambda d: L.dense(d[f"{p}.weight"]))
    if layer.use_bias:
        ctx.write(layer, layer.bias, (f"{p}.bias",), lambda d: d[f"{p}.bias"])
    return _act(ctx, layer, node)


_CONV: dict[int, Any] = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_CONVT: dict[int, Any] = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def _take(name: str) -> Convert:
    return lambda d: d[name]


def conv(ctx: Ctx, layer: Any, src: int) -> int:
    shape = tuple(layer.kernel.shape)
    k, rank = shape[:-2], len(shape) - 2
    if isinstance(layer, keras.layers.DepthwiseConv2D | keras.layers.DepthwiseConv1D):
        c_in, mult = shape[-2:]
        node, p = ctx.builder.layer(
            lambda: _CONV[rank](c_in, c_in * mult, k, groups=c_in, bias=layer.use_bias), src)
        ctx.write(layer, layer.kernel, (f"{p}.weight",), lambda d: L.depthwise(d[f"{p}.weight"], mult))
    elif "Transpose" in type(layer).__name__:
        c_out, c_in = shape[-2:]
        node, p = ctx.builder.layer(
            lambda: _CONVT[rank](c_in, c_out, k, stride=layer.strides, bias=layer.use_bias), src)
        ctx.write(layer, layer.kernel, (f"{p}.weight",), lambda d: L.conv(d[f"{p}.weight"]))
    else:
        groups = int(getattr(layer, "groups", 1) or 1)
        c_in, c_out = shape[-2] * groups, shape[-1]
        node, p = ctx.builder.layer(lambda: _CONV[rank](c_in, c_out, k, groups=groups, bias=layer.use_bias),
                                    src)
        ctx.write(layer, layer.kernel, (f"{p}.weight",), lambda d: L.conv(d[f"{p}.weight"]))
    if layer.use_bias:
        ctx.write(layer, layer.bias, (f"{p}.bias",), lambda d: d[f"{p}.bias"])
    return _act(ctx, layer, node)


def embedding(ctx: Ctx, layer: Any, src: int) -> int:
    vocab, dim = layer.embeddings.shape
    node, p = ctx.builder.layer(lambda: nn.Embedding(vocab, dim), src)
    ctx.write(layer, layer.embeddings, (f"{p}.weight",), lambda d: d[f"{p}.weight"])
    return node


def norm(ctx: Ctx, layer: Any, src: int) -> int:
    gamma: Any = getattr(layer, "gamma", None)
    beta: Any = getattr(layer, "beta", None)
    dim = (gamma if gamma is not None else beta).shape[0]
    batch = isinstance(layer, keras.layers.BatchNormalization)
    node, p = ctx.builder.layer(lambda: nn.BatchNorm1d(dim) if batch else nn.LayerNorm(dim), src)
    for var, attr in ((gamma, "weight"), (beta, "bias")):
        if var is not None:
            ctx.write(layer, var, (f"{p}.{attr}",), _take(f"{p}.{attr}"))
    return node


# torch gate blocks (dim 0) in Keras' order: LSTM i,f,g,o == i,f,c,o; GRU r,z,n -> z,r,h
_RNN = {"LSTM": (nn.LSTM, (0, 1, 2, 3)), "GRU": (nn.GRU, (1, 0, 2)), "SimpleRNN": (nn.RNN, (0,))}


def recurrent(ctx: Ctx, layer: Any, src: int) -> int:
    cell = layer.cell
    kind = type(layer).__name__
    torch_cls, order = _RNN[kind]
    n_in, units = cell.kernel.shape[0], cell.units
    extra = {}
    if kind == "SimpleRNN":
        extra["nonlinearity"] = "relu" if activation_of(cell.activation).__class__ is nn.ReLU else "tanh"
    elif activation_of(cell.activation).__class__ is not nn.Tanh:
        ctx.notes.append(f"{layer.name}: planned for a tanh cell; its activation is {cell.activation!r}")
    node, p = ctx.builder.layer(lambda: torch_cls(n_in, units, bias=cell.use_bias, batch_first=True, **extra),
                                src, recurrent=True)
    ih, hh, bih, bhh = (f"{p}.{a}_l0" for a in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    ctx.write(layer, cell.kernel, (ih,), lambda d: L.dense(L.gates(d[ih], order)))
    ctx.write(layer, cell.recurrent_kernel, (hh,), lambda d: L.dense(L.gates(d[hh], order)))
    if cell.use_bias:
        if tuple(cell.bias.shape) == (2, len(order) * units):  # GRU reset_after: input and recurrent biases
            ctx.write(layer, cell.bias, (bih, bhh),
                      lambda d: np.stack([L.gates(d[bih], order), L.gates(d[bhh], order)]))
        else:  # one bias: torch's two biases summed
            ctx.write(layer, cell.bias, (bih, bhh), lambda d: L.gates(d[bih] + d[bhh], order))
    return node


def attention(ctx: Ctx, layer: Any, src: int) -> int:
    q, k, v, o = layer._query_dense, layer._key_dense, layer._value_dense, layer._output_dense
    dim, heads, kd = q.kernel.shape
    square = {tuple(x.kernel.shape) for x in (q, k, v)} == {(dim, heads, kd)} and heads * kd == dim \
        and tuple(o.kernel.shape) == (heads, kd, dim)
    if not square:
        raise _Unsupported("MultiHeadAttention with key_dim * num_heads != the model width")
    bias = layer._use_bias
    node, p = ctx.builder.layer(lambda: SelfAttention(dim, heads, bias), src)
    w, b = f"{p}.attn.in_proj_weight", f"{p}.attn.in_proj_bias"
    for i, dense_ in enumerate((q, k, v)):
        ctx.write(layer, dense_.kernel, (w,), _qkv(w, i, (dim, heads, kd)))
        if bias:
            ctx.write(layer, dense_.bias, (b,), _qkv(b, i, (dim, heads, kd)))
    ow, ob = f"{p}.attn.out_proj.weight", f"{p}.attn.out_proj.bias"
    ctx.write(layer, o.kernel, (ow,), lambda d: L.dense(d[ow]).reshape(heads, kd, dim))
    if bias:
        ctx.write(layer, o.bias, (ob,), lambda d: d[ob])
    return node


def _qkv(name: str, i: int, dims: tuple[int, int, int]) -> Convert:
    """Block ``i`` of a packed (3E, E) in_proj weight as a Keras (E, heads, head_dim) kernel, or of the
    (3E,) bias as (heads, head_dim)."""
    dim, heads, kd = dims

    def convert(d: dict[str, np.ndarray]) -> np.ndarray:
        block = d[name][i * dim:(i + 1) * dim]
        return L.dense(block).reshape(dim, heads, kd) if block.ndim == 2 else block.reshape(heads, kd)
    return convert


class _Unsupported(Exception):
    pass


def activation_layer(ctx: Ctx, layer: Any, src: int) -> int:
    if isinstance(layer, keras.layers.LeakyReLU):
        return ctx.builder.act(activation_module("leaky_relu", float(layer.negative_slope)), src)
    if isinstance(layer, keras.layers.Activation):
        return _act(ctx, layer, src)
    name = {"ReLU": "relu", "ELU": "elu", "Softmax": "softmax"}[type(layer).__name__]
    return ctx.builder.act(activation_module(name), src)


HANDLERS: dict[str, Callable[[Ctx, Any, int], int]] = {
    "Dense": dense, "Embedding": embedding, "LayerNormalization": norm, "BatchNormalization": norm,
    "LSTM": recurrent, "GRU": recurrent, "SimpleRNN": recurrent, "MultiHeadAttention": attention,
    "Activation": activation_layer, "ReLU": activation_layer, "LeakyReLU": activation_layer,
    "ELU": activation_layer, "Softmax": activation_layer,
    **{f"Conv{n}D": conv for n in (1, 2, 3)}, **{f"Conv{n}DTranspose": conv for n in (1, 2, 3)},
    "DepthwiseConv1D": conv, "DepthwiseConv2D": conv,
}

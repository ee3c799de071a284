"""Flax layers that are one torch layer but not a plain kernel: ConvTranspose, an LSTM cell's eight gate
denses (one ``nn.LSTM``), an attention block's query/key/value/out (one ``nn.MultiheadAttention``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

from ..frameworks import _layout as L
from ..frameworks._shadow import SelfAttention
from ._inventory import LSTM_LINEN, LSTM_NNX, MHA, Module
from ._model import Ctx

_CONVT: dict[int, Any] = {3: nn.ConvTranspose1d, 4: nn.ConvTranspose2d, 5: nn.ConvTranspose3d}


class Unsupported(Exception):
    """A composite module whose shapes have no torch twin: left as it is, with the reason."""


def conv_transpose(ctx: Ctx, kind: str, path: str, leaves: dict[str, Any], src: int,
                   stride: tuple[int, ...]) -> int:
    """``stride``: the traced input dilation (torch's planned fans count it)."""
    kernel = leaves["kernel"]
    shape = tuple(kernel[0]().shape)  # (*k, in, out)
    if len(shape) not in _CONVT:
        raise Unsupported(f"a ConvTranspose kernel of shape {shape}")
    bias = "bias" in leaves
    node, p = ctx.builder.layer(
        lambda: _CONVT[len(shape)](shape[-2], shape[-1], shape[:-2], stride=stride, bias=bias), src)
    ctx.slot(f"{path}/kernel", kind, kernel, f"{p}.weight", L.conv_transpose)
    if bias:
        ctx.slot(f"{path}/bias", kind, leaves["bias"], f"{p}.bias")
    return node


def _child(modules: dict[str, Module], path: str, name: str) -> Module:
    return modules[f"{path}/{name}" if path else name]


def _block(g: int, hidden: int, dense: bool) -> Callable[..., np.ndarray]:
    """Gate ``g`` (torch's order i, f, g, o, which is Flax's ii/if/ig/io) of a drawn torch LSTM tensor."""
    def convert(*ws: np.ndarray) -> np.ndarray:
        block = sum(w[g * hidden:(g + 1) * hidden] for w in ws)
        return L.dense(np.asarray(block)) if dense else np.asarray(block)
    return convert


def lstm(ctx: Ctx, path: str, modules: dict[str, Module], src: int) -> int:
    names = LSTM_NNX if _child_exists(modules, path, "if_") else LSTM_LINEN
    kids = [_child(modules, path, n) for n in names]
    n_in, hidden = kids[0].leaves["kernel"][0]().shape
    node, p = ctx.builder.layer(lambda: nn.LSTM(n_in, hidden, batch_first=True), src, recurrent=True)
    ih, hh, bih, bhh = (f"{p}.{a}_l0" for a in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
    for g in range(4):
        x, h = kids[g], kids[4 + g]
        ctx.slot(f"{x.path}/kernel", "LSTMCell", x.leaves["kernel"], ih, _block(g, hidden, True))
        ctx.slot(f"{h.path}/kernel", "LSTMCell", h.leaves["kernel"], hh, _block(g, hidden, True))
        if "bias" in x.leaves:  # a bias on both sides: torch's two biases; one side: their sum
            ctx.slot(f"{x.path}/bias", "LSTMCell", x.leaves["bias"], bih, _block(g, hidden, False))
        if "bias" in h.leaves:
            needs = (bhh,) if "bias" in x.leaves else (bih, bhh)
            ctx.slot(f"{h.path}/bias", "LSTMCell", h.leaves["bias"], needs, _block(g, hidden, False))
    both = "bias" in kids[0].leaves  # else torch's two biases are summed into the hidden side's
    for need, side in ((ih, "i"), (hh, "h"), (bih, "i" if both else "h"), (bhh, "h")):
        what = "kernel" if need in (ih, hh) else "bias"
        ctx.labels[need] = (f"{path + '/' if path else ''}{side}{{i,f,g,o}}/{what}", "LSTMCell", None)
    return node


def _child_exists(modules: dict[str, Module], path: str, name: str) -> bool:
    return (f"{path}/{name}" if path else name) in modules


def attention(ctx: Ctx, path: str, modules: dict[str, Module], src: int) -> int:
    q, k, v, o = (_child(modules, path, n) for n in MHA)
    dim, heads, kd = q.leaves["kernel"][0]().shape
    shapes = {tuple(m.leaves["kernel"][0]().shape) for m in (q, k, v)}
    if shapes != {(dim, heads, kd)} or heads * kd != dim or \
            tuple(o.leaves["kernel"][0]().shape) != (heads, kd, dim):
        raise Unsupported("attention whose qkv_features != the model width")
    bias = "bias" in q.leaves
    node, p = ctx.builder.layer(lambda: SelfAttention(dim, heads, bias), src)
    w, b, ow, ob = f"{p}.attn.in_proj_weight", f"{p}.attn.in_proj_bias", f"{p}.attn.out_proj.weight", \
        f"{p}.attn.out_proj.bias"
    for i, m in enumerate((q, k, v)):
        ctx.slot(f"{m.path}/kernel", "MultiHeadAttention", m.leaves["kernel"], w, _qkv(i, heads))
        if bias:
            ctx.slot(f"{m.path}/bias", "MultiHeadAttention", m.leaves["bias"], b, _qkv(i, heads))
    ctx.slot(f"{o.path}/kernel", "MultiHeadAttention", o.leaves["kernel"], ow,
             lambda x: L.dense(x).reshape(heads, kd, dim))
    if bias:
        ctx.slot(f"{o.path}/bias", "MultiHeadAttention", o.leaves["bias"], ob)
    base = path + "/" if path else ""
    ctx.labels[w] = (f"{base}{{query,key,value}}/kernel", "MultiHeadAttention", None)
    if bias:
        ctx.labels[b] = (f"{base}{{query,key,value}}/bias", "MultiHeadAttention", None)
    return node


def _qkv(i: int, heads: int) -> Callable[[np.ndarray], np.ndarray]:
    return lambda w: L.qkv(w, i, heads)

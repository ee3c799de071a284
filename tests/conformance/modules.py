"""Profile x module cases: the real framework's layer, and the torch module initlab initializes in its place.

Each reference builder returns ``{torch parameter name: array in torch's layout}`` for one seed; a key
``"a+b"`` is the sum of two torch parameters (Keras/Flax have one RNN bias where torch has two)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from . import frameworks as fw

Ref = Callable[[int], dict[str, np.ndarray]]


@dataclass(frozen=True)
class ModuleCase:
    profile: str
    name: str
    make: Callable[[], nn.Module]
    ref: Ref
    needs: str = "torch"


def torch_ref(make: Callable[[], nn.Module]) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            m = make()
        return {n: p.detach().numpy().copy() for n, p in m.named_parameters()}

    return ref


# ---- keras -------------------------------------------------------------------------------------------------
def _keras_build(layer: Any, shape: tuple[int | None, ...], seed: int) -> dict[str, np.ndarray]:
    keras = fw.need("keras")
    state = random.getstate(), np.random.get_state()
    try:
        keras.utils.set_random_seed(seed)
        layer.build(shape)
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
    return {w.path.split("/")[-1]: np.asarray(keras.ops.convert_to_numpy(w)) for w in layer.weights}


def _to_torch_conv(k: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(k, (-1, -2), (0, 1)))


def keras_dense(units: int, n_in: int) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        w = _keras_build(fw.need("keras").layers.Dense(units), (None, n_in), seed)
        return {"weight": w["kernel"].T, "bias": w["bias"]}

    return ref


def keras_conv(cls: str, n_in: int, spatial: int, **kw: Any) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        layer = getattr(fw.need("keras").layers, cls)(**kw)
        w = _keras_build(layer, (None, *([8] * spatial), n_in), seed)
        if cls.startswith("Depthwise"):
            k = w["kernel"]  # (*k, in, multiplier) -> (in * multiplier, 1, *k)
            out = np.moveaxis(k, (-2, -1), (0, 1)).reshape(-1, 1, *k.shape[:-2])
            return {"weight": out, "bias": w["bias"]}
        # Conv*D (*k, in, out) -> (out, in, *k); Conv*DTranspose (*k, out, in) -> (in, out, *k): one move
        return {"weight": _to_torch_conv(w["kernel"]), "bias": w["bias"]}

    return ref


def keras_rnn(cls: str, units: int, n_in: int) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        w = _keras_build(getattr(fw.need("keras").layers, cls)(units).cell, (None, n_in), seed)
        bias = w["bias"].reshape(-1, w["kernel"].shape[1])
        total = bias.sum(0)
        return {
            "weight_ih_l0": w["kernel"].T,
            "weight_hh_l0": w["recurrent_kernel"].T,
            "bias_ih_l0+bias_hh_l0": total,
        }

    return ref


def keras_mha(embed: int, heads: int) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        keras = fw.need("keras")
        layer = keras.layers.MultiHeadAttention(heads, embed // heads)
        state = random.getstate(), np.random.get_state()
        try:
            keras.utils.set_random_seed(seed)
            layer.build((None, 4, embed), (None, 4, embed))
        finally:
            random.setstate(state[0])
            np.random.set_state(state[1])
        conv = keras.ops.convert_to_numpy
        q, k, v, o = (layer._query_dense, layer._key_dense, layer._value_dense, layer._output_dense)
        ins = [np.asarray(conv(d.kernel)).reshape(embed, embed).T for d in (q, k, v)]
        bias = [np.asarray(conv(d.bias)).reshape(-1) for d in (q, k, v)]
        return {
            "in_proj_weight": np.concatenate(ins),
            "in_proj_bias": np.concatenate(bias),
            "out_proj.weight": np.asarray(conv(o.kernel)).reshape(embed, embed).T,
            "out_proj.bias": np.asarray(conv(o.bias)),
        }

    return ref


def keras_simple(cls: str, n_in: int, mapping: dict[str, str], **kw: Any) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        w = _keras_build(getattr(fw.need("keras").layers, cls)(**kw), (None, n_in), seed)
        return {t: w[k].reshape(-1) for t, k in mapping.items()}

    return ref


# ---- flax --------------------------------------------------------------------------------------------------
def _flax_params(module: Any, shape: tuple[int, ...], seed: int, dtype: str = "float32") -> dict[str, Any]:
    jax = fw.need("jax")
    variables = module.init(jax.random.key(seed), jax.numpy.zeros(shape, dtype))
    return jax.tree_util.tree_map(np.asarray, dict(variables["params"]))


def flax_dense(units: int, n_in: int) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        p = _flax_params(fw.need("flax.linen").Dense(units), (1, n_in), seed)
        return {"weight": p["kernel"].T, "bias": p["bias"]}

    return ref


def flax_conv(n_in: int, spatial: int, transposed: bool = False, **kw: Any) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        linen = fw.need("flax.linen")
        module = linen.ConvTranspose(**kw) if transposed else linen.Conv(**kw)
        p = _flax_params(module, (1, *([8] * spatial), n_in), seed)
        k = p["kernel"]
        weight = np.ascontiguousarray(np.moveaxis(k, (-2, -1), (0, 1))) if transposed else _to_torch_conv(k)
        return {"weight": weight, "bias": p["bias"]}

    return ref


def flax_rnn(cls: str, units: int, n_in: int, gates: tuple[str, ...]) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        jax = fw.need("jax")
        cell = getattr(fw.need("flax.linen"), cls)(units)
        x = jax.numpy.zeros((1, n_in))
        carry = cell.initialize_carry(jax.random.key(0), x.shape)
        p = jax.tree_util.tree_map(np.asarray, dict(cell.init(jax.random.key(seed), carry, x)["params"]))

        def bias(name: str) -> np.ndarray:
            return p[name]["bias"] if "bias" in p[name] else np.zeros(units, np.float32)

        return {
            "weight_ih_l0": np.concatenate([p[f"i{g}"]["kernel"].T for g in gates]),
            "weight_hh_l0": np.concatenate([p[f"h{g}"]["kernel"].T for g in gates]),
            "bias_ih_l0+bias_hh_l0": np.concatenate([bias(f"i{g}") + bias(f"h{g}") for g in gates]),
        }

    return ref


def flax_mha(embed: int, heads: int) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        linen = fw.need("flax.linen")
        p = _flax_params(linen.MultiHeadDotProductAttention(heads, qkv_features=embed), (1, 4, embed), seed)
        ins = [p[n]["kernel"].reshape(embed, embed).T for n in ("query", "key", "value")]
        return {
            "in_proj_weight": np.concatenate(ins),
            "in_proj_bias": np.concatenate([p[n]["bias"].reshape(-1) for n in ("query", "key", "value")]),
            "out_proj.weight": p["out"]["kernel"].reshape(embed, embed).T,
            "out_proj.bias": p["out"]["bias"],
        }

    return ref


def flax_simple(cls: str, n_in: int, mapping: dict[str, str], **kw: Any) -> Ref:
    def ref(seed: int) -> dict[str, np.ndarray]:
        dtype = "int32" if cls == "Embed" else "float32"
        p = _flax_params(getattr(fw.need("flax.linen"), cls)(**kw), (1, n_in), seed, dtype)
        return {t: np.asarray(p[k]).reshape(-1) for t, k in mapping.items()}

    return ref


# ---- the table ---------------------------------------------------------------------------------------------
def _transformer() -> nn.Module:
    return nn.Transformer(64, 4, 1, 1, 128)


TORCH_MODULES: list[tuple[str, Callable[[], nn.Module]]] = [
    ("Linear", lambda: nn.Linear(256, 384)),
    ("Conv1d", lambda: nn.Conv1d(64, 128, 5)),
    ("Conv2d", lambda: nn.Conv2d(64, 128, 3)),
    ("Conv3d", lambda: nn.Conv3d(16, 32, 3)),
    ("Conv2d groups=4", lambda: nn.Conv2d(64, 128, 3, groups=4)),
    ("Conv2d depthwise", lambda: nn.Conv2d(64, 128, 3, groups=64)),
    ("ConvTranspose1d k4 s4", lambda: nn.ConvTranspose1d(64, 128, 4, stride=4)),
    ("ConvTranspose2d k3 s2", lambda: nn.ConvTranspose2d(64, 128, 3, stride=2)),
    ("ConvTranspose2d k4 s2 g2", lambda: nn.ConvTranspose2d(64, 128, 4, stride=2, groups=2)),
    ("Embedding", lambda: nn.Embedding(1000, 64, padding_idx=0)),
    ("LSTM", lambda: nn.LSTM(64, 128)),
    ("LSTM bidirectional 2 layers", lambda: nn.LSTM(64, 64, 2, bidirectional=True)),
    ("LSTM proj_size", lambda: nn.LSTM(64, 256, proj_size=128)),
    ("GRU", lambda: nn.GRU(64, 128)),
    ("RNN", lambda: nn.RNN(64, 128)),
    ("MultiheadAttention", lambda: nn.MultiheadAttention(128, 4)),
    ("MultiheadAttention kdim/vdim", lambda: nn.MultiheadAttention(128, 4, kdim=64, vdim=32)),
    ("LayerNorm", lambda: nn.LayerNorm(256)),
    ("BatchNorm2d", lambda: nn.BatchNorm2d(64)),
    ("PReLU", lambda: nn.PReLU()),
    ("Bilinear", lambda: nn.Bilinear(64, 32, 128)),
    ("Transformer", _transformer),
    ("TransformerEncoderLayer", lambda: nn.TransformerEncoderLayer(64, 4, 128)),
]

KERAS_MODULES: list[tuple[str, Callable[[], nn.Module], Ref]] = [
    ("Linear", lambda: nn.Linear(256, 384), keras_dense(384, 256)),
    ("Conv1d", lambda: nn.Conv1d(64, 128, 5), keras_conv("Conv1D", 64, 1, filters=128, kernel_size=5)),
    ("Conv2d", lambda: nn.Conv2d(64, 128, 3), keras_conv("Conv2D", 64, 2, filters=128, kernel_size=3)),
    ("Conv3d", lambda: nn.Conv3d(16, 32, 3), keras_conv("Conv3D", 16, 3, filters=32, kernel_size=3)),
    (
        "Conv2d groups=4",
        lambda: nn.Conv2d(64, 128, 3, groups=4),
        keras_conv("Conv2D", 64, 2, filters=128, kernel_size=3, groups=4),
    ),
    (
        "Conv2d depthwise",
        lambda: nn.Conv2d(64, 128, 3, groups=64),
        keras_conv("DepthwiseConv2D", 64, 2, kernel_size=3, depth_multiplier=2),
    ),
    (
        "ConvTranspose2d k3 s2",
        lambda: nn.ConvTranspose2d(64, 128, 3, stride=2),
        keras_conv("Conv2DTranspose", 64, 2, filters=128, kernel_size=3, strides=2),
    ),
    (
        "ConvTranspose1d k4 s4",
        lambda: nn.ConvTranspose1d(64, 128, 4, stride=4),
        keras_conv("Conv1DTranspose", 64, 1, filters=128, kernel_size=4, strides=4),
    ),
    (
        "Embedding",
        lambda: nn.Embedding(1000, 64),
        keras_simple("Embedding", 1, {"weight": "embeddings"}, input_dim=1000, output_dim=64),
    ),
    ("LSTM", lambda: nn.LSTM(64, 128), keras_rnn("LSTM", 128, 64)),
    ("GRU", lambda: nn.GRU(64, 128), keras_rnn("GRU", 128, 64)),
    ("RNN", lambda: nn.RNN(64, 128), keras_rnn("SimpleRNN", 128, 64)),
    ("MultiheadAttention", lambda: nn.MultiheadAttention(128, 4), keras_mha(128, 4)),
    (
        "LayerNorm",
        lambda: nn.LayerNorm(256),
        keras_simple("LayerNormalization", 256, {"weight": "gamma", "bias": "beta"}),
    ),
    (
        "BatchNorm1d",
        lambda: nn.BatchNorm1d(64),
        keras_simple("BatchNormalization", 64, {"weight": "gamma", "bias": "beta"}),
    ),
    ("PReLU", lambda: nn.PReLU(64), keras_simple("PReLU", 64, {"weight": "alpha"})),
]

FLAX_MODULES: list[tuple[str, Callable[[], nn.Module], Ref]] = [
    ("Linear", lambda: nn.Linear(256, 384), flax_dense(384, 256)),
    (
        "Conv1d",
        lambda: nn.Conv1d(64, 128, 5),
        flax_conv(64, 1, features=128, kernel_size=(5,), padding="VALID"),
    ),
    ("Conv2d", lambda: nn.Conv2d(64, 128, 3), flax_conv(64, 2, features=128, kernel_size=(3, 3))),
    ("Conv3d", lambda: nn.Conv3d(16, 32, 3), flax_conv(16, 3, features=32, kernel_size=(3, 3, 3))),
    (
        "Conv2d groups=4",
        lambda: nn.Conv2d(64, 128, 3, groups=4),
        flax_conv(64, 2, features=128, kernel_size=(3, 3), feature_group_count=4),
    ),
    (
        "Conv2d depthwise",
        lambda: nn.Conv2d(64, 128, 3, groups=64),
        flax_conv(64, 2, features=128, kernel_size=(3, 3), feature_group_count=64),
    ),
    (
        "ConvTranspose2d k3 s2",
        lambda: nn.ConvTranspose2d(64, 128, 3, stride=2),
        flax_conv(64, 2, True, features=128, kernel_size=(3, 3), strides=(2, 2)),
    ),
    (
        "ConvTranspose1d k4 s4",
        lambda: nn.ConvTranspose1d(64, 128, 4, stride=4),
        flax_conv(64, 1, True, features=128, kernel_size=(4,), strides=(4,)),
    ),
    (
        "Embedding",
        lambda: nn.Embedding(1000, 64),
        flax_simple("Embed", 1, {"weight": "embedding"}, num_embeddings=1000, features=64),
    ),
    ("LSTM", lambda: nn.LSTM(64, 128), flax_rnn("LSTMCell", 128, 64, ("i", "f", "g", "o"))),
    ("GRU", lambda: nn.GRU(64, 128), flax_rnn("GRUCell", 128, 64, ("r", "z", "n"))),
    ("MultiheadAttention", lambda: nn.MultiheadAttention(128, 4), flax_mha(128, 4)),
    (
        "LayerNorm",
        lambda: nn.LayerNorm(256),
        flax_simple("LayerNorm", 256, {"weight": "scale", "bias": "bias"}),
    ),
    ("PReLU", lambda: nn.PReLU(), flax_simple("PReLU", 4, {"weight": "negative_slope"})),
]

CASES: list[ModuleCase] = [
    *[ModuleCase("torch:default", n, m, torch_ref(m)) for n, m in TORCH_MODULES],
    *[ModuleCase("keras:default", n, m, r, "keras") for n, m, r in KERAS_MODULES],
    *[ModuleCase("flax:default", n, m, r, "flax.linen") for n, m, r in FLAX_MODULES],
]


# ---- model families (timm, transformers): the model's own init against the profile -------------------------
def _timm_vit(**kw: Any) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        from . import _shim

        _shim.install()
        vit = fw.need("timm.models.vision_transformer")
        return vit.VisionTransformer(
            img_size=32, patch_size=8, embed_dim=64, depth=3, num_heads=4, num_classes=10, **kw
        )

    return make


def _hf_vit() -> nn.Module:
    from . import _shim

    _shim.install()  # transformers' ViT imports torchvision too: it must not depend on timm:vit running first
    tf = fw.need("transformers")
    config = tf.ViTConfig(
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        image_size=32,
        patch_size=8,
    )
    return tf.ViTModel(config, use_mask_token=True)


MODEL_CASES: list[ModuleCase] = [
    ModuleCase(
        "timm:vit",
        "VisionTransformer reg_tokens=2",
        _timm_vit(reg_tokens=2),
        torch_ref(_timm_vit(reg_tokens=2)),
        "torch",
    ),
    ModuleCase(
        "timm:vit(fix_init=True)",
        "VisionTransformer fix_init",
        _timm_vit(fix_init=True),
        torch_ref(_timm_vit(fix_init=True)),
        "torch",
    ),
    ModuleCase("hf:vit", "ViTModel", _hf_vit, torch_ref(_hf_vit), "transformers"),
]
CASES += MODEL_CASES

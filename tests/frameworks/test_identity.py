"""The same weights in PyTorch, Keras and Flax: an MLP and a small CNN of the same layers and shapes, seed 0,
the counter-based generator keyed by layer order -- every weight bit-identical after layout transposition."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="keras is not installed (pip install -e '.[keras]')")
nnx = pytest.importorskip("flax.nnx", reason="flax is not installed (pip install -e '.[jax]')")
jax = pytest.importorskip("jax")
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import initlab.flax as iflax  # noqa: E402
import initlab.keras as ikeras  # noqa: E402
from initlab.frameworks import _layout as L  # noqa: E402
from initlab.frameworks import init_torch  # noqa: E402


def torch_weights(model: nn.Module) -> list[np.ndarray]:
    out = []
    for m in model.modules():
        if isinstance(m, nn.Linear | nn.Conv2d):
            convert = L.dense if isinstance(m, nn.Linear) else L.conv
            out += [convert(m.weight.detach().numpy()), m.bias.detach().numpy()]
    return out


def keras_weights(model) -> list[np.ndarray]:
    return [np.asarray(keras.ops.convert_to_numpy(w)) for w in model.weights]


def flax_weights(model) -> list[np.ndarray]:
    out = []
    for layer in model.layers:
        if isinstance(layer, nnx.Linear | nnx.Conv):
            out += [np.asarray(layer.kernel[...]), np.asarray(layer.bias[...])]
    return out


def _flatten(x):
    return x.reshape(x.shape[0], -1)


def models(kind: str, act: str):
    rngs = nnx.Rngs(0)
    t_act = {"relu": nn.ReLU, "tanh": nn.Tanh}[act]
    f_act = {"relu": nnx.relu, "tanh": jax.numpy.tanh}[act]
    if kind == "mlp":
        t = nn.Sequential(nn.Linear(20, 64), t_act(), nn.Linear(64, 64), t_act(), nn.Linear(64, 5))
        k = keras.Sequential([keras.Input((20,)), keras.layers.Dense(64, activation=act),
                              keras.layers.Dense(64, activation=act), keras.layers.Dense(5)])
        f = nnx.Sequential(nnx.Linear(20, 64, rngs=rngs), f_act, nnx.Linear(64, 64, rngs=rngs), f_act,
                           nnx.Linear(64, 5, rngs=rngs))
        return t, k, f
    t = nn.Sequential(nn.Conv2d(3, 8, 3), t_act(), nn.Conv2d(8, 16, 3), t_act(), nn.Flatten(),
                      nn.Linear(16 * 4 * 4, 10))
    k = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Conv2D(8, 3, activation=act),
                          keras.layers.Conv2D(16, 3, activation=act), keras.layers.Flatten(),
                          keras.layers.Dense(10)])
    f = nnx.Sequential(nnx.Conv(3, 8, (3, 3), padding="VALID", rngs=rngs), f_act,
                       nnx.Conv(8, 16, (3, 3), padding="VALID", rngs=rngs), f_act, _flatten,
                       nnx.Linear(16 * 4 * 4, 10, rngs=rngs))
    return t, k, f


@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_bit_identical_across_frameworks(kind: str, act: str) -> None:
    t, k, f = models(kind, act)
    rt = init_torch(t, seed=0)
    rk = ikeras.init_model(k, seed=0)
    rf = iflax.init_model(f, seed=0)
    assert [r.scheme for r in rt.rows] == [r.scheme for r in rk.rows] == [r.scheme for r in rf.rows]
    tw, kw, fw = torch_weights(t), keras_weights(k), flax_weights(f)
    assert len(tw) == len(kw) == len(fw) == 6
    for a, b, c in zip(tw, kw, fw, strict=True):
        assert a.shape == b.shape == c.shape
        assert np.array_equal(a, b) and np.array_equal(a, c)
        assert a.std() > 0 or not a.any()


def test_another_seed_gives_other_weights_and_order_key_differs_from_name_key() -> None:
    t1, _k1, _ = models("mlp", "relu")
    t2, _, _ = models("mlp", "relu")
    init_torch(t1, seed=0)
    init_torch(t2, seed=1)
    assert not torch.equal(t1[0].weight, t2[0].weight)
    init_torch(t2, seed=0, key="name")  # keyed by torch's names ("2.weight", not "layers.1.weight")
    assert not torch.equal(t1[2].weight, t2[2].weight)

"""``initlab.keras.init_model``: discovery (activations, Add, recurrent gates, attention), layouts checked by
running the Keras model and the torch model initlab draws the same weights for on the same input, and the
all-or-nothing contract."""

from __future__ import annotations

import os

import numpy as np
import pytest

keras = pytest.importorskip("keras", reason="keras is not installed (pip install -e '.[keras]')")
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import initlab.keras as ikeras  # noqa: E402
from initlab.frameworks import init_torch  # noqa: E402

RNG = np.random.default_rng(0)


def numpy(x) -> np.ndarray:
    """A Keras tensor or variable as numpy on any backend (the torch backend's outputs require grad)."""
    return np.array(keras.ops.convert_to_numpy(x))


def weights(model) -> list[np.ndarray]:
    return [numpy(w) for w in model.weights]


def same_output(kmodel, tmodel: nn.Module, x: np.ndarray, tx: np.ndarray | None = None) -> None:
    got = numpy(kmodel(x))
    with torch.no_grad():
        out = tmodel(torch.as_tensor(x if tx is None else tx))
    ref = (out[0] if isinstance(out, tuple) else out).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_functional_activation_layer_and_add_are_seen() -> None:
    inp = keras.Input((8,))
    h = keras.layers.Activation("relu")(keras.layers.Dense(16)(inp))
    h2 = keras.layers.Dense(16, activation="tanh")(h)
    out = keras.layers.Dense(2)(keras.layers.Add()([h, h2]))
    model = keras.Model(inp, out)
    report = ikeras.init_model(model, seed=0)
    acts = {r.name.split("/")[-2]: r.activation for r in report.rows if r.name.endswith("kernel")}
    assert list(acts.values()) == ["relu", "tanh", None]
    assert report.row(model.layers[1].kernel.path).shape == (8, 16)  # Keras' layout in the report


def test_mlp_and_cnn_compute_what_the_torch_twin_computes() -> None:
    kmlp = keras.Sequential([keras.Input((10,)), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(3)])
    tmlp = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 3))
    ikeras.init_model(kmlp, seed=3)
    init_torch(tmlp, seed=3)
    same_output(kmlp, tmlp, RNG.standard_normal((4, 10)).astype(np.float32))
    kcnn = keras.Sequential([keras.Input((9, 9, 3)), keras.layers.Conv2D(8, 3, activation="relu"),
                             keras.layers.Conv2D(4, 3, groups=2), keras.layers.Flatten()])
    tcnn = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 4, 3, groups=2))
    ikeras.init_model(kcnn, seed=3)
    init_torch(tcnn, seed=3)
    x = RNG.standard_normal((2, 9, 9, 3)).astype(np.float32)
    got = numpy(kcnn(x))
    with torch.no_grad():
        ref = tcnn(torch.as_tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).reshape(2, -1).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "SimpleRNN"])
def test_recurrent_gate_blocks_map_to_torch_gates(kind: str) -> None:
    kmodel = keras.Sequential([keras.Input((5, 6)), getattr(keras.layers, kind)(7, return_sequences=True)])
    tmodel = {"LSTM": nn.LSTM, "GRU": nn.GRU, "SimpleRNN": nn.RNN}[kind](6, 7, batch_first=True)
    report = ikeras.init_model(kmodel, seed=1)
    init_torch(tmodel, seed=1)
    assert any(r.rule == "auto:recurrent" for r in report.rows)
    same_output(kmodel, tmodel, RNG.standard_normal((3, 5, 6)).astype(np.float32))


def test_multi_head_attention_matches_torch() -> None:
    x = keras.Input((6, 16))
    kmodel = keras.Model(x, keras.layers.MultiHeadAttention(4, 4)(x, x))
    tmodel = nn.MultiheadAttention(16, 4, batch_first=True)
    ikeras.init_model(kmodel, seed=2)
    init_torch(tmodel, seed=2)
    xs = RNG.standard_normal((2, 6, 16)).astype(np.float32)
    got = numpy(kmodel(xs))
    with torch.no_grad():
        t = torch.as_tensor(xs)
        ref = tmodel(t, t, t, need_weights=False)[0].numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_embedding_and_subclassed_model() -> None:
    class Net(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.emb = keras.layers.Embedding(20, 8)
            self.out = keras.layers.Dense(4)

        def call(self, x):
            return self.out(self.emb(x))

    model = Net()
    model(np.zeros((2, 3), dtype="int32"))
    report = ikeras.init_model(model, seed=0)
    assert [r.module for r in report.rows] == ["Embedding", "Dense", "Dense"]
    assert any("attribute order" in n for n in report.notes)
    assert abs(float(np.std(numpy(model.emb.embeddings))) - 1.0) < 0.3  # auto: N(0, 1) embedding


def test_dry_run_unbuilt_and_unknown_layers_change_nothing() -> None:
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5), keras.layers.PReLU(),
                              keras.layers.Dense(2)])
    before = weights(model)
    ikeras.init_model(model, seed=0, dry_run=True)
    assert all(np.array_equal(a, b) for a, b in zip(before, weights(model), strict=True))
    report = ikeras.init_model(model, seed=0)
    assert any("p_re_lu" in w and "unknown Keras layer" in w for w in report.warnings)
    prelu = model.layers[1].weights[0]
    assert np.array_equal(numpy(prelu), before[2])
    with pytest.raises(ValueError, match="not built"):
        ikeras.init_model(keras.Sequential([keras.layers.Dense(3)]), seed=0)


def test_a_failed_write_restores_every_variable(monkeypatch) -> None:
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5), keras.layers.Dense(2)])
    before = weights(model)
    original = type(model.weights[0]).assign
    calls = {"n": 0}

    def flaky(self, value):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, value)

    monkeypatch.setattr(type(model.weights[0]), "assign", flaky)
    with pytest.raises(KeyboardInterrupt):
        ikeras.init_model(model, seed=0)
    monkeypatch.undo()
    assert all(np.array_equal(a, b) for a, b in zip(before, weights(model), strict=True))


def test_keras_runs_on_the_backend_asked_for() -> None:
    # test_keras_torch_backend.py runs this folder's Keras tests again with KERAS_BACKEND=torch
    assert keras.backend.backend() == os.environ["KERAS_BACKEND"]

"""``initlab.flax``: NNX modules and Linen trees, layouts checked by running the Flax model against the
torch model initlab gives the same weights, activations, untouched layers and the all-or-nothing contract."""

from __future__ import annotations

import numpy as np
import pytest

nnx = pytest.importorskip("flax.nnx", reason="flax is not installed (pip install -e '.[jax]')")
linen = pytest.importorskip("flax.linen")
jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")

from torch import nn  # noqa: E402

import initlab.flax as iflax  # noqa: E402
from initlab.frameworks import init_torch  # noqa: E402


def test_nnx_sequential_computes_what_the_torch_twin_computes() -> None:
    rngs = nnx.Rngs(0)
    f = nnx.Sequential(nnx.Linear(6, 16, rngs=rngs), nnx.gelu, nnx.Linear(16, 3, rngs=rngs))
    t = nn.Sequential(nn.Linear(6, 16), nn.GELU("tanh"), nn.Linear(16, 3))  # jax.nn.gelu: approximate
    report = iflax.init_model(f, seed=7)
    init_torch(t, seed=7)
    assert report.rows[0].activation.startswith("gelu") and report.rows[0].name == "layers/0/kernel"
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    with torch.no_grad():
        ref = t(torch.as_tensor(x)).numpy()
    np.testing.assert_allclose(np.asarray(f(jnp.asarray(x))), ref, rtol=1e-4, atol=2e-5)


class _Mlp(linen.Module):
    @linen.compact
    def __call__(self, x):
        x = linen.tanh(linen.Dense(32)(x))
        x = linen.tanh(linen.Dense(32)(x))
        return linen.Dense(4)(x)


def test_linen_tree_functional_and_in_place() -> None:
    params = _Mlp().init(jax.random.key(0), jnp.ones((1, 8)))
    before = jax.tree_util.tree_map(np.asarray, params)
    new, report = iflax.init_params(params, seed=0, activation="tanh")
    assert all(np.array_equal(a, np.asarray(b)) for a, b in
               zip(jax.tree_util.tree_leaves(before), jax.tree_util.tree_leaves(params), strict=True))
    assert [r.activation for r in report.rows if r.name.endswith("kernel")] == ["tanh", "tanh", None]
    t = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4))
    init_torch(t, seed=0)
    np.testing.assert_array_equal(np.asarray(new["params"]["Dense_1"]["kernel"]),
                                  t[2].weight.detach().numpy().T)
    iflax.init_model(params, seed=0, activation="tanh")  # a mutable dict: in place
    np.testing.assert_array_equal(np.asarray(params["params"]["Dense_2"]["bias"]),
                                  np.asarray(new["params"]["Dense_2"]["bias"]))


def test_custom_module_unknown_layers_and_dry_run() -> None:
    class Net(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.emb = nnx.Embed(12, 8, rngs=rngs)
            self.lstm = nnx.LSTMCell(8, 8, rngs=rngs)
            self.norm = nnx.LayerNorm(8, rngs=rngs)

    net = Net(nnx.Rngs(0))
    lstm_before = [np.asarray(x) for x in jax.tree_util.tree_leaves(nnx.state(net.lstm, nnx.Param))]
    before = [np.asarray(x) for x in jax.tree_util.tree_leaves(nnx.state(net, nnx.Param))]
    iflax.init_model(net, seed=0, dry_run=True)
    after = [np.asarray(x) for x in jax.tree_util.tree_leaves(nnx.state(net, nnx.Param))]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))
    report = iflax.init_model(net, seed=0)
    assert any("lstm" in w and "left as it is" in w for w in report.warnings)
    lstm_after = [np.asarray(x) for x in jax.tree_util.tree_leaves(nnx.state(net.lstm, nnx.Param))]
    assert all(np.array_equal(a, b) for a, b in zip(lstm_before, lstm_after, strict=True))
    assert {r.module for r in report.rows} == {"Embed", "LayerNorm"}
    assert np.all(np.asarray(net.norm.scale[...]) == 1.0)


def test_a_failed_write_restores_every_parameter(monkeypatch) -> None:
    rngs = nnx.Rngs(0)
    f = nnx.Sequential(nnx.Linear(6, 16, rngs=rngs), nnx.relu, nnx.Linear(16, 3, rngs=rngs))
    before = [np.asarray(x) for x in jax.tree_util.tree_leaves(nnx.state(f, nnx.Param))]
    from initlab.flax import _model

    original = _model._param
    calls = {"n": 0}

    def flaky(var):
        get, set_ = original(var)

        def set_or_fail(value):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            set_(value)
        return get, set_or_fail

    monkeypatch.setattr(_model, "_param", flaky)
    with pytest.raises(KeyboardInterrupt):
        iflax.init_model(f, seed=0)
    after = [np.asarray(x) for x in jax.tree_util.tree_leaves(nnx.state(f, nnx.Param))]
    assert all(np.array_equal(a, b) for a, b in zip(before, after, strict=True))

"""``initlab.flax.init_model(..., example_input=...)``: discovery from one ``jax.make_jaxpr`` trace --
activations read from the forward (however written), residual adds, LSTM cells and attention as one torch
layer, and every parameter the trace does not read reported, never silently defaulted."""

from __future__ import annotations

import math

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
from initlab.frameworks._shadow import SelfAttention  # noqa: E402


def _kernel(w: torch.Tensor) -> np.ndarray:
    return w.detach().numpy().T


class _Mlp(nnx.Module):  # not an nnx.Sequential: the activation is only in the forward
    def __init__(self, act, rngs, width: int = 256) -> None:
        self.l1 = nnx.Linear(64, width, rngs=rngs)
        self.l2 = nnx.Linear(width, width, rngs=rngs)
        self.l3 = nnx.Linear(width, 10, rngs=rngs)
        self.act = act

    def __call__(self, x):
        return self.l3(self.act(self.l2(self.act(self.l1(x)))))


@pytest.mark.parametrize("act", ["relu", "tanh"])
def test_mlp_activation_from_the_trace_sets_the_std(act: str) -> None:
    fn = {"relu": jax.nn.relu, "tanh": jnp.tanh}[act]
    model = _Mlp(fn, nnx.Rngs(0))
    report = iflax.init_model(model, seed=0, example_input=jnp.ones((2, 64)))
    assert [r.activation for r in report.rows if r.name.endswith("kernel")] == [act, act, None]
    w = np.asarray(model.l2.kernel[...], dtype=np.float64)
    twin = nn.Sequential(nn.Linear(64, 256), nn.ReLU() if act == "relu" else nn.Tanh(), nn.Linear(256, 256),
                         nn.ReLU() if act == "relu" else nn.Tanh(), nn.Linear(256, 10))
    planned = next(r.std for r in init_torch(twin, seed=0).rows if r.name == "2.weight")
    # He for relu, a tanh gain (Glorot-like, not He) for tanh: each within 5 standard errors of the std
    se = planned / math.sqrt(2 * w.size)
    expected = math.sqrt(2 / 256) if act == "relu" else planned
    assert abs(w.std() - expected) < 5 * se
    assert abs(w.std() - math.sqrt(2 / 256)) > 5 * se if act == "tanh" else True
    np.testing.assert_array_equal(w, _kernel(twin[2].weight))


class _Res(nnx.Module):
    def __init__(self, act, rngs) -> None:
        self.inp = nnx.Linear(8, 16, rngs=rngs)
        self.norm = nnx.LayerNorm(16, rngs=rngs)
        self.a = nnx.Linear(16, 16, rngs=rngs)
        self.b = nnx.Linear(16, 16, rngs=rngs)
        self.out = nnx.Linear(16, 4, rngs=rngs)
        self.act = act

    def __call__(self, x):
        h = self.act(self.inp(x))
        h = h + self.b(self.act(self.a(self.norm(h))))  # a residual block
        return self.out(h)


class _TorchRes(nn.Module):  # the same layers, registered in forward order
    def __init__(self, act: nn.Module) -> None:
        super().__init__()
        self.inp, self.norm = nn.Linear(8, 16), nn.LayerNorm(16, eps=1e-6)  # Flax's eps
        self.a, self.b, self.out = nn.Linear(16, 16), nn.Linear(16, 16), nn.Linear(16, 4)
        self.act = act

    def forward(self, x):
        h = self.act(self.inp(x))
        return self.out(h + self.b(self.act(self.a(self.norm(h)))))


@pytest.mark.parametrize("act", ["relu", "swish"])
def test_residual_block_gets_the_torch_plan(act: str) -> None:
    # swish written out as x * sigmoid(x): read from its values as swish (torch's SiLU)
    fn = jax.nn.relu if act == "relu" else (lambda x: x * jax.nn.sigmoid(x))
    model = _Res(fn, nnx.Rngs(1))
    report = iflax.init_model(model, seed=3, example_input=jnp.ones((2, 8)))
    twin = _TorchRes(nn.ReLU() if act == "relu" else nn.SiLU())
    ref = init_torch(twin, seed=3)
    assert report.rows[0].activation == ("relu" if act == "relu" else "silu")
    assert [(r.scheme, r.std, r.activation) for r in report.rows] == \
        [(r.scheme, r.std, r.activation) for r in ref.rows]
    assert not report.warnings and not report.notes
    for name in ("inp", "a", "b", "out"):
        np.testing.assert_array_equal(np.asarray(getattr(model, name).kernel[...]),
                                      _kernel(getattr(twin, name).weight))
    x = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    with torch.no_grad():
        np.testing.assert_allclose(np.asarray(model(jnp.asarray(x))), twin(torch.as_tensor(x)).numpy(),
                                   rtol=1e-4, atol=1e-5)


class _LinenCnn(linen.Module):
    @linen.compact
    def __call__(self, x):
        x = jax.nn.gelu(linen.Conv(6, (3, 3), name="c")(x), approximate=False)
        x = jax.nn.leaky_relu(linen.ConvTranspose(4, (3, 3), strides=(2, 2), name="up")(x), 0.1)
        return linen.Dense(3, name="fc")(x.reshape(x.shape[0], -1))


def test_linen_tree_with_apply_fn_conv_transpose_and_activations() -> None:
    module = _LinenCnn()
    x = jnp.ones((1, 4, 4, 2))
    params = module.init(jax.random.key(0), x)
    new, report = iflax.init_params(params, seed=0, example_input=x, apply_fn=module.apply)
    acts = {r.name: r.activation for r in report.rows if r.name.endswith("kernel")}
    assert acts == {"c/kernel": "gelu", "up/kernel": "leaky_relu(negative_slope=0.1)", "fc/kernel": None}
    twin = nn.Sequential(nn.Conv2d(2, 6, 3), nn.GELU(), nn.ConvTranspose2d(6, 4, 3, stride=2),
                         nn.LeakyReLU(0.1), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    init_torch(twin, seed=0)
    p = new["params"]
    np.testing.assert_array_equal(np.asarray(p["c"]["kernel"]), twin[0].weight.detach().numpy()
                                  .transpose(2, 3, 1, 0))
    np.testing.assert_array_equal(np.asarray(p["up"]["kernel"]), twin[2].weight.detach().numpy()
                                  .transpose(2, 3, 0, 1))
    np.testing.assert_array_equal(np.asarray(p["fc"]["kernel"]), _kernel(twin[5].weight))
    with pytest.raises(ValueError, match="apply_fn"):
        iflax.init_model(params, seed=0, example_input=x)


class _Seq(nnx.Module):
    def __init__(self, rngs) -> None:
        self.emb = nnx.Embed(20, 8, rngs=rngs)
        self.attn = nnx.MultiHeadAttention(2, 8, decode=False, rngs=rngs)
        self.rnn = nnx.RNN(nnx.LSTMCell(8, 6, rngs=rngs))
        self.head = nnx.Linear(6, 3, rngs=rngs)

    def __call__(self, tokens):
        h = self.emb(tokens)
        h = h + self.attn(h)
        return self.head(jnp.tanh(self.rnn(h)))


class _TorchSeq(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb, self.attn = nn.Embedding(20, 8), SelfAttention(8, 2, True)
        self.rnn, self.act, self.head = nn.LSTM(8, 6, batch_first=True), nn.Tanh(), nn.Linear(6, 3)

    def forward(self, tokens):
        h = self.emb(tokens)
        h = h + self.attn(h)
        return self.head(self.act(self.rnn(h)[0]))


def test_lstm_cell_and_attention_are_one_torch_layer_each() -> None:
    model = _Seq(nnx.Rngs(0))
    report = iflax.init_model(model, seed=5, example_input=jnp.zeros((2, 7), jnp.int32))
    assert not report.warnings
    assert {r.module for r in report.rows} == {"Embed", "MultiHeadAttention", "LSTMCell", "Linear"}
    twin = _TorchSeq()
    ref = init_torch(twin, seed=5)
    assert sorted(r.scheme for r in report.rows) == sorted(r.scheme for r in ref.rows)
    lstm, cell = twin.rnn, model.rnn.cell
    for g, (i, h) in enumerate((("ii", "hi"), ("if_", "hf"), ("ig", "hg"), ("io", "ho"))):
        block = slice(6 * g, 6 * (g + 1))
        for layer, w in ((i, lstm.weight_ih_l0), (h, lstm.weight_hh_l0)):
            np.testing.assert_array_equal(np.asarray(getattr(cell, layer).kernel[...]), _kernel(w[block]))
        np.testing.assert_array_equal(np.asarray(getattr(cell, h).bias[...]),
                                      (lstm.bias_ih_l0 + lstm.bias_hh_l0)[block].detach().numpy())
    w = twin.attn.attn.in_proj_weight.detach().numpy()
    for i, name in enumerate(("query", "key", "value")):
        np.testing.assert_array_equal(np.asarray(getattr(model.attn, name).kernel[...]),
                                      w[8 * i:8 * (i + 1)].T.reshape(8, 2, 4))
    np.testing.assert_array_equal(np.asarray(model.head.kernel[...]), _kernel(twin.head.weight))


def test_what_the_trace_does_not_read_is_reported_and_left_alone() -> None:
    class Net(nnx.Module):
        def __init__(self, rngs) -> None:
            self.fc = nnx.Linear(4, 4, rngs=rngs)
            self.unused = nnx.Linear(4, 4, rngs=rngs)
            self.gru = nnx.GRUCell(4, 4, rngs=rngs)
            self.out = nnx.Linear(4, 2, rngs=rngs)

        def __call__(self, x):
            _, h = self.gru(jnp.zeros((x.shape[0], 4)), x)
            return self.out(2.0 * jnp.sin(self.fc(h)))  # not an activation initlab knows

    net = Net(nnx.Rngs(0))
    kept = {k: np.asarray(v) for k, v in nnx.to_flat_state(nnx.state(net, nnx.Param))}
    iflax.init_model(net, seed=0, example_input=jnp.ones((2, 4)), dry_run=True)
    state = nnx.to_flat_state(nnx.state(net, nnx.Param))
    assert all(np.array_equal(np.asarray(v), kept[k]) for k, v in state)
    report = iflax.init_model(net, seed=0, example_input=jnp.ones((2, 4)))
    said = " ".join(report.warnings)
    assert "unused/kernel" in said and "gru (a GRUCell)" in said and "initlab.jax.get" in said
    assert any(n.startswith("out: its input is an elementwise function") for n in report.notes)
    after = dict(nnx.to_flat_state(nnx.state(net, nnx.Param)))
    for k, v in kept.items():
        if k[0] in ("unused", "gru"):
            np.testing.assert_array_equal(np.asarray(after[k]), v)
    assert {r.name for r in report.rows} == {"fc/kernel", "fc/bias", "out/kernel", "out/bias"}


class _LinenSeq(linen.Module):
    @linen.compact
    def __call__(self, tokens):
        h = linen.Embed(20, 8)(tokens)
        h = h + linen.MultiHeadDotProductAttention(num_heads=2)(h)
        return linen.Dense(3)(jax.nn.relu(linen.RNN(linen.LSTMCell(6))(h)))


def test_linen_lstm_cell_and_attention_known_by_their_children() -> None:
    module, x = _LinenSeq(), jnp.zeros((2, 5), jnp.int32)
    params = module.init(jax.random.key(0), x)
    new, report = iflax.init_params(params, seed=0, example_input=x, apply_fn=module.apply)
    assert not report.warnings and not report.notes
    assert [r.module for r in report.rows if r.name.endswith("kernel")] == \
        ["MultiHeadAttention", "MultiHeadAttention", "LSTMCell", "LSTMCell", "Dense"]
    old, cell = params["params"]["LSTMCell_0"], new["params"]["LSTMCell_0"]
    assert not np.array_equal(np.asarray(cell["hf"]["kernel"]), np.asarray(old["hf"]["kernel"]))

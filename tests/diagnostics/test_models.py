"""diagnose on the layer types discovery knows: convs, attention, recurrent, embeddings, half precision,
shared modules, functional activations; the model is unchanged after each."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import initlab
from initlab.model.state import ModelState


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.sigmoid(self.b(F.relu(self.a(x)))))


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(torch.tanh(self.block(x)))


class Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, 8)
        self.rnn = nn.LSTM(8, 8, batch_first=True)
        self.head = nn.Linear(8, 3)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.emb(ids))
        return self.head(out[:, -1])


def _diagnose_unchanged(model: nn.Module, batch: object) -> initlab.Diagnosis:
    before = ModelState.capture(model)
    d = initlab.diagnose(model, batch)
    assert before.matches(model)
    return d


def test_functional_activations_are_seen() -> None:
    d = _diagnose_unchanged(Functional(), torch.randn(16, 8))
    assert [la.activation for la in d.layers] == ["relu", "sigmoid", None]
    assert d.layers[0].dead is not None and d.layers[1].saturated is not None


def test_cnn_channels_are_units() -> None:
    net = nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 4, 3, groups=2),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 5),
    )
    d = _diagnose_unchanged(net, torch.randn(4, 3, 8, 8))
    first = d.layers[0]
    assert first.kind == "conv" and first.symmetry is not None and first.symmetry.units == 6
    with torch.no_grad():
        net[0].bias.fill_(-100.0)  # every channel dead
    assert initlab.diagnose(net, torch.randn(4, 3, 8, 8)).layers[0].dead == 1.0


def test_transformer_encoder() -> None:
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    net = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
    d = _diagnose_unchanged(net, torch.randn(3, 5, 16))
    kinds = [la.kind for la in d.layers]
    assert kinds.count("attention") == 2 and kinds.count("norm") == 4 and kinds.count("linear") == 4
    linear1 = d.layer("layers.0.linear1")
    assert linear1.activation == "relu" and linear1.dead is not None
    attn = d.layer("layers.0.self_attn")
    assert attn.weight is not None and attn.weight.name == "in_proj_weight" and attn.weight.grad_norm


def test_embedding_and_lstm_with_integer_input() -> None:
    ids = torch.randint(0, 20, (4, 6), generator=torch.Generator().manual_seed(0))
    d = _diagnose_unchanged(Tokens(), ids)
    assert [la.kind for la in d.layers] == ["embedding", "rnn", "linear"]
    assert d.input_rms is None and d.layers[0].symmetry is None  # embedding rows are tokens, not units


def test_shared_module_is_recorded_per_call() -> None:
    d = _diagnose_unchanged(Shared(), torch.randn(4, 8))
    assert [la.name for la in d.layers] == ["block", "block#2"]


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision(dtype: torch.dtype) -> None:
    net = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2)).to(dtype)
    d = _diagnose_unchanged(net, torch.randn(16, 8).to(dtype))
    assert all(la.output.std > 0 for la in d.layers)


def test_empty_batch_is_harmless() -> None:
    net = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    d = _diagnose_unchanged(net, torch.randn(0, 8))
    assert d.codes == set()


def test_no_layers() -> None:
    with pytest.raises(ValueError, match="no layers"):
        initlab.diagnose(nn.ReLU(), torch.randn(2, 2))


def test_inplace_activation_measures_the_same_as_out_of_place() -> None:
    a = nn.Sequential(nn.Linear(8, 8), nn.ReLU(inplace=True), nn.Linear(8, 2))
    b = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    b.load_state_dict(a.state_dict())
    x = torch.randn(16, 8, generator=torch.Generator().manual_seed(0))
    da, db = _diagnose_unchanged(a, x), initlab.diagnose(b, x)
    assert [la.to_dict() for la in da.layers] == [la.to_dict() for la in db.layers]


def test_output_gradients_through_edges_equal_those_through_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    """diagnose asks autograd for the layer outputs' gradients along with the parameters' (edges taken in the
    forward hook); past EDGE_ENTRIES output entries it registers tensor hooks instead. Both give the same
    report, also where an in-place ReLU rewrites a BatchNorm's output after its hook."""
    from initlab.diagnostics import recorder

    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.Conv2d(8, 4, 3),
                        nn.Flatten(), nn.Linear(4 * 4 * 4, 3))
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    edges = _diagnose_unchanged(net, x)
    monkeypatch.setattr(recorder, "EDGE_ENTRIES", 0)
    hooks = _diagnose_unchanged(net, x)
    assert all(la.grad_norm is not None and la.grad_norm > 0 for la in edges.layers)
    assert [la.to_dict() for la in edges.layers] == [la.to_dict() for la in hooks.layers]

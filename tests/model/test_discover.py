"""Discovery: layers in execution order, following activations, residual branches from the dataflow."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from initlab.model import discover, trace_activations


class Block(nn.Module):
    def __init__(self, width: int, act: nn.Module):
        super().__init__()
        self.a, self.act, self.b = nn.Linear(width, width), act, nn.Linear(width, width)

    def forward(self, x):
        return x + self.b(self.act(self.a(x)))


class Mixed(nn.Module):
    """Functional, method and in-place activations, a custom activation module, raw parameters."""

    def __init__(self):
        super().__init__()
        self.inp = nn.Linear(4, 8)
        self.blocks = nn.Sequential(Block(8, nn.LeakyReLU(0.2)), Block(8, Swish()))
        self.l2 = nn.Linear(8, 8)
        self.l3 = nn.Linear(8, 8)
        self.w = nn.Parameter(torch.randn(3, 8))
        self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x):
        h = F.gelu(self.inp(x))
        h = self.blocks(h)
        h = self.l2(h).relu()
        h = self.l3(h)
        h.tanh_()
        return torch.sigmoid(F.linear(h, self.w)) * self.scale


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


class DataDependent(Mixed):
    def forward(self, x):
        if x.sum() > 0:  # fx cannot trace this
            x = -x
        return super().forward(x)


def check_mixed(graph):
    acts = {info.name: info.activation for info in graph.layers}
    assert acts["inp"] == "gelu"
    assert acts["blocks.0.a"] == "leaky_relu(negative_slope=0.2)"
    assert acts["blocks.1.a"] == "Swish"
    assert acts["l2"] == "relu" and acts["l3"] == "tanh" and acts["w"] == "sigmoid"
    assert acts["blocks.0.b"] is None
    assert [info.name for info in graph.layers] == [
        "inp",
        "blocks.0.a",
        "blocks.0.b",
        "blocks.1.a",
        "blocks.1.b",
        "l2",
        "l3",
        "w",
    ]
    assert graph.layer("w").kind == "raw" and graph.layer("w").module is None
    assert graph.layer("w").fans["weight"].fan_in == 8
    assert [br.layers for br in graph.branches] == [
        ["blocks.0.a", "blocks.0.b"],
        ["blocks.1.a", "blocks.1.b"],
    ]
    assert graph.layer("blocks.1.b").last_in_branch and not graph.layer("blocks.1.a").last_in_branch
    assert graph.layer("blocks.1.a").branch == 1 and graph.layer("inp").branch is None
    assert "scale" in graph.unreached and "mul" in graph.unreached["scale"]


def test_fx_discovery_finds_functional_activations_raw_parameters_and_branches():
    graph = discover(Mixed())
    assert graph.method == "fx"
    check_mixed(graph)


def test_hooks_discovery_when_fx_fails():
    graph = discover(DataDependent(), torch.randn(2, 4))
    assert graph.method == "hooks"
    assert "fx could not trace" in graph.notes[0]
    check_mixed(graph)


class SharedLeaf(nn.Module):
    """One layer reached by two paths (CoaT's position encoding, held by every block), and a forward fx
    cannot trace."""

    def __init__(self):
        super().__init__()
        shared = nn.Linear(8, 8)
        self.first, self.second = nn.Sequential(shared, nn.ReLU()), nn.Sequential(shared, nn.ReLU())
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        if x.sum() > 0:  # fx cannot trace this
            x = -x
        return self.head(self.second(self.first(x)))


def test_hooks_discovery_names_a_shared_layer_as_named_modules_does():
    import initlab

    model = SharedLeaf()
    graph = discover(model, torch.randn(4, 8))
    assert graph.method == "hooks"
    assert [info.name for info in graph.layers] == ["first.0", "head"]  # not "second.0": no row has it
    report = initlab.init_model(model, "auto", example_input=torch.randn(4, 8), seed=0)
    assert all(r.var_out is not None for r in report.rows if r.name.endswith("weight"))


class Gated(nn.Module):
    """A gated unit written with ``chunk`` (timm's SwiGLU): ``fc2(silu(a) * b)``; ``hooks=True``: a forward
    fx cannot trace."""

    def __init__(self, hooks: bool):
        super().__init__()
        self.hooks, self.fc1, self.fc2 = hooks, nn.Linear(16, 64), nn.Linear(32, 16)

    def forward(self, x):
        if self.hooks and x.sum() > 0:
            x = -x
        a, b = self.fc1(x).chunk(2, dim=-1)
        return self.fc2(F.silu(a) * b)


def test_hooks_discovery_reads_a_chunked_gate_as_fx_does():
    import initlab

    x = torch.randn(64, 16)
    reports = [initlab.init_model(Gated(hooks), "auto", example_input=x, seed=0) for hooks in (False, True)]
    assert [r.method for r in reports] == ["fx", "hooks"]
    fx_row, hooks_row = (r["fc2.weight"] for r in reports)
    assert hooks_row.var_out == pytest.approx(fx_row.var_out, rel=1e-6)  # not planned as swish, silu(z) * z
    assert hooks_row.std == pytest.approx(fx_row.std, rel=1e-6)


def test_static_fallback_without_example_input():
    graph = discover(DataDependent())
    assert graph.method == "static" and graph.branches == []
    assert graph.layer("l2").kind == "linear"


def test_add_of_two_inputs_is_not_a_residual_branch():
    class TokPos(nn.Module):
        def __init__(self):
            super().__init__()
            self.tok, self.pos, self.out = nn.Embedding(10, 8), nn.Embedding(5, 8), nn.Linear(8, 8)

        def forward(self, idx):
            return self.out(self.tok(idx) + self.pos(torch.arange(idx.shape[-1])))

    graph = discover(TokPos(), torch.zeros(2, 5, dtype=torch.long))
    assert graph.branches == []


def test_projection_shortcut_and_norm_in_branch():
    class Down(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.bn1 = nn.Conv2d(4, 8, 3, 2, 1), nn.BatchNorm2d(8)
            self.c2, self.bn2 = nn.Conv2d(8, 8, 3, 1, 1), nn.BatchNorm2d(8)
            self.proj = nn.Conv2d(4, 8, 1, 2)

        def forward(self, x):
            return F.relu(self.proj(x) + self.bn2(self.c2(F.relu(self.bn1(self.c1(x))))))

    graph = discover(Down())
    (br,) = graph.branches
    assert br.shortcut == ["proj"] and br.last == "c2" and br.norms == ["bn1", "bn2"]
    assert graph.layer("c1").activation == "relu"  # through the BatchNorm


def test_transformer_layers_are_expanded():
    model = nn.TransformerEncoder(
        nn.TransformerEncoderLayer(16, 2, 32, activation="gelu", batch_first=True), 2
    )
    graph = discover(model)
    names = [info.name for info in graph.layers]
    assert names[:5] == [
        "layers.0.self_attn",
        "layers.0.norm1",
        "layers.0.linear1",
        "layers.0.linear2",
        "layers.0.norm2",
    ]
    assert graph.layer("layers.1.linear1").activation == "gelu"
    assert len(graph.branches) == 4 and graph.layer("layers.0.linear2").last_in_branch
    assert graph.layer("layers.0.self_attn").fans["in_proj_weight"].fan_out == 16  # per q/k/v block


def test_tied_parametrized_and_rnn_fans():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(20, 8)
            self.rnn = nn.LSTM(8, 6)
            self.wn = parametrizations.weight_norm(nn.Linear(6, 8))
            self.head = nn.Linear(8, 20, bias=False)
            self.head.weight = self.emb.weight

        def forward(self, idx):
            return self.head(self.wn(self.rnn(self.emb(idx))[0]))

    graph = discover(M())
    assert graph.tied == {"emb.weight": ["head.weight"]}
    assert graph.parametrized["wn.weight"] == [
        "wn.parametrizations.weight.original0",
        "wn.parametrizations.weight.original1",
    ]
    assert graph.layer("wn").params["weight"] == "wn.weight"
    rnn = graph.layer("rnn")
    assert rnn.fans["weight_ih_l0"].fan_out == 6 and rnn.specs["weight_hh_l0"].blocks == 4
    assert graph.unreached == {}


@pytest.mark.parametrize("stride", [1, 2])
def test_conv_transpose_and_grouped_fans(stride):
    model = nn.Sequential(
        nn.Conv2d(16, 32, 3, groups=16), nn.ReLU(), nn.ConvTranspose2d(32, 8, 4, stride=stride)
    )
    graph = discover(model)
    assert graph.layer("0").fans["weight"].fan_in == 9
    assert graph.layer("2").fans["weight"].fan_in == 32 * 16 / stride**2


def test_trace_activations_records_pre_and_post():
    model = Mixed()
    graph = discover(model)
    x = torch.randn(5, 4)
    with trace_activations(model, graph) as rec:
        model(x)
    assert set(rec.pre) == {info.name for info in graph.layers}
    assert torch.equal(rec.post["inp"], F.gelu(rec.pre["inp"]))
    assert torch.equal(rec.post["blocks.0.a"], F.leaky_relu(rec.pre["blocks.0.a"], 0.2))
    assert torch.equal(rec.post["w"], torch.sigmoid(rec.pre["w"]))
    assert "blocks.0.b" not in rec.post


def test_discovery_keeps_global_rng_and_modes():
    model = DataDependent().train()
    x = torch.randn(2, 4)
    state = torch.get_rng_state()
    discover(model, x)
    assert torch.equal(state, torch.get_rng_state()) and model.training

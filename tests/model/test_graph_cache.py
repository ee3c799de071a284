"""The graph cache keeps no model alive and never gives a stale plan (issue 14 items 1, 2)."""

import gc
import weakref

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initlab.model import discover, init_model
from initlab.model import graph as graph_module
from initlab.model.graph import GraphError


def test_models_initialized_and_deleted_are_collected():
    refs = []
    for k in range(100):
        model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))
        report = init_model(model, "auto" if k % 2 else "he_normal", seed=k)
        refs.append(weakref.ref(model))
        del model, report
    gc.collect()
    alive = sum(r() is not None for r in refs)
    assert alive == 0
    assert len(graph_module._CACHE) == 0


def test_a_root_layer_model_is_collected_too():
    model = nn.Linear(4, 4)
    init_model(model, "he_normal", seed=0)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


def test_a_graph_does_not_keep_its_model_alive_and_says_so():
    model = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    graph = discover(model)
    assert graph.model is model
    del model
    gc.collect()
    with pytest.raises(GraphError, match="deleted"):
        graph.model  # noqa: B018


def _std(report, name):
    return report.row(name).std


def test_replaced_activation_module_is_seen():
    model = nn.Sequential(nn.Linear(100, 100), nn.LeakyReLU(0.01), nn.Linear(100, 10))
    init_model(model, "he_normal", seed=0)
    model[1] = nn.LeakyReLU(0.5)
    report = init_model(model, "he_normal", seed=0)
    expected = (2 / (1 + 0.5**2) / 100) ** 0.5
    assert _std(report, "0.weight") == pytest.approx(expected, rel=1e-6)


def test_changed_activation_attribute_is_seen():
    model = nn.Sequential(nn.Linear(100, 100), nn.LeakyReLU(0.01), nn.Linear(100, 10))
    init_model(model, "he_normal", seed=0)
    model[1].negative_slope = 0.5
    report = init_model(model, "he_normal", seed=0)
    assert _std(report, "0.weight") == pytest.approx((2 / 1.25 / 100) ** 0.5, rel=1e-6)


class Flagged(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(64, 64), nn.Linear(64, 64)
        self.residual = True
        self.act = F.relu

    def forward(self, x):
        h = self.b(self.act(self.a(x)))
        return x + h if self.residual else h


def test_control_flow_flag_is_seen():
    model = Flagged()
    with_res = init_model(model, "auto", seed=0)
    assert len(with_res.graph.branches) == 1
    model.residual = False
    plain = init_model(model, "auto", seed=0)
    assert plain.graph is not with_res.graph
    assert plain.graph.branches == []
    assert with_res.output_var == pytest.approx(2.0) and plain.output_var == pytest.approx(1.0)


def test_swapped_functional_activation_is_seen():
    model = Flagged()
    relu = init_model(model, "he_normal", seed=0)
    model.act = torch.tanh
    tanh = init_model(model, "he_normal", seed=0)
    assert relu.graph.layer("a").activation == "relu"
    assert tanh.graph.layer("a").activation == "tanh"
    assert _std(tanh, "b.weight") == _std(relu, "b.weight")  # b is linear either way
    assert _std(tanh, "a.weight") != _std(relu, "a.weight")


def test_train_eval_switch_is_part_of_the_key():
    model = Flagged()
    first = discover(model)
    model.eval()
    assert discover(model) is not first
    assert discover(model) is discover(model)


def test_graph_from_another_model_is_rejected():
    a, b = Flagged(), Flagged()
    graph = discover(a)
    before = [p.detach().clone() for p in b.parameters()]
    with pytest.raises(GraphError, match="different model"):
        init_model(b, "he_normal", graph=graph, seed=0)
    assert all(torch.equal(x, y) for x, y in zip(before, b.parameters(), strict=True))


def test_graph_of_a_changed_model_is_rejected():
    model = Flagged()
    graph = discover(model)
    model.residual = False
    with pytest.raises(GraphError, match="changed"):
        init_model(model, "auto", graph=graph, seed=0)
    init_model(model, "auto", graph=discover(model), seed=0)


def test_unchanged_model_reuses_its_graph():
    model = Flagged()
    assert discover(model) is discover(model)


def test_an_added_or_removed_attribute_is_seen():
    model = Flagged()
    first = discover(model)
    del model.residual  # forward now raises: the stale graph must not be reused
    assert discover(model, cache=True) is not first
    model.residual, model.extra = True, 3
    assert discover(model) is not first


def test_a_hook_moved_to_another_module_is_seen():
    model = Flagged()
    handle = model.a.register_forward_hook(lambda mod, args, out: out * 2)
    with_a = discover(model)
    handle.remove()
    model.b.register_forward_hook(lambda mod, args, out: out * 2)
    assert discover(model) is not with_a


def test_a_changed_prelu_slope_is_seen():
    model = nn.Sequential(nn.Linear(64, 64), nn.PReLU(init=0.0), nn.Linear(64, 10))
    relu = init_model(model, "he_normal", seed=0)
    with torch.no_grad():
        model[1].weight.fill_(1.0)  # a one-slope PReLU of slope 1 is the identity
    linear = init_model(model, "he_normal", seed=0)
    assert _std(relu, "0.weight") == pytest.approx((2 / 64) ** 0.5)
    assert _std(linear, "0.weight") == pytest.approx((1 / 64) ** 0.5)

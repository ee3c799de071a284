"""Plans kept on a cached graph: repeated calls reuse them and give what a fresh plan gives."""

import torch
from torch import nn

from initlab.model import graph as graph_module
from initlab.model import init_model


def _net() -> nn.Module:
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_repeated_call_reuses_the_plan_and_draws_the_same_weights():
    model = _net()
    first = init_model(model, "he_uniform", seed=3)
    w1 = _weights(model)
    graph = first.graph
    assert len(graph.plans) == 1
    second = init_model(model, "he_uniform", seed=3)
    assert second.graph is graph and second.plan is first.plan
    assert all(torch.equal(a, b) for a, b in zip(w1, _weights(model), strict=True))
    graph_module._CACHE.clear()
    fresh = init_model(model, "he_uniform", seed=3)
    assert fresh.graph is not graph
    assert all(torch.equal(a, b) for a, b in zip(w1, _weights(model), strict=True))
    assert [r.std for r in fresh.rows] == [r.std for r in second.rows]
    assert [r.var_out for r in fresh.rows] == [r.var_out for r in second.rows]


def test_reports_of_repeated_calls_are_independent():
    model = _net()
    first = init_model(model, "auto", seed=0)
    first.rows[0].std = -1.0
    first.rows[0].tied.append("x")
    first.notes.append("changed")
    second = init_model(model, "auto", seed=0)
    assert second.rows[0].std != -1.0 and "x" not in second.rows[0].tied
    assert "changed" not in second.notes


def test_a_changed_model_gets_a_new_plan():
    model = _net()
    init_model(model, "he_normal", seed=0)
    model[2] = nn.Linear(8, 5)
    report = init_model(model, "he_normal", seed=0)
    assert report.row("2.weight").shape == (5, 8)
    assert model[2].weight.std().item() < 1.0


def test_options_and_rules_are_part_of_the_key():
    model = _net()
    plain = init_model(model, "auto", seed=0)
    zero = init_model(model, "auto", seed=0, q_saturating=0.25)
    assert plain.plan is not zero.plan
    ruled = init_model(model, "he_normal", seed=0, rules={"2.*": "zeros"})
    assert ruled.row("2.weight").scheme == "zeros"
    assert torch.count_nonzero(model[2].weight) == 0
    again = init_model(model, "he_normal", seed=0)
    assert again.row("2.weight").scheme != "zeros"
    assert torch.count_nonzero(model[2].weight) == model[2].weight.numel()

"""The public layer registry: a layer type no built-in kind covers, taught to initlab in one call.

``EinsumLinear`` stores its weight (in, out) and computes with ``einsum``, which discovery does not read as
a layer op: without registration its parameters are reported untouched with the register_layer fix; after
``initlab.register_layer`` every path handles it."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import nn

import initlab
from initlab.model import Kind, discover, init_model, layer_type
from initlab.model._registry import unregister


class EinsumLinear(nn.Module):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.empty(n_in, n_out).uniform_(-3, 3))
        self.b = nn.Parameter(torch.full((n_out,), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bi,io->bo", x, self.w) + self.b


WIDTHS = (64, 256, 256, 256)


def _net() -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(WIDTHS):
        layers += [EinsumLinear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


@pytest.fixture
def registered():
    t = initlab.register_layer(EinsumLinear, params={"w": "in_out", "b": "bias"})
    yield t
    unregister(t.name)


def _batch() -> torch.Tensor:
    return torch.randn(4096, WIDTHS[0], generator=torch.Generator().manual_seed(1))


def _std_within(t: torch.Tensor, expected: float) -> None:
    se = expected / math.sqrt(2 * t.numel())  # standard error of a Gaussian sample std
    assert abs(float(t.std()) - expected) < 5 * se, (float(t.std()), expected)


def test_unregistered_layer_is_reported_with_the_fix():
    model = _net()
    before = [p.detach().clone() for p in model.parameters()]
    report = init_model(model, "he_normal", example_input=_batch()[:8], seed=0)
    untouched = [r for r in report.rows if r.status == "untouched"]
    assert {r.name for r in untouched} == {n for n, _ in model.named_parameters()}
    assert all("initlab.register_layer(EinsumLinear" in r.note for r in untouched)
    assert any("register_layer" in w for w in report.warnings)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_registered_layer_is_found_with_its_layout(registered):
    model = _net()
    assert layer_type(model[0]) is registered and registered.kind is Kind.LINEAR
    graph = discover(model, _batch()[:8])
    info = graph.layer("0")
    assert info.params == {"w": "0.w", "b": "0.b"} and info.weight_local == "w" and info.bias_local == "b"
    assert (info.weight_fans.fan_in, info.weight_fans.fan_out) == (64, 256)
    assert info.activation == "relu" and not graph.unreached


def test_he_normal_uses_the_registered_fans(registered):
    model = _net()
    report = init_model(model, "he_normal", example_input=_batch()[:8], seed=0)
    assert not [r for r in report.rows if r.status == "untouched"]
    for k, n_in in zip((0, 2, 4), WIDTHS[:-1], strict=True):
        _std_within(model[k].w.detach(), math.sqrt(2.0 / n_in))
        assert torch.count_nonzero(model[k].b) == 0


def test_auto_puts_every_layer_at_unit_scale(registered):
    x = _batch()
    measured = []
    for seed in range(6):
        model = _net()
        report = init_model(model, "auto", example_input=x[:8], seed=seed)
        assert not [r for r in report.rows if r.status == "untouched"] and report.output_var == 1.0
        if seed == 0:
            _std_within(model[0].w.detach(), 1 / math.sqrt(WIDTHS[0]))  # unit input -> unit pre-activation
            _std_within(model[2].w.detach(), math.sqrt(2 / WIDTHS[1]))  # after ReLU: sigma_w^2 = 2
        with torch.no_grad():
            measured.append(float((model(x) ** 2).mean()))
    # the output second moment of one weight draw fluctuates by a few % (finite width): the mean over
    # draws against the plan's prediction, 5 standard errors of that mean
    m = torch.tensor(measured)
    assert abs(float(m.mean()) - 1.0) < 5 * float(m.std()) / math.sqrt(len(m)), measured


def test_lsuv_calibrates_the_registered_layer(registered):
    model = _net()
    x = _batch()[:512]
    result = initlab.lsuv(model, x, seed=0, tol=0.05)
    assert [c.name for c in result.layers] == ["0", "2", "4"] and result.converged and not result.skipped
    outs: dict[str, torch.Tensor] = {}
    hooks = [model[k].register_forward_hook(lambda m, a, o, k=k: outs.__setitem__(k, o)) for k in (0, 2, 4)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    for k in (0, 2, 4):
        assert abs(float(outs[k].var()) - 1.0) < 0.06, (k, float(outs[k].var()))


def test_lsuv_scheme_and_diagnose_handle_it(registered):
    model = _net()
    x = _batch()[:256]
    report = init_model(model, "lsuv", example_input=x, seed=0)
    assert {r.name for r in report.rows if r.status != "untouched"} >= {"0", "2", "4"}
    diagnosis = initlab.diagnose(model, x)
    assert {"0", "2", "4"} <= {layer.name for layer in diagnosis.layers}

"""materialize: a meta-device model allocated and initialized module by module equals init_model with the
counter generator on a normally built model; ties survive; buffers are reset; safetensors streaming."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

import initlab


def build() -> nn.Module:
    """Gate blocks (LSTM), a padding row, norm statistics."""
    return nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(),
                         nn.LSTM(6, 3))


def tied() -> nn.Module:
    m = nn.Sequential(nn.Embedding(10, 4, padding_idx=0), nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(),
                      nn.Linear(6, 4), nn.Linear(4, 10, bias=False))
    m[5].weight = m[0].weight
    return m


def reference(factory, scheme="auto", seed=7):
    torch.manual_seed(0)
    model = factory()
    initlab.init_model(model, scheme, seed=seed, generator="counter")
    return model


@pytest.mark.parametrize("factory", [build, tied])
def test_materialize_equals_init_model(factory):
    ref = reference(factory)
    with torch.device("meta"):
        model = factory()
    report = initlab.materialize(model, "cpu", "auto", seed=7)
    assert not report.dry_run
    assert all(t.device.type == "cpu" for t in (*model.parameters(), *model.buffers()))
    ref_sd, sd = ref.state_dict(), model.state_dict()
    assert ref_sd.keys() == sd.keys()
    for k in sd:
        assert torch.equal(sd[k], ref_sd[k]), k


def test_ties_and_buffers():
    with torch.device("meta"):
        model = tied()
    initlab.materialize(model, seed=1, dtype=torch.bfloat16)
    assert model[5].weight is model[0].weight
    assert model[0].weight.dtype == torch.bfloat16 and model[2].num_batches_tracked.dtype == torch.int64
    assert torch.equal(model[2].running_var, torch.ones(6, dtype=torch.bfloat16))
    assert torch.equal(model[0].weight[0], torch.zeros(4, dtype=torch.bfloat16))  # padding row
    assert model[0].weight.requires_grad


def test_safetensors_stream(tmp_path):
    ref = reference(tied, "he_normal", seed=3)
    with torch.device("meta"):
        model = tied()
    path = tmp_path / "init.safetensors"
    initlab.materialize(model, scheme="he_normal", seed=3, path=path)
    assert all(p.device.type == "meta" for p in model.parameters())  # nothing was held
    loaded = load_file(str(path))
    expected = {k: v for k, v in ref.state_dict().items() if k != "5.weight"}
    assert loaded.keys() == expected.keys()
    for k, v in expected.items():
        assert torch.equal(loaded[k], v), k
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    assert json.loads(meta["initlab_tied"]) == {"5.weight": "0.weight"} and meta["initlab_seed"] == "3"


def test_bad_scheme_leaves_model_on_meta():
    with torch.device("meta"):
        model = tied()
    with pytest.raises(ValueError):
        initlab.materialize(model, scheme="no_such_scheme", seed=0)
    assert all(p.device.type == "meta" for p in model.parameters())


def _deep(act: type[nn.Module], depth: int = 8, width: int = 12) -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(6, width), act()]
    for _ in range(depth):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, 3))


def _narrow() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 3))


@pytest.mark.parametrize("factory,step", [(lambda: _deep(nn.ReLU), "looks_linear"),
                                          (lambda: _deep(nn.Sigmoid), "center"), (_narrow, "row_norm")])
def test_post_steps_are_piecewise_and_materializable(factory, step):
    """Post steps of torch-generator plans (looks-linear weights, centred biases, fixed row norms): any
    row/column piece equals the slice of the whole (what a rank computes alone); materialize equals
    init_model (which plans portably for the counter generator)."""
    from initlab.model.plan_counter import fill_assignment_

    plan = initlab.init_model(factory(), "auto", seed=0, dry_run=True).plan
    index = {a.name: a for a in plan.assignments}
    assert any(s.kind == step for a in plan.assignments for s in a.post), "the plan no longer uses " + step
    for a in plan.assignments:
        full = fill_assignment_(torch.empty(a.shape), a, 5, assignments=index)
        rows = a.shape[0]
        cut = rows // 3
        zeros = (0,) * (len(a.shape) - 1)
        top = fill_assignment_(torch.empty((cut, *a.shape[1:])), a, 5, (0, *zeros), assignments=index)
        rest = torch.empty((rows - cut, *a.shape[1:]))
        fill_assignment_(rest, a, 5, (cut, *zeros), assignments=index)
        assert torch.equal(torch.cat([top, rest]), full), a.name
        if len(a.shape) == 2:
            cols = a.shape[1] - 3
            middle = fill_assignment_(torch.empty(rows, cols), a, 5, (0, 2), assignments=index)
            assert torch.equal(middle, full[:, 2:2 + cols]), a.name
    ref = reference(factory, seed=5)
    with torch.device("meta"):
        model = factory()
    initlab.materialize(model, seed=5)
    for (k, v), w in zip(model.state_dict().items(), ref.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


@pytest.mark.parametrize("factory", [build, tied])
def test_on_meta_builds_without_init_and_materializes_the_same(factory):
    ref = reference(factory)
    originals = dict(vars(torch.nn.init))
    with initlab.on_meta():
        model = factory()
    assert all(t.device.type == "meta" for t in (*model.parameters(), *model.buffers()))
    assert dict(vars(torch.nn.init)) == originals
    initlab.materialize(model, "cpu", "auto", seed=7)
    assert factory is build or model[-1].weight is model[0].weight
    for k, v in model.state_dict().items():
        assert torch.equal(v, ref.state_dict()[k]), k


def test_on_meta_restores_torch_init_when_the_build_raises():
    originals = dict(vars(torch.nn.init))
    with pytest.raises(RuntimeError, match="boom"), initlab.on_meta():
        nn.Linear(3, 3)
        raise RuntimeError("boom")
    assert dict(vars(torch.nn.init)) == originals
    assert nn.Linear(2, 2).weight.device.type == "cpu"


def test_on_meta_skips_torch_dynamo():
    code = ("import sys, torch, initlab\n"
            "with initlab.on_meta():\n"
            "    torch.nn.Embedding(10, 4)\n"
            "print('torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

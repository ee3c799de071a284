"""The residual rules as plan transforms: a real dry run (nothing changes, no parameter added, the full
plan), both generators, ``materialize`` equal to ``init_model`` on the eager model, report rows that follow
the edited plan, and registration by name without importing ``initlab.methods``."""

import math
import subprocess
import sys

import pytest
import torch
from torch import nn

import initlab
from initlab.model import ModelState, init_model

SCHEMES = ("fixup", "t_fixup", "deepnorm", "gpt2", "skipinit", "rezero")


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


class ResMLP(nn.Module):
    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.inp = nn.Linear(8, width)
        self.blocks = nn.Sequential(Block(width), Block(width), Block(width))
        self.head = nn.Linear(width, 3)

    def forward(self, x):
        return self.head(self.blocks(self.inp(x)))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return ResMLP()


@pytest.mark.parametrize("scheme", SCHEMES)
def test_dry_run_changes_nothing_and_returns_the_full_plan(scheme):
    model = _model()
    state = ModelState.capture(model)
    names = [n for n, _ in model.named_parameters()]
    report = init_model(model, scheme, dry_run=True)
    assert state.matches(model)
    assert [n for n, _ in model.named_parameters()] == names
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())
    assert {a.name for a in report.plan.assignments} == set(names)
    assert report.dry_run and report.scheme == scheme


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("generator", ["counter", "torch"])
def test_both_generators_follow_the_plan(scheme, generator):
    model = _model()
    report = init_model(model, scheme, seed=3, generator=generator)
    params = dict(model.named_parameters())
    for row in report.rows:
        if row.std == 0:
            assert not params[row.name].detach().any(), row.name
    if scheme in ("skipinit", "rezero"):
        alphas = [p for n, p in params.items() if n.endswith("skipinit_alpha")]
        assert len(alphas) == 3
        expect = torch.tensor(0.0 if scheme == "rezero" else 1 / math.sqrt(3))  # float32, as the parameter
        assert all(torch.equal(a.detach(), expect) for a in alphas)


def test_fixup_rows_follow_the_edited_plan():
    """Rows: the scaled std is He's times L^(-1/(2m-2)); zeroed rows have std 0 and the predicted variance
    of their layer is 0 (bias zero too), not the base scheme's."""
    model = _model()
    report = init_model(model, "fixup", seed=0)
    factor = 3 ** (-1 / 2)
    row = report.row("blocks.0.a.weight")
    assert row.std == pytest.approx(math.sqrt(2 / 16) * factor)
    assert model.blocks[0].a.weight.detach().std().item() == pytest.approx(row.std, rel=5 * 2 ** -0.5 / 16)
    zero = report.row("blocks.0.b.weight")
    assert zero.std == 0 and zero.var_out == 0
    assert report.row("head.weight").std == 0


@pytest.mark.parametrize("scheme", ("fixup", "t_fixup", "deepnorm", "gpt2", "skipinit"))
def test_materialize_equals_init_model(scheme):
    eager = _model()
    init_model(eager, scheme, seed=11)
    with initlab.on_meta():
        meta = ResMLP()
    initlab.materialize(meta, seed=11, scheme=scheme)
    ref = dict(eager.named_parameters())
    got = dict(meta.named_parameters())
    assert set(got) == set(ref)
    for name, value in got.items():
        assert torch.equal(value, ref[name]), name


def test_packed_value_block_scaled_alone():
    """T-Fixup on a TransformerEncoderLayer: only the v block of the packed in-projection is scaled."""
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    base = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
    init_model(base, "glorot_uniform", seed=5)
    report = init_model(layer, "t_fixup", seed=5)
    w, w0 = layer.self_attn.in_proj_weight.detach(), base.self_attn.in_proj_weight.detach()
    assert torch.equal(w[:32], w0[:32])
    ratio = (w[32:] / w0[32:]).flatten()
    assert torch.allclose(ratio, ratio[0].expand_as(ratio))
    assert "T-Fixup" in report.notes[-1]


def test_registered_by_name_without_importing_methods():
    code = ("import sys, torch.nn as nn\nfrom initlab.model import init_model\n"
            "assert 'initlab.methods' not in sys.modules\n"
            "m = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))\n"
            "r = init_model(m, 'lsuv', example_input=__import__('torch').randn(16, 4), generator='torch')\n"
            "print(r.scheme)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "lsuv"

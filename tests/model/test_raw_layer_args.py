"""Parameters used through functions (F.conv1d, torch.addmm) are read by where the function takes them: a
bias is never planned as the weight (Mamba's slow path passes its conv weight through a view, its bias
directly)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import initlab


class ViewConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(8, 8, 4, groups=8, padding=3)
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.conv.weight.view(8, 1, 4)
        y = F.conv1d(x.transpose(1, 2), w, self.conv.bias, padding=3, groups=8)[..., : x.shape[1]]
        return self.proj(F.silu(y.transpose(1, 2)))


class AddmmLayer(nn.Module):
    """HF Conv1D's pattern outside a registered module: out = addmm(bias, x, W) with W stored (in, out)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.empty(16, 64))
        self.b = nn.Parameter(torch.empty(64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(torch.addmm(self.b, x, self.w))


def test_a_bias_beside_a_viewed_weight_is_not_planned_as_the_weight() -> None:
    report = initlab.init_model(ViewConv(), "auto", example_input=torch.randn(2, 5, 8), dry_run=True)
    bias, weight = report.row("conv.bias"), report.row("conv.weight")
    assert bias.std == 0.0  # a bias; it was planned std 1 as if it were the weight
    assert weight.status == "init" and weight.std is not None and weight.std > 0


def test_addmm_reads_its_weight_from_mat2_and_its_bias_from_input() -> None:
    report = initlab.init_model(AddmmLayer(), "he_normal", example_input=torch.randn(4, 16), dry_run=True)
    assert report.row("b").std == 0.0
    w = report.row("w")
    assert w.std is not None and abs(w.std - (2 / 16) ** 0.5) < 1e-12  # fan_in 16 of the (in, out) weight


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv, self.out = nn.Linear(8, 24), nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        return self.out(torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v)


def test_a_traced_graph_that_cannot_run_for_sizes_is_named(monkeypatch) -> None:
    """fx discovery reads attention sizes from one interpreted run; when that run fails, the graph says so
    instead of silently predicting as for i.i.d. tokens."""
    from initlab.model import _sizes, discover

    x = torch.randn(2, 5, 8)
    assert not any("did not run" in n for n in discover(Attention(), x, cache=False).notes)

    def fail(self, *args, **kwargs):
        raise RuntimeError("injected")

    monkeypatch.setattr(_sizes, "run_graph", fail)
    graph = discover(Attention(), x, cache=False)
    assert graph.method == "fx"
    assert any("did not run on example_input" in n for n in graph.notes)

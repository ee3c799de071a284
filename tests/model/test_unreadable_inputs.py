"""A weight layer whose input the walker predicts past any trust (an iterative pseudo-inverse, whose
moments it cannot follow) is planned as for a unit input and reported without a prediction, with the
calibration that fixes it. Planned for the predicted input, Nystromformer's output projection drew std
4e-95 (the prediction 1e188) and output exactly zero, silently."""

from __future__ import annotations

import math

import torch
from planned_layer import gaussian
from torch import nn

from initlab.model import init_model

D, N = 64, 16


def iterative_inv(mat: torch.Tensor, n_iter: int = 6) -> torch.Tensor:
    """Nystromformer's Newton-Schulz pseudo-inverse (as HF writes it)."""
    identity = torch.eye(mat.size(-1))
    value = 1 / torch.max(torch.sum(mat, dim=-2)) * mat.transpose(-1, -2)
    for _ in range(n_iter):
        kv = torch.matmul(mat, value)
        value = torch.matmul(0.25 * value, 13 * identity - torch.matmul(kv, 15 * identity - torch.matmul(
            kv, 7 * identity - kv)))
    return value


class PseudoInverse(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.dense = (nn.Linear(D, D) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = torch.softmax(self.q(x) @ self.k(x).transpose(-1, -2) / math.sqrt(D), -1)
        return self.dense(iterative_inv(kernel) @ self.v(x))


def test_an_input_past_trust_is_planned_as_unit_and_reported() -> None:
    torch.manual_seed(0)
    model = PseudoInverse()
    report = init_model(model, "auto", example_input=gaussian(8, N, D, seed=1), seed=0)
    row = next(r for r in report.rows if r.name == "dense.weight")
    assert row.var_out is None and "past what the walker follows" in row.note, row
    assert any(n.startswith("dense: ") and "initlab.lsuv" in n for n in report.notes), report.notes
    # the unit-input plan's std, 1/sqrt(fan_in) (not 1e-95): within 5 s.d. of a D*D sample's std
    std = float(model.dense.weight.detach().std())
    assert abs(std * math.sqrt(D) - 1.0) <= 5 * (1 / (2 * D * D)) ** 0.5, std

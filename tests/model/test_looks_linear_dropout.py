"""A looks-linear layer reads ``[phi(u), phi(-u)]`` and outputs ``A u``: its gain is set for the ``u`` it
reads, which a dropout between the layers (training mode) scales by ``1/keep``. Taken as unit, each layer of
a ReLU chain with dropout 0.5 doubled the second moment: 50 layers output 2^48 for a plan of 1."""

from __future__ import annotations

import torch
from torch import nn

from initlab.model import init_model

WIDTH, DEPTH = 128, 20


def _chain(p: float) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(40, WIDTH), nn.ReLU()]
    for _ in range(DEPTH - 2):
        layers += [nn.Dropout(p), nn.Linear(WIDTH, WIDTH), nn.ReLU()]
    return nn.Sequential(*layers, nn.Dropout(p), nn.Linear(WIDTH, 10)).train()


def test_a_looks_linear_chain_keeps_its_plan_through_dropout() -> None:
    for p in (0.0, 0.5):
        torch.manual_seed(0)
        model = _chain(p)
        report = init_model(model, "auto", example_input=torch.randn(64, 40), seed=0)
        assert any("looks-linear" in r.scheme for r in report.rows)
        predicted = report.rows[-2].var_out
        assert predicted is not None
        with torch.random.fork_rng():
            torch.manual_seed(1)  # the dropout masks
            with torch.no_grad():
                y = model(torch.randn(4096, 40, generator=torch.Generator().manual_seed(2)))
        per_sample = y.double().square().mean(1)
        tol = 5 * float(per_sample.std()) / len(per_sample) ** 0.5
        # 5 standard errors, and 5% for the draw: orthogonal blocks are exact isometries, only the first
        # layer's Gaussian input and the masks' per-sample spread remain
        assert abs(float(per_sample.mean()) - predicted) <= tol + 0.05 * predicted, (p, per_sample.mean())

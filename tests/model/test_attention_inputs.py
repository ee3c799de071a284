"""``nn.MultiheadAttention(query, key, value)`` with three different inputs: each of its q, k and v
projections is planned for its own input. A pooling head (SigLIP's, a set transformer's) asks a learned
probe, constant over the batch and small, about the tokens: planned for the probe alone, the packed
projection drew std 1.0 for the values too, and the head's output measured 1200x its plan."""

from __future__ import annotations

import torch
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

from initlab.model import init_model

D, N = 128, 16


class ProbePool(nn.Module):
    """A learned query (xavier-sized, as SigLIP's ``probe``) attending over the tokens."""

    def __init__(self) -> None:
        super().__init__()
        self.probe = nn.Parameter(torch.randn(1, 1, D) / D**0.5)
        self.attn = nn.MultiheadAttention(D, 4, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(self.probe.expand(x.shape[0], -1, -1), x, x)[0]


class Cross(nn.Module):
    """Keys and values of their own widths and scales (``kdim``/``vdim``: separate projections)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(D, 4, kdim=32, vdim=48, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attn(x, 3.0 * x[..., :32], 0.5 * x[..., 32:80])[0]


def test_each_attention_projection_is_planned_for_its_own_input() -> None:
    for cls in (ProbePool, Cross):
        for model_cls, method in ((cls, "fx"), (untraceable(cls), "hooks")):
            torch.manual_seed(0)
            model = model_cls()
            predicted = planned(model, "attn", gaussian(64, N, D, seed=1), method)
            m2, tol = measured(model, "attn", gaussian(512, N, D, seed=3))
            # 5 standard errors of the measurement; 20% for the draw and the rule: the softmax average's kept
            # share is a Monte-Carlo expectation over the logits (a few %), and out_proj's and v's 128-wide
            # rows realize their mean squared norms within ~1.6% each (one s.d.)
            assert abs(m2 - predicted) <= tol + 0.2 * predicted, (cls.__name__, method, m2, predicted)


def test_a_packed_projection_draws_each_block_for_its_input() -> None:
    """The probe's q block and the tokens' k/v blocks of ``in_proj_weight``: each 1/sqrt(fan_in q_input)."""
    torch.manual_seed(0)
    model = ProbePool()
    init_model(model, "auto", example_input=gaussian(64, N, D, seed=1), seed=0)
    q, k, v = model.attn.in_proj_weight.detach().chunk(3)
    probe_q = float(model.probe.detach().square().mean())
    for block, q_in in ((q, probe_q), (k, 1.0), (v, 1.0)):
        want = 1.0 / (D * q_in)
        # a block's D*D entries: their mean square within 5 s.d. (sqrt(2 / D^2) of it)
        assert abs(float(block.square().mean()) - want) <= 5 * want * (2 / D**2) ** 0.5, (want, block.std())

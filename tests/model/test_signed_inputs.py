"""An elementwise function of an input whose sign is known is integrated over that side only. A selective
scan's decay ``exp(A * dt)`` (``A = -exp(A_log) <= 0``, ``dt = softplus(.) >= 0``, as in Mamba and Jamba)
is below 1; as a Gaussian about its mean ``E[exp(2 z)]`` came out 6.7e5, the scan multiplied it step after
step and the projection after it was planned for an input of 1e88 (Jamba's ``out_proj`` drew std 4e-45)."""

from __future__ import annotations

import math

import numpy as np
import torch
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

from initlab.catalog.activations import Activation
from initlab.model import _signs

D, T = 64, 16


class Scan(nn.Module):
    """``h_t = exp(A dt_t) h_{t-1} + dt_t u_t`` over ``T`` steps, then ``out``; ``A_log`` as Mamba's."""

    def __init__(self) -> None:
        super().__init__()
        self.u, self.dt, self.out = nn.Linear(D, D), nn.Linear(D, D), nn.Linear(D, D)
        self.A_log = nn.Parameter(torch.log(torch.arange(1, 17, dtype=torch.float32)).repeat(D // 16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, dt = self.u(x), nn.functional.softplus(self.dt(x))
        decay = torch.exp(-torch.exp(self.A_log.float()) * dt)
        h = torch.zeros_like(u[:, 0])
        states = []
        for t in range(T):
            h = decay[:, t] * h + dt[:, t] * u[:, t]
            states.append(h)
        return self.out(torch.stack(states, 1))


def test_a_decay_of_known_sign_is_planned_below_one_in_both_discoveries() -> None:
    for cls, method in ((Scan, "fx"), (untraceable(Scan), "hooks")):
        torch.manual_seed(0)
        model = cls()
        predicted = planned(model, "out", gaussian(64, T, D, seed=1), method)
        m2, tol = measured(model, "out", gaussian(256, T, D, seed=3))
        # within 1.5x: the decay's magnitude is modelled as a Gamma of its mean and variance (its law is a
        # mixture over the 16 rates), which sets how much of the past each state keeps
        assert predicted / 1.5 - tol <= m2 <= 1.5 * predicted + tol, (method, m2, predicted)


def test_the_sign_of_a_function_is_read_on_its_inputs_side() -> None:
    exp = Activation("exp", np.exp)
    neg = Activation("neg", np.negative)
    tanh = Activation("tanh", np.tanh)
    assert _signs.act_sign(exp, 0) == 1
    assert _signs.act_sign(neg, 1) == -1 and _signs.act_sign(neg, 0) == 0
    assert _signs.act_sign(tanh, -1) == -1 and _signs.act_sign(tanh, 0) == 0


def test_signed_moments_match_the_gamma_they_model() -> None:
    """``E[exp(-G)]`` and ``E[exp(-2G)]`` for ``G ~ Gamma(k, theta)`` are ``(1 + theta)^-k``, ``(1 +
    2 theta)^-k``: the quadrature gives them to 1e-3 (its worst here: shape 0.1 against ``exp(-40 G)``)."""
    exp = Activation("exp", np.exp)
    for mean, var in ((3.63, 10.3), (0.5, 0.01), (2.0, 40.0)):
        k, theta = mean * mean / var, var / mean
        got = _signs.signed_moments(exp, -mean, var, -1)
        assert got is not None
        assert math.isclose(got[0], (1 + theta) ** -k, rel_tol=1e-3), (mean, var, got)
        assert math.isclose(got[1], (1 + 2 * theta) ** -k, rel_tol=1e-3), (mean, var, got)
    assert _signs.signed_moments(exp, 1.0, 1.0, 0) is None  # no sign known: the Gaussian's

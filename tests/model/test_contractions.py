"""An ``einsum`` of two operands sums the products its output drops: ``K`` of them, read from the equation
and the example's shapes (it was read as its larger operand); a parameter no rule draws, contracted by an
``einsum``, enters with its values (it was left out); ``gather`` picks entries of its first operand (it was
read as the larger of the source and the indices), as does ``F.embedding`` of a table that is data (a
codebook buffer). Funnel's positional attention does the first three: its first projection measured 0.29x
its plan."""

from __future__ import annotations

import math

import torch
from planned_layer import gaussian, measured, planned, untraceable
from torch import nn

from initlab.model import _sizes

D, N = 64, 16


class EinsumAttention(nn.Module):
    """Attention written as two einsums, logits of variance 4 (scale 2 / sqrt(D))."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.k, self.v, self.proj = (nn.Linear(D, D) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.einsum("bid,bjd->bij", self.q(x), self.k(x)) * (2 / math.sqrt(D))
        return self.proj(torch.einsum("bij,bjd->bid", logits.softmax(-1), self.v(x)))


class Kernel(nn.Module):
    """``x`` contracted with a kernel no rule draws (it keeps its values: std 0.3, K = 64)."""

    def __init__(self) -> None:
        super().__init__()
        self.kernel = nn.Parameter(0.3 * torch.randn(D, D))
        self.out = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.einsum("bnd,de->bne", x, self.kernel))


class Gathered(nn.Module):
    """Every other token picked by ``gather`` (as token-pruning ViTs keep the tokens they score best)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = (2 * torch.arange(N // 2))[None, :, None].expand(x.shape[0], N // 2, D)
        return self.proj(torch.gather(x, 1, index))


class Codebook(nn.Module):
    """A vector quantizer: each token replaced by its nearest row of a codebook buffer (std 0.5), looked up
    by ``F.embedding`` (EnCodec's)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("codebook", 0.5 * torch.randn(32, D))
        self.proj = nn.Linear(D, D)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        codes = torch.cdist(x, self.codebook.expand(x.shape[0], -1, -1)).argmin(-1)
        return self.proj(nn.functional.embedding(codes, self.codebook))


CASES = [(EinsumAttention, "proj", 0.25, "fx"), (Kernel, "out", 0.1, "fx"),
         (Gathered, "proj", 0.1, "hooks"),  # (fx does not trace a gather by a built index: hooks both ways)
         (Codebook, "proj", 0.1, "hooks")]


def test_contractions_and_gathers_are_planned_as_they_compute() -> None:
    for cls, layer, rule_tol, method in CASES:
        for model_cls, how in ((cls, method), (untraceable(cls), "hooks")):
            torch.manual_seed(0)
            model = model_cls()
            predicted = planned(model, layer, gaussian(64, N, D, seed=1), how)
            m2, tol = measured(model, layer, gaussian(256, N, D, seed=3))
            # 5 standard errors; for the draw, 10% (a 64-wide layer's rows: ~1.8% s.d. of their mean squared
            # norm, and the kernel's realized mean square against 0.09, ~1.1%), 25% with a softmax average
            # (its kept share a Monte-Carlo expectation over Gaussian logits)
            assert abs(m2 - predicted) <= tol + rule_tol * predicted, (cls.__name__, how, m2, predicted)


def test_an_einsum_contracts_the_indices_its_output_drops() -> None:
    a, b = torch.zeros(2, 3, 4), torch.zeros(2, 4, 5)
    assert _sizes.einsum_contraction(("bij,bjk->bik", a, b)) == (4.0,)
    assert _sizes.einsum_contraction(("bij,bjk", a, b)) == (8.0,)  # implicit output: repeated b is summed
    assert _sizes.einsum_contraction(("...ij,...jk->...ik", [a, b])) == (4.0,)
    assert _sizes.einsum_contraction(("bij,bjk,bkl->bil", a, b, b)) == ()  # three operands: not read

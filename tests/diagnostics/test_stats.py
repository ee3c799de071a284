"""The measurements themselves: thresholds from the catalog, dead/saturated fractions, symmetry, rank,
moments and the Jacobian spectrum, each against a value computed independently."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import initlab
from initlab.diagnostics import stats
from initlab.diagnostics.jacobian import jacobian_spectrum
from initlab.diagnostics.profiles import GRID, profile
from initlab.diagnostics.recorder import forward_fields
from initlab.diagnostics.sites import Site

STEP = float(GRID[1] - GRID[0])


@pytest.mark.parametrize(
    ("name", "edge"),
    [
        ("tanh", math.atanh(math.sqrt(0.95))),  # 1 - tanh² = 0.05
        ("sigmoid", math.log((1 + math.sqrt(0.95)) / (1 - math.sqrt(0.95)))),  # s(1-s) = 0.05/4
        ("softsign", math.sqrt(20) - 1),  # 1/(1+x)² = 0.05
        ("hardtanh", 1.0),
    ],
)
def test_saturation_threshold_is_where_the_derivative_drops_to_5_percent(name: str, edge: float) -> None:
    p = profile(initlab.activation(name))
    assert p.saturation is not None
    low, high = p.saturation
    # central differences on the grid: a few grid steps (softsign's kink at 0 lowers the numeric peak by h)
    assert high == pytest.approx(edge, abs=4 * STEP) and low == pytest.approx(-edge, abs=4 * STEP)
    assert p.dead_edge is None


def test_thresholds_of_a_callable_activation() -> None:
    steep = initlab.activation(lambda x: np.tanh(2 * x))
    steep = type(steep)(steep.name, steep.fn, {}, can_die=False, saturates=True)
    p = profile(steep)
    assert p.saturation is not None
    assert p.saturation[1] == pytest.approx(math.atanh(math.sqrt(0.95)) / 2, abs=2 * STEP)
    x = torch.linspace(-3, 3, 7)
    assert torch.allclose(p.fn(x), torch.tanh(2 * x))


@pytest.mark.parametrize(("name", "edge"), [("relu", 0.0), ("relu6", 0.0), ("hardsigmoid", -3.0)])
def test_dead_edge(name: str, edge: float) -> None:
    assert profile(initlab.activation(name)).dead_edge == pytest.approx(edge, abs=STEP)


@pytest.mark.parametrize("name", ["leaky_relu", "gelu", "elu", "linear", "silu"])
def test_non_dying_non_saturating(name: str) -> None:
    p = profile(initlab.activation(name))
    assert p.dead_edge is None and p.saturation is None


def test_dead_and_saturated_fractions_on_a_designed_tensor() -> None:
    # 8 samples x 4 units: unit 0 never positive, unit 1 positive once, units 2-3 mixed
    z = torch.randn(8, 4, generator=torch.Generator().manual_seed(0)).abs() + 0.1
    z[:, 0] *= -1
    z[:, 1] = -z[:, 1]
    z[3, 1] = 0.5
    z[::2, 2] *= -1
    relu = forward_fields(
        z, Site("l", nn.Identity(), "linear", None), profile(initlab.activation("relu")), 10
    )
    assert relu["dead"] == 0.25
    assert relu["act"].mean == pytest.approx(float(torch.relu(z).mean()))
    big = torch.tensor([[-3.0, 0.0, 2.0, 2.2], [5.0, -2.1, -2.2, 0.1]])
    tanh = forward_fields(
        big, Site("l", nn.Identity(), "linear", None), profile(initlab.activation("tanh")), 10
    )
    assert tanh["saturated"] == 4 / 8  # -3, 2.2, 5, -2.2 lie beyond +-2.178; 2.0 and -2.1 do not
    conv = torch.zeros(2, 3, 4, 4)
    conv[:, 1] = 1.0  # only channel 1 is ever positive
    fields = forward_fields(
        conv, Site("c", nn.Identity(), "conv", None, unit_dim=1), profile(initlab.activation("relu")), 10
    )
    assert fields["dead"] == pytest.approx(2 / 3)


def test_moments_match_numpy_and_survive_huge_float64() -> None:
    x = torch.randn(1000, generator=torch.Generator().manual_seed(0)) * 3 + 1
    m = stats.moments(x)
    a = x.double().numpy()
    assert m.mean == pytest.approx(a.mean()) and m.std == pytest.approx(a.std())
    assert m.rms == pytest.approx(math.sqrt((a**2).mean()))
    huge = torch.tensor([1e200, -1e200, 3e200], dtype=torch.float64)
    assert stats.moments(huge).rms == pytest.approx(math.sqrt((1 + 1 + 9) / 3) * 1e200)
    assert math.isnan(stats.moments(torch.empty(0)).mean)


def test_symmetry_groups_split_by_gradient() -> None:
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    rows = torch.stack([a, a, b, a])
    grads = torch.stack([a, a, a, b])  # unit 3 shares unit 0's weights but gets a different gradient
    s = stats.symmetry(rows, grads)
    assert (s.units, s.groups, s.largest, s.twinned) == (4, 3, 2, 2)
    assert stats.symmetry(rows).groups == 2  # weights alone
    assert stats.symmetry(torch.randn(16, 4)).twinned == 0


def test_unit_rows_with_bias_and_transposed_weights() -> None:
    w = torch.ones(3, 2)
    assert stats.symmetry(stats.unit_rows(w, torch.tensor([0.0, 0.0, 1.0]))).groups == 2
    wt = torch.zeros(2, 3, 1)  # ConvTranspose: (in, out, k); output units on dim 1
    wt[:, 2] = 1.0
    assert stats.symmetry(stats.unit_rows(wt, transposed=True)).groups == 2


def test_effective_rank() -> None:
    assert stats.effective_rank(torch.ones(4, 6)) == pytest.approx(1.0, abs=1e-5)
    assert stats.effective_rank(torch.eye(5)) == pytest.approx(5.0, abs=1e-5)
    assert stats.effective_rank(torch.diag(torch.tensor([1.0, 1.0, 0.0]))) == pytest.approx(2.0, abs=1e-5)
    assert stats.effective_rank(torch.zeros(3, 3)) == 0.0


def test_histogram_counts_every_finite_value() -> None:
    x = torch.tensor([0.0, 1.0, 1.0, 2.0, float("inf"), float("nan")])
    h = stats.histogram(x, bins=4)
    assert sum(h.counts) == 4 and h.edges[0] == 0.0 and h.edges[-1] == 2.0
    assert sum(stats.histogram(torch.zeros(5), bins=3).counts) == 5


def test_jacobian_of_a_linear_net_is_the_weight_product() -> None:
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 5, bias=False), nn.Linear(5, 4, bias=False))
    with torch.no_grad():
        for m in net:
            m.weight.normal_(generator=g)
    x = torch.randn(3, 6, generator=g)
    spec = jacobian_spectrum(net, x)
    s = torch.linalg.svdvals((net[1].weight @ net[0].weight).detach().double())
    assert spec["max"] == pytest.approx(float(s.max()), rel=1e-5)
    assert spec["min"] == pytest.approx(float(s.min()), rel=1e-5)
    assert spec["spread_db"] == pytest.approx(20 * math.log10(float(s.max() / s.min())), rel=1e-4)
    d = initlab.diagnose(net, x, jacobian=True)
    assert d.jacobian is not None and d.jacobian["max"] == pytest.approx(spec["max"], rel=1e-5)


def test_jacobian_separates_samples_under_batchnorm() -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Tanh(), nn.Linear(4, 2))
    spec = jacobian_spectrum(net, torch.randn(8, 4, generator=torch.Generator().manual_seed(0)))
    assert spec["samples"] == 4 and spec["max"] > 0


def test_jacobian_refuses_integer_inputs_and_huge_outputs() -> None:
    with pytest.raises(ValueError, match="floating-point"):
        jacobian_spectrum(nn.Embedding(10, 4), torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="entries"):
        jacobian_spectrum(nn.Linear(4096, 4096), torch.randn(4, 4096))


class Squash(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * torch.tanh(x)


class Shifted(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x - 1)


def test_custom_activation_modules_get_thresholds_from_their_derivative() -> None:
    net = nn.Sequential(nn.Linear(4, 16), Squash(), nn.Linear(16, 16), Shifted(), nn.Linear(16, 2))
    d = initlab.diagnose(net, torch.randn(32, 4, generator=torch.Generator().manual_seed(0)))
    squash, shifted = d.layers[0], d.layers[1]
    assert squash.activation == "Squash" and squash.saturated is not None and squash.dead is None
    assert shifted.activation == "Shifted" and shifted.dead is not None and shifted.saturated is None
    p = profile(initlab.activation(Squash()))
    assert p.saturation is not None
    assert p.saturation[1] == pytest.approx(math.atanh(math.sqrt(0.95)), abs=4 * STEP)
    assert profile(initlab.activation(Shifted())).dead_edge == pytest.approx(1.0, abs=STEP)


def test_symmetry_of_large_matrices_matches_the_exact_row_sort() -> None:
    g = torch.Generator().manual_seed(0)
    rows = torch.randn(300, 80, generator=g)  # above SMALL_ROWS: the projection prefilter decides
    assert rows.numel() > stats.SMALL_ROWS
    rows[7] = rows[3]
    rows[200] = rows[3]
    rows[11] = rows[12]
    rows[50, 0] += 1e-6  # a near twin is not a twin
    rows[51] = rows[50]
    rows[51, 0] -= 1e-6
    grads = torch.randn(300, 80, generator=g)
    grads[200] = grads[3]  # 3 and 200 stay twins, 7 splits off; 11/12 have different gradients
    _, _, counts = torch.unique(rows, dim=0, return_inverse=True, return_counts=True)  # the exact sort
    s = stats.symmetry(rows)
    assert (s.units, s.groups, s.largest, s.twinned) == (300, len(counts), 3, 5) and len(counts) == 297
    s = stats.symmetry(rows, grads)
    assert (s.units, s.groups, s.largest, s.twinned) == (300, 299, 2, 2)


def test_effective_rank_of_large_matrices_is_opt_in() -> None:
    n = stats.RANK_LIMIT
    w = torch.randn(n + 44, n + 144, generator=torch.Generator().manual_seed(0))
    assert stats.effective_rank(w) is None
    with stats.full_rank():
        r = stats.effective_rank(w)
    assert r is not None and 0.6 * n < r < n + 44  # a Gaussian matrix: most of its smaller side
    assert stats.effective_rank(w[:n]) is not None  # one side within the limit: computed


def test_means_of_float32_tensors_match_float64_means() -> None:
    """Summed in the tensors' own dtype (pairwise: error ~ log2(n) roundings of sum|x|), one host transfer."""
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(512, 256, 3, 3, generator=g) * 0.02 + 1e-4, torch.randn(7, generator=g),
               torch.randn(64, generator=g).half(), torch.empty(0), torch.zeros(5, dtype=torch.float64)]
    found = stats.means(tensors)
    assert found[3] is None and found[4] == 0.0
    for t, m in zip(tensors[:3], found[:3], strict=True):
        exact = float(t.double().mean())
        bound = 2 * math.log2(t.numel()) * 2.0 ** -24 * float(t.double().abs().mean()) + 1e-12
        assert m is not None and abs(m - exact) <= bound, (m, exact, bound)


def test_bin_counts_are_torch_histc_counts() -> None:
    """The vectorized binning reproduces histc exactly: edges, the top value, integer-valued data on bin
    edges, float32 and float64, and a constant tensor (whose widened range histc keeps)."""
    g = torch.Generator().manual_seed(0)
    taken = 0
    for trial in range(300):
        dtype = torch.float32 if trial % 3 else torch.float64
        x = torch.randn(int(torch.randint(1, 3000, (1,), generator=g)), generator=g, dtype=dtype)
        x = x * 10.0 ** int(torch.randint(-8, 8, (1,), generator=g))
        x = [x, x.round(), torch.relu(x), (x * 4).round() / 4 + 1000, torch.full_like(x, 3.7)][trial % 5]
        lo, hi = float(x.min()), float(x.max())
        if hi - lo <= 1e-12 * max(abs(lo), abs(hi), 1e-30):
            lo, hi = lo - 0.5, hi + 0.5
        bins = (40, 10, 7)[trial % 3]
        counts = stats._bin_counts(x, lo, hi, bins)
        assert counts is not None
        taken += 1
        assert counts == [int(c) for c in torch.histc(x, bins=bins, min=lo, max=hi).tolist()]
    assert taken == 300
    assert stats._bin_counts(torch.full((4,), 3.7e7), 3.7e7 - 0.5, 3.7e7 + 0.5, 10) is None  # f32 range 0


def test_histograms_counted_together_are_histc_counts() -> None:
    """Pending histograms of float32 and float64 samples of many sizes and ranges (constant, integer-valued
    on bin edges, above the sample size), counted in one batch: exactly histc's counts and edges each."""
    g = torch.Generator().manual_seed(1)
    pending, expected = [], []
    for trial in range(60):
        dtype = torch.float32 if trial % 3 else torch.float64
        x = torch.randn(int(torch.randint(1, 5000, (1,), generator=g)) * (40 if trial == 7 else 1),
                        generator=g, dtype=dtype) * 10.0 ** int(torch.randint(-6, 6, (1,), generator=g))
        x = [x, x.round(), torch.relu(x), torch.full_like(x, -2.5)][trial % 4]
        lo, hi, bins = float(x.min()), float(x.max()), (40, 10, 7)[trial % 3]
        pending.append(stats._pending(x, lo, hi, bins))
        expected.append(stats._histc(x, lo, hi, bins, stats.HIST_SAMPLE))
        x.add_(1.0)  # the pending copy is not a view: an in-place change after the hook does not reach it
    found = stats.histograms(pending)
    assert [h.counts for h in found] == [
        [int(c) for c in torch.histc(stats._sampled(p.sample, stats.HIST_SAMPLE), bins=p.bins, min=p.lo,
                                     max=p.hi).tolist()] for p in pending]
    assert found == expected


def test_batched_weight_statistics_equal_the_single_ones() -> None:
    """Ranks batched by Gram size, a tied weight reduced once, the symmetry screen per weight shape: the
    numbers of the one-tensor functions."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(40, 24, generator=g)
    twins = torch.randn(30, 24, generator=g)
    twins[3] = twins[7]
    weights = [(w, False), (torch.randn(24, 24, generator=g), False), (w, False), (w, True),
               (torch.zeros(5, 5), False), (torch.randn(7), False), (twins, False)]
    ranks = stats.effective_ranks(weights)
    for (t, transposed), rank in zip(weights, ranks, strict=True):
        single = stats.effective_rank(t.T if transposed else t)
        assert rank == pytest.approx(single, rel=1e-12, nan_ok=True)
    assert ranks[0] == ranks[2] and ranks[4] == 0.0
    rows = [stats.unit_rows(t) for t, _ in weights if t.dim() == 2]
    batched = stats.symmetries([(r, lambda r=r: r) for r in rows])
    assert batched == [stats.symmetry(r, r) for r in rows] and batched[-1].twinned == 2


def test_batched_norms_equal_the_single_ones() -> None:
    """Zeros, underflowing squares, float64, empty, None, nan and inf: the fused norms fall back exactly."""
    tensors = [torch.zeros(5), torch.full((4,), 1e-30), torch.tensor([0.0, -0.0]), torch.randn(7),
               torch.zeros(3, dtype=torch.float64), torch.full((2,), 1e-200, dtype=torch.float64), None,
               torch.tensor([float("nan")]), torch.tensor([float("inf"), 1.0]), torch.empty(0),
               torch.full((3,), 1e30)]
    batched = stats.norms(tensors)
    single = [stats.norm(t) for t in tensors]
    assert [str(v) for v in batched] == [str(v) for v in single]
    assert batched[1] == pytest.approx(2e-30) and batched[-1] == pytest.approx(math.sqrt(3) * 1e30)


def test_the_screen_of_wide_rows_gives_the_whole_projection_s_groups() -> None:
    """Rows wider than SCREEN_COLUMNS are screened on a fixed subset of columns first; twins agree there, and
    rows that agree there but differ elsewhere, or hold a non-finite entry, are screened whole: every
    case gets the groups of the one-matrix exact path."""
    g = torch.Generator().manual_seed(0)
    n = 3 * stats.SCREEN_COLUMNS
    cols = stats._columns(n, torch.device("cpu"))
    assert cols is not None and len(cols) == stats.SCREEN_COLUMNS
    outside = next(c for c in range(n) if c not in set(cols.tolist()))
    distinct = torch.randn(40, n, generator=g)
    twins = distinct.clone()
    twins[5] = twins[9]
    subset_twins = distinct.clone()  # rows 2 and 3 equal on the subset, not elsewhere
    subset_twins[3] = subset_twins[2]
    subset_twins[3, outside] += 1.0
    nan_outside = distinct.clone()
    nan_outside[0, outside] = float("nan")
    zero_rows = torch.zeros(40, n)
    mats = [distinct, twins, subset_twins, nan_outside, zero_rows]
    assert stats._project(subset_twins[:, cols].unsqueeze(0)) == [True]  # the subset flags; the whole, not
    whole = [stats._project(m.unsqueeze(0))[0] for m in mats]
    lazy = [stats.UnitRows(m, None) for m in mats]
    assert stats._screen(lazy) == whole == [False, True, False, True, True]
    assert stats._screen([stats.UnitRows(distinct, None)] * 2) == [False, False]
    found = stats.symmetries([(m, lambda m=m: None) for m in mats])
    assert found == [stats.symmetry(m) for m in mats]
    assert [s.groups for s in found[:3]] == [40, 39, 40] and found[4].groups == 1
    # with the bias as the last column: twins in weights whose biases differ are not twins
    def bias_screened(width: int) -> bool:
        return int(stats._columns(width + 1, torch.device("cpu"))[-1]) == width

    widths = range(stats.SCREEN_COLUMNS + 1, n)
    outside_width = next(k for k in widths if not bias_screened(k))
    for width in (outside_width, next(k for k in widths if bias_screened(k))):
        w, b = twins[:, :width], torch.randn(40, generator=g)
        rows = stats.UnitRows.of(w, b)
        assert torch.equal(rows.rows(), stats.unit_rows(w, b))
        sub = stats._columns(width + 1, torch.device("cpu"))
        assert torch.equal(rows.columns(sub), rows.rows()[:, sub])
        assert stats.symmetries([(rows, lambda: None)]) == [stats.symmetry(rows.rows())]
        assert stats.symmetries([(rows, lambda: None)])[0].groups == 40
        b[5] = b[9]
        assert stats.symmetries([(stats.UnitRows.of(w, b), lambda: None)])[0].groups == 39

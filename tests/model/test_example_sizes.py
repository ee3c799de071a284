"""Sizes discovery reads from the example forward pass (``initlab.model._sizes``). A zero-padded convolution
on a small map: some of its kernel taps read the padding, not the input, so its output second moment is that
share of the unpadded one (a 7x7 depthwise conv on the 2x2 maps a 64x64 image leaves ConvNeXt's last stage
reads 4 of 49 taps); discovery reads the share, auto scales for it and says so, and every scheme's predicted
output second moment includes it. An average pool keeps a share of its input's variance that depends on how
correlated the positions are: read across samples."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initlab.model import discover, init_model
from initlab.model._sizes import (
    MAX_ROWS,
    _quantiles,
    _tap_reads,
    _transposed_tap_reads,
    border_fraction,
    call_sizes,
    index_share,
    key_counts,
    transposed_border_fraction,
)


def _brute(n: int, k: int, stride: int, dil: int, left: int, right: int) -> float:
    out = (n + left + right - dil * (k - 1) - 1) // stride + 1
    inside = [sum(0 <= o * stride - left + t * dil < n for t in range(k)) for o in range(out)]
    return sum(inside) / (len(inside) * k)


def test_taps_fraction_counts_the_taps_inside_the_map():
    grid = itertools.product((1, 2, 5, 8), (1, 3, 7), (1, 2), (1, 2), (0, 1, 3), (0, 2))
    for n, k, stride, dil, left, right in grid:
        if (n + left + right - dil * (k - 1) - 1) // stride + 1 <= 0:
            continue
        reads = _tap_reads(n, k, stride, dil, left, right)
        assert sum(reads) / k == pytest.approx(_brute(n, k, stride, dil, left, right), abs=1e-12)


def test_border_fraction_of_a_depthwise_conv_on_a_2x2_map_is_4_of_49():
    conv = nn.Conv2d(8, 8, 7, padding=3, groups=8)
    # on 2x2, taps 2, 3, 4 of each dim read the map at 1/2, 2/2, 1/2 of the positions: shared 1.5 / 2
    assert border_fraction(conv, torch.zeros(1, 8, 2, 2)) == pytest.approx((4 / 49, 0.75**2))
    assert border_fraction(conv, torch.zeros(1, 8, 1, 1)) == pytest.approx((1 / 49, 1.0))
    assert border_fraction(nn.Conv2d(8, 8, 3), torch.zeros(1, 8, 2, 2)) == ()  # no padding
    same = nn.Conv1d(4, 4, 4, padding="same")  # asymmetric: 1 left, 2 right
    assert border_fraction(same, torch.zeros(1, 4, 3))[0] == pytest.approx(_brute(3, 4, 1, 1, 1, 2))


class Untraceable(nn.Sequential):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # data-dependent control flow: hooks discovery
        return super().forward(x) if bool(x.sum() != 0) else x


def _stack(cls: type[nn.Sequential] = nn.Sequential, mode: str = "zeros") -> nn.Sequential:
    return cls(nn.Conv2d(3, 64, 3, padding=1, padding_mode=mode), nn.ReLU(),
               nn.Conv2d(64, 256, 7, padding=3, padding_mode=mode), nn.ReLU(),
               nn.Conv2d(256, 256, 7, padding=3, groups=256, padding_mode=mode))


def _measured(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Each conv's output second moment and 5 standard errors of it (over its output channels, which are
    independent draws given the input)."""
    got: dict[str, tuple[float, float]] = {}
    for name, m in model.named_children():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(lambda mod, a, out, name=name: got.__setitem__(name, _mean_se(out)))
    with torch.no_grad():
        model(x)
    return got


def _mean_se(out: torch.Tensor) -> tuple[float, float]:
    per_channel = out.double().square().mean(dim=(0, 2, 3))
    return float(per_channel.mean()), 5 * float(per_channel.std()) / per_channel.numel() ** 0.5


@pytest.mark.parametrize("cls, method", [(nn.Sequential, "fx"), (Untraceable, "hooks")])
def test_auto_plans_each_padded_conv_for_the_taps_that_read_the_example(cls, method):
    g = torch.Generator().manual_seed(0)
    x, fresh = torch.randn(16, 3, 2, 2, generator=g), torch.randn(16, 3, 2, 2, generator=g)
    model = _stack(cls)
    report = init_model(model, "auto", example_input=x, seed=0)
    assert report.method == method
    rows = {r.name: r for r in report.rows}
    got = _measured(model, fresh)
    for layer in ("0", "2", "4"):
        mean, se = got[layer]
        predicted = rows[f"{layer}.weight"].var_out
        assert abs(mean - predicted) < se, (layer, mean, predicted)
    assert "8% of the kernel's taps" in rows["4.weight"].note
    assert discover(model, x).layer("4").taps_read == pytest.approx(4 / 49)


def test_he_normal_predicts_the_padded_output_it_gives():
    g = torch.Generator().manual_seed(1)
    x, fresh = torch.randn(16, 3, 2, 2, generator=g), torch.randn(16, 3, 2, 2, generator=g)
    model = _stack()
    report = init_model(model, "he_normal", example_input=x, seed=0)
    rows = {r.name: r for r in report.rows}
    mean, se = _measured(model, fresh)["4"]
    assert rows["4.weight"].var_out < 0.5  # the unpadded prediction would be ~1
    assert abs(mean - rows["4.weight"].var_out) < se


def test_replicate_padding_reads_the_input_at_every_tap():
    x = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(2))
    graph = discover(_stack(mode="replicate"), x)
    assert all(info.taps_read == 1.0 for info in graph.layers)


def test_an_average_pools_kept_share_is_read_across_samples_only():
    from initlab.model._sizes import call_sizes

    g = torch.Generator().manual_seed(3)
    x = torch.randn(64, 8, 4, 4, generator=g)  # independent positions: a 4x4 mean keeps 1/16
    (keep,) = call_sizes("mean", (x, (2, 3)), {}, x.mean((2, 3)))
    assert abs(keep - 1 / 16) < 5 * (1 / 16) * (2 / (64 * 8)) ** 0.5  # 5 standard errors of a variance ratio
    same = torch.randn(64, 8, 1, 1, generator=g).expand(64, 8, 4, 4)  # equal positions: kept whole
    assert call_sizes("mean", (same, (2, 3)), {}, same.mean((2, 3))) == pytest.approx((1.0,))
    square = torch.randn(8, 8, 4, generator=g)  # a mean over dim 0 leaves no batch, even when shapes agree
    assert call_sizes("mean", (square, 0), {}, square.mean(0)) == ()
    assert call_sizes("mean", (x,), {}, x.mean()) == ()


class _Defaults(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.scale = nn.Linear(4, 4), nn.Parameter(torch.full((4,), 2.0))

    def forward(self, x: torch.Tensor, shift: float = 1.0) -> torch.Tensor:
        return (self.fc(x).relu() * self.scale).sum(-1) + shift  # a module, a method, a parameter, a default


def test_run_graph_computes_what_the_model_does():
    from torch import fx

    from initlab.model._sizes import run_graph

    model, x = _Defaults(), torch.randn(3, 4)
    graph = fx.symbolic_trace(model).graph
    outs: list[torch.Tensor] = []
    run_graph(graph, model, [x], lambda n, args, kwargs, out: outs.append(out))
    assert torch.equal(outs[-1], model(x))
    with pytest.raises(TypeError):
        run_graph(graph, model, [], lambda *a: None)  # x has no default


def test_a_padded_convs_response_to_a_constant_is_shared_as_predicted():
    """A constant map through a 7x7 conv on 2x2: the corners read different taps, so only ``s`` of the
    response's second moment is the same at every position (over 4096 output channels' weights)."""
    conv = nn.Conv2d(1, 4096, 7, padding=3, bias=False)
    nn.init.normal_(conv.weight, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        y = conv(torch.ones(1, 1, 2, 2)).double()[0]  # (channels, 2, 2)
    shared = y.mean((1, 2)).square()
    total = y.square().mean((1, 2))
    ratio = float(shared.sum() / total.sum())
    _, s = border_fraction(conv, torch.ones(1, 1, 2, 2))
    se = float((shared / total.mean()).std()) / 4096**0.5
    assert abs(ratio - s) < 5 * se, (ratio, s, se)


class _ZeroNormThenPool(nn.Module):
    """timm's ResNet with ``zero_init_last``: the norm before a squeeze-excitation's pool starts at zero."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn, self.fc = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.Linear(8, 4)
        nn.init.zeros_(self.bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


def test_an_average_the_example_cannot_show_is_named():
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    report = init_model(_ZeroNormThenPool(), "he_normal", example_input=x, seed=0, dry_run=True)
    assert any("average pool(s) (before fc)" in n for n in report.notes), report.notes
    model = _ZeroNormThenPool()
    nn.init.ones_(model.bn.weight)  # the example shows it: no note
    report = init_model(model, "he_normal", example_input=x, seed=0, dry_run=True)
    assert not any("average pool" in n for n in report.notes)


def test_an_average_the_example_cannot_show_keeps_one_over_its_window():
    """Unmeasured, a global pool over 8x8 positions that share nothing keeps ~1/64 of its input's variance,
    not the half assumed before: seresnet18's squeeze-excitation layers measured 0.007x their plan."""
    x = lambda seed: torch.randn(16, 3, 8, 8, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    model = _ZeroNormThenPool()
    report = init_model(model, "auto", example_input=x(1), seed=0)
    assert float(model.bn.weight.detach().abs().min()) > 0  # auto's norm gains: the pool now reads a signal
    pred = next(r.var_out for r in report.rows if r.name == "fc.weight")
    with torch.no_grad():
        got = float(model(x(2)).double().square().mean())
    assert 1 / 3 < got / pred < 3, (got, pred)


class _TableMLP(nn.Module):
    """Swin-V2's continuous position bias: an MLP over a fixed buffer of log-spaced relative coordinates."""

    def __init__(self) -> None:
        super().__init__()
        coords = torch.stack(torch.meshgrid(torch.arange(-7.0, 8), torch.arange(-7.0, 8), indexing="ij"), -1)
        table = torch.sign(coords) * torch.log2(coords.abs() + 1.0) / 3.0
        self.register_buffer("table", table.reshape(-1, 2), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 4, bias=False))
        self.proj = nn.Linear(16, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.mlp(self.table)  # (225, 4)
        return self.proj(x) + bias.mean()


class _TableMLPHooks(_TableMLP):
    """The same, with data-dependent control flow: fx cannot trace it, so discovery runs the hooked pass."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if bool(x.isnan().any()):
            return x
        return super().forward(x)


@pytest.mark.parametrize(("model_cls", "method"), [(_TableMLP, "fx"), (_TableMLPHooks, "hooks")])
def test_a_buffer_is_read_as_its_value(model_cls: type, method: str):
    """A buffer is no weight a plan writes: its value (Swin-V2's relative coordinates) gives the layers
    reading it a prediction, where they were planned for "a zero input" -- in both discovery passes."""
    from initlab.model import discover

    x = torch.randn(8, 16, generator=torch.Generator().manual_seed(1))
    model = model_cls()
    assert discover(model, x).method == method
    report = init_model(model, "auto", example_input=x, seed=0)
    row = next(r for r in report.rows if r.name == "mlp.0.weight")
    assert row.var_out is not None, row.note
    with torch.no_grad():
        got = float(model.mlp[0](model.table).double().square().mean())
    assert 1 / 3 < got / row.var_out < 3, (got, row.var_out)


class _SqueezeExcite(nn.Module):
    """EfficientNet's block on a small map: conv, BatchNorm, SiLU, then a squeeze-excitation whose pool
    averages the normalized signal's positions."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(8, 64, 3, padding=1), nn.BatchNorm2d(64)
        self.fc1, self.fc2 = nn.Conv2d(64, 16, 1), nn.Conv2d(16, 64, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.silu(self.bn(self.conv(x)))
        s = self.fc1(h.mean((2, 3), keepdim=True))
        return h * torch.sigmoid(self.fc2(F.silu(s)))


class _SqueezeExciteHooks(_SqueezeExcite):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if bool(x.isnan().any()) else super().forward(x)


@pytest.mark.parametrize(("model_cls", "method"), [(_SqueezeExcite, "fx"), (_SqueezeExciteHooks, "hooks")])
def test_a_batchnorm_in_training_mode_normalizes_the_example_by_its_batch(model_cls: type, method: str):
    """The plan is for the first training step, where a BatchNorm in training mode normalizes by the batch:
    the example pass runs it so, whatever its running statistics hold (in eval mode it used them, and
    EfficientNet-B7's squeeze-excitation layers measured 0.3x their plan after one warm-up forward). Its
    running statistics are left as they were."""
    g = torch.Generator().manual_seed(4)
    x, fresh = torch.randn(16, 8, 2, 2, generator=g), torch.randn(16, 8, 2, 2, generator=g)
    plans = []
    for mean, var in ((0.0, 1.0), (3.0, 50.0)):  # fresh, and as if loaded from another model
        torch.manual_seed(0)
        model = model_cls().train()
        model.bn.running_mean.fill_(mean), model.bn.running_var.fill_(var)
        report = init_model(model, "auto", example_input=x, seed=0, dry_run=True)
        assert report.method == method
        assert torch.equal(model.bn.running_var, torch.full((64,), var))
        assert int(model.bn.num_batches_tracked) == 0
        plans.append({r.name: (r.scheme, r.var_out) for r in report.rows})
    assert plans[0] == plans[1]
    init_model(model, "auto", example_input=x, seed=0)
    got = []
    model.fc1.register_forward_hook(lambda m, a, out: got.append(float(out.double().square().mean())))
    with torch.no_grad():
        model(fresh)
    pred = plans[1]["fc1.weight"][1]
    assert 1 / 3 < got[0] / pred < 3, (got, pred)


def test_a_batchnorm_that_cannot_take_batch_statistics_uses_its_running_ones():
    """One sample on a 1x1 map: one value per channel, which a BatchNorm in training mode refuses."""
    model = nn.Sequential(nn.Conv2d(3, 8, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1)).train()
    init_model(model, "auto", example_input=torch.randn(1, 3, 1, 1), seed=0, dry_run=True)
    assert model[1].training and int(model[1].num_batches_tracked) == 0  # planned, and nothing leaked


def test_a_sync_batchnorm_stays_in_eval_mode_in_the_example_pass():
    """By the batch, a SyncBatchNorm would synchronize with other ranks (a collective they may never join
    when one rank initializes alone): discovery runs it on its running statistics."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.SyncBatchNorm(8), nn.ReLU(), nn.Conv2d(8, 4, 1)).train()
    seen = []
    model[1].register_forward_pre_hook(lambda m, a: seen.append(m.training))
    init_model(model, "auto", example_input=torch.randn(4, 3, 6, 6), seed=0, dry_run=True)
    assert seen == [False] and model[1].training


def test_index_share_counts_the_pairs_of_positions_that_read_one_row() -> None:
    """Ordered pairs i != j of a sample's positions with equal ids, over all such pairs: [1, 1, 2, 3] has
    2 of 12; all-zero token types 1; positions 0."""
    assert index_share(torch.tensor([[1, 1, 2, 3]])) == (pytest.approx(2 / 12),)
    assert index_share(torch.zeros(3, 16, dtype=torch.long)) == (pytest.approx(1.0),)
    assert index_share(torch.arange(16).repeat(3, 1)) == (pytest.approx(0.0),)
    assert index_share(torch.tensor([[5, 5], [7, 8]])) == (pytest.approx(0.5),)  # per sample, averaged
    assert index_share(torch.randn(2, 4)) == ()  # not ids


def test_a_zero_pad_and_the_slice_that_crops_it_give_the_share_of_positions_that_carry_the_signal() -> None:
    x = torch.randn(2, 5, 5, 8)
    padded = F.pad(x, (0, 0, 0, 3, 0, 3))  # 5x5 -> 8x8: 25 of 64 positions are x's
    assert call_sizes("pad", (x, (0, 0, 0, 3, 0, 3)), {}, padded) == (25 / 64,)
    assert call_sizes("getitem", (padded, (slice(None), slice(0, 5), slice(0, 5))), {},
                      padded[:, :5, :5]) == (25 / 64,)
    # not a zero pad, or a slice that keeps everything: no share
    m, edges = x.permute(0, 3, 1, 2), (1, 1, 1, 1)
    assert call_sizes("pad", (m, edges), {"mode": "reflect"}, F.pad(m, edges, mode="reflect")) == ()
    # a pad by another constant: of the last dim alone, the parts a slice takes back (8 of 10 entries x's,
    # 1 of 10 before them); of another dim, nothing
    assert call_sizes("pad", (x, (1, 1)), {"value": 1.0}, F.pad(x, (1, 1), value=1.0)) == (0.8, 1.0, 0.1)
    assert call_sizes("pad", (x, (0, 0, 1, 1)), {"value": 1.0}, F.pad(x, (0, 0, 1, 1), value=1.0)) == ()
    assert call_sizes("getitem", (x, slice(None)), {}, x[:]) == ()
    assert call_sizes("getitem", ((x, x), 0), {}, x) == ()  # a tuple's item


@pytest.mark.parametrize(("shape", "dim"), [((1, 3, 8192, 64), 2), ((2, 4096, 8, 16), 1)])
def test_key_counts_read_on_some_rows_are_the_whole_readings_quantiles(shape: tuple[int, ...], dim: int
                                                                      ) -> None:
    """A softmax's key counts are read on about MAX_ROWS evenly spaced rows: with the keys a row may see
    cycling 1..K along the rows (a causal mask's pattern, per block) or along another leading dim, the 8
    quantiles stay within one subsampling step of the whole tensor's."""
    keys = shape[-1]
    index = torch.arange(shape[dim]).reshape([-1 if d == dim else 1 for d in range(len(shape) - 1)])
    allowed = torch.arange(keys) <= (index % keys)[..., None]
    probs = torch.zeros(shape).masked_fill(~allowed, float("-inf")).softmax(-1)
    rows = probs.numel() // keys
    assert rows > MAX_ROWS  # the subsampled path
    whole = _quantiles((probs > 0).sum(-1))
    some = key_counts(probs, -1)
    assert len(some) == len(whole) == 8 and whole[0] < whole[-1]
    for a, b in zip(some, whole, strict=True):
        assert abs(a - b) <= -(-rows // MAX_ROWS)
    assert key_counts(probs.transpose(-1, -2), -2) == some  # the softmax dim need not be the last


@pytest.mark.parametrize(
    ("k", "stride", "padding", "dilation", "n"),
    [(3, 1, 1, 1, 2), (4, 2, 1, 1, 2), (3, 2, 0, 1, 3), (2, 2, 0, 1, 4), (3, 1, 0, 2, 3)],
)
def test_transposed_border_fraction_counts_the_taps_each_output_sums(k: int, stride: int, padding: int,
                                                                    dilation: int, n: int) -> None:
    """``f``: the taps each output position sums (all-ones input and weights) over the k / s per dim its
    fan-in counts; ``s``: the share of a constant input's response (random taps) common to all positions."""
    conv = nn.ConvTranspose2d(1, 1, k, stride=stride, padding=padding, dilation=dilation, bias=False)
    x = torch.ones(1, 1, n, n)
    with torch.no_grad():
        conv.weight.fill_(1.0)
        counts = conv(x)
        taps = torch.randn(2000, 1, k, k, generator=torch.Generator().manual_seed(0))
        responses = torch.stack([F.conv_transpose2d(x, w[None], stride=stride, padding=padding,
                                                    dilation=dilation) for w in taps]).flatten(1)
    f, shared = transposed_border_fraction(conv, x, counts)
    assert f == pytest.approx(float(counts.mean()) / (k / stride) ** 2)
    # E[y_o y_o'] over pairs of positions / E[y_o^2], from 2000 random filters (each entry N(0, taps))
    between = float((responses.mean(1) ** 2).mean() - (responses**2).mean() / responses.shape[1])
    within = float((responses**2).mean()) * (1 - 1 / responses.shape[1])
    assert shared == pytest.approx(between / within, abs=5 * 2 ** 0.5 / 2000**0.5)


@pytest.mark.parametrize(("args", "share"), [((32, 3, 1, 1, 0, 32), "44%"), ((16, 4, 2, 1), "")])
def test_auto_plans_a_transposed_conv_on_a_small_map_for_the_taps_it_sums(args: tuple[int, ...], share: str
                                                                          ) -> None:
    """LowFormer's upsampling: a depthwise 3x3 transposed conv on a 2x2 map sums 4 of its 9 taps (planned
    for 9, it measured 0.44x; the row says so); a stride-2 4x4 one, 2.25 of the 4 its fan-in counts."""
    g = torch.Generator().manual_seed(0)
    x, fresh = torch.randn(64, 32, 2, 2, generator=g), torch.randn(64, 32, 2, 2, generator=g)
    model = nn.Sequential(nn.ConvTranspose2d(32, *args))  # out, k, stride, padding, output padding, groups
    row = next(r for r in init_model(model, "auto", example_input=x, seed=0).rows if r.name == "0.weight")
    with torch.no_grad():
        per_channel = model(fresh).double().square().mean(dim=(0, 2, 3))
    se = 5 * float(per_channel.std()) / per_channel.numel() ** 0.5
    assert abs(float(per_channel.mean()) - row.var_out) < se
    assert (f"map borders: {share} of the kernel's taps" in row.note) == bool(share)


def test_transposed_tap_reads_count_what_enumerating_the_outputs_finds() -> None:
    grid = itertools.product((1, 2, 5), (1, 2, 3, 4, 7), (1, 2, 3), (1, 2), (0, 1, 2, 3), (0, 1))
    for n, k, stride, dil, pad, extra in grid:
        n_out = (n - 1) * stride - 2 * pad + dil * (k - 1) + extra + 1
        if n_out <= 0:
            continue
        brute = [sum((o + pad - t * dil) % stride == 0 and 0 <= (o + pad - t * dil) // stride < n
                     for o in range(n_out)) / n_out for t in range(k)]
        assert _transposed_tap_reads(n, n_out, k, stride, dil, pad) == pytest.approx(brute, abs=1e-12)

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import initlab
from initlab.methods import DataInitError
from initlab.model.state import ModelState


def batch(n: int, *shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *shape, generator=g) * 2 + 0.5


def per_channel(out: torch.Tensor, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    reduce = [d for d in range(out.dim()) if d != dim]
    return out.mean(dim=reduce), out.std(dim=reduce, unbiased=False)


def test_data_dependent_every_channel_zero_mean_unit_variance():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(3, 8, 3), nn.ReLU(), nn.Conv1d(8, 8, 3, groups=4), nn.ReLU(),
                          nn.ConvTranspose1d(8, 6, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 8, 5))
    x = batch(256, 3, 10)
    rng = torch.get_rng_state()
    report = initlab.data_dependent_init(model, x, seed=0)
    assert torch.equal(torch.get_rng_state(), rng)
    assert [c.channels for c in report.layers] == [8, 8, 6, 5]
    with torch.no_grad():
        h = x
        for i, layer in enumerate(model):
            h = layer(h)
            if i in (0, 2, 4, 7):
                mean, std = per_channel(h, 1)
                torch.testing.assert_close(mean, torch.zeros_like(mean), atol=1e-5, rtol=0)
                torch.testing.assert_close(std, torch.ones_like(std), atol=1e-4, rtol=0)


def test_data_dependent_same_seed_same_weights():
    def make() -> nn.Module:
        torch.manual_seed(1)
        return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))

    a, b = make(), make()
    x = batch(64, 6)
    initlab.data_dependent_init(a, x, seed=5)
    initlab.data_dependent_init(b, x, seed=5)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_weight_norm_init_sets_g_and_b_from_one_batch():
    torch.manual_seed(0)
    model = nn.Sequential(weight_norm(nn.Linear(10, 20)), nn.ReLU(), weight_norm(nn.Linear(20, 4)),
                          nn.Linear(4, 2))
    plain_before = model[3].weight.detach().clone()
    x = batch(128, 10)
    report = initlab.weight_norm_init(model, x, seed=0)
    assert [c.name for c in report.layers] == ["0", "2"]
    assert torch.equal(model[3].weight, plain_before)  # not weight-normalized: untouched
    with torch.no_grad():
        v = model[0].parametrizations.weight.original1
        t = x @ (v / v.norm(dim=1, keepdim=True)).t()  # t = v.x / |v|
        g = model[0].parametrizations.weight.original0.flatten()
        torch.testing.assert_close(g, 1 / t.std(0, unbiased=False), rtol=1e-4, atol=0)
        torch.testing.assert_close(model[0].bias, -t.mean(0) / t.std(0, unbiased=False), rtol=1e-4, atol=1e-5)
        assert abs(v.std().item() - 0.05) < 5 * 0.05 / (2 * v.numel()) ** 0.5
        _, std = per_channel(model[2](torch.relu(model[0](x))), 1)
        torch.testing.assert_close(std, torch.ones_like(std), atol=1e-4, rtol=0)


def test_weight_norm_needs_weight_normed_layers():
    model = nn.Sequential(nn.Linear(4, 4))
    snap = ModelState.capture(model)
    with pytest.raises(DataInitError, match=r"parametrizations\.weight_norm"):
        initlab.weight_norm_init(model, batch(8, 4))
    assert snap.matches(model)


def test_bad_input_leaves_model_unchanged():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    snap = ModelState.capture(model)
    with pytest.raises(DataInitError, match="zero variance"):
        initlab.data_dependent_init(model, torch.ones(16, 4))
    with pytest.raises(DataInitError, match="NaN or infinite"):
        initlab.data_dependent_init(model, torch.full((16, 4), float("inf")))
    assert snap.matches(model)
    dead = nn.Sequential(nn.Linear(4, 8), nn.Dropout(p=1.0), nn.Linear(8, 2))  # the last layer sees zeros
    snap = ModelState.capture(dead)
    with pytest.raises(DataInitError, match="layer '2' produced the same output for every sample"):
        initlab.data_dependent_init(dead, batch(16, 4))
    assert snap.matches(dead)  # layer 0 had been normalized: restored

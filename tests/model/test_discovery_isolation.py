"""Forwards initlab runs for discovery: dict inputs count as the input, and nothing global or buffered changes
(issue 13 items 1 and 7, issue 14 item 4)."""

import random

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations, spectral_norm

from initlab.model import discover, init_model


class Vision(nn.Module):
    """Takes ``pixel_values=`` as HF vision models do; data-dependent control flow keeps fx out."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.head = nn.Conv2d(16, 8, 3, padding=1)

    def forward(self, pixel_values):
        if pixel_values.sum() > 1e9:
            return pixel_values
        return self.head(torch.relu(self.stem(pixel_values)))


@pytest.mark.parametrize("scheme", ["auto", "he_normal"])
def test_dict_input_plans_what_a_tensor_or_tuple_does(scheme):
    x = torch.randn(2, 3, 8, 8)
    stds = {}
    for kind, example in {"tensor": x, "tuple": (x,), "dict": {"pixel_values": x}}.items():
        report = init_model(Vision(), scheme, example_input=example, seed=0, dry_run=True)
        assert report.method == "hooks"
        stds[kind] = (report.row("stem.weight").std, report.row("head.weight").std)
    assert stds["dict"] == stds["tensor"] == stds["tuple"]
    taps = (22 / 24) ** 2  # a 3x3 kernel, padding 1, on 8x8: the border rows and columns read 2 of 3 taps
    assert stds["dict"][0] == pytest.approx((1 / (27 * taps)) ** 0.5, rel=0.01) or scheme == "he_normal"


def _rng_states():
    return torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()


def _same_rngs(a, b):
    return torch.equal(a[0], b[0]) and a[1] == b[1] and np.array_equal(a[2], b[2])


class Noisy(nn.Module):
    """Train-mode dropout, Python and numpy draws, a counter buffer and a replaced cache buffer."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(8, 8), nn.Linear(8, 4)
        self.drop = nn.Dropout(0.5)
        self.bn = nn.BatchNorm1d(8)
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))
        self.register_buffer("cache", torch.zeros(2))

    def forward(self, x):
        if x.sum() > 1e9:  # fx cannot trace this
            return x
        self.calls += 1
        self.cache = torch.ones(3)
        self.register_buffer("added", torch.ones(1))
        noise = random.random() + float(np.random.rand())
        h = torch.relu(self.bn(self.fc1(x))) + 0 * noise
        return self.fc2(self.drop(h + 0 * torch.rand_like(h)))


def _buffers(model):
    return {n: b.clone() for n, b in model.named_buffers()}


def _check_untouched(model, before_buffers, before_rngs):
    after = dict(model.named_buffers())
    assert set(after) == set(before_buffers)
    assert all(torch.equal(after[n], b) and after[n].shape == b.shape for n, b in before_buffers.items())
    assert _same_rngs(before_rngs, _rng_states())


@pytest.mark.parametrize("call", ["discover", "dry_run", "auto", "he_normal"])
def test_discovery_forward_leaves_rngs_and_buffers_alone(call):
    torch.manual_seed(0)
    model = Noisy().train()
    x = torch.randn(4, 8)
    buffers, rngs = _buffers(model), _rng_states()
    if call == "discover":
        graph = discover(model, x)
        assert graph.method == "hooks"
    else:
        init_model(model, "auto" if call == "dry_run" else call, example_input=x, seed=0,
                   dry_run=call == "dry_run")
    _check_untouched(model, buffers, rngs)
    assert model.training and model.drop.training


class StochasticDepth(nn.Module):
    """Parameter-free custom module that draws in train mode (torchvision's StochasticDepth)."""

    def forward(self, x):
        if not self.training:
            return x
        keep = torch.empty(x.shape[0], 1).bernoulli_(0.9)
        return x * keep / 0.9


def test_classifying_a_stochastic_custom_module_keeps_the_global_rng():
    model = nn.Sequential(nn.Linear(8, 8), StochasticDepth(), nn.ReLU(), nn.Linear(8, 2)).train()
    rngs = _rng_states()
    init_model(model, "auto", seed=0)
    assert _same_rngs(rngs, _rng_states())


@pytest.mark.parametrize("style", ["hook", "parametrization"])
def test_spectral_norm_vectors_do_not_move_in_train_mode(style):
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            lin = nn.Linear(8, 8)
            self.fc = spectral_norm(lin) if style == "hook" else parametrizations.spectral_norm(lin)
            self.out = nn.Linear(8, 2)

        def forward(self, x):
            if x.sum() > 1e9:
                return x
            return self.out(torch.tanh(self.fc(x)))

    torch.manual_seed(0)
    model = Net().train()
    x = torch.randn(4, 8)
    buffers, rngs = _buffers(model), _rng_states()
    discover(model, x)
    discover(model)
    _check_untouched(model, buffers, rngs)


def test_spectral_norm_vectors_do_not_move_on_dry_run():
    model = nn.Sequential(parametrizations.spectral_norm(nn.Linear(8, 8)), nn.Tanh(), nn.Linear(8, 2)).train()
    buffers = _buffers(model)
    init_model(model, "auto", seed=0, dry_run=True)
    _check_untouched(model, buffers, _rng_states())


class DropPath(StochasticDepth):
    """A class of its own: layers.module_act caches its elementwise check per class, whatever the mode."""


def test_a_custom_activation_evaluated_after_discovery_keeps_the_global_rng():
    model = nn.Sequential(nn.Linear(8, 8), DropPath(), nn.Linear(8, 2))
    model.eval()
    graph = discover(model)  # classified in eval mode: an elementwise function (identity)
    model.train()
    act = graph.layer("0").activation_fn
    assert act is not None
    rngs = _rng_states()
    y = act(np.linspace(-2.0, 2.0, 5))
    assert _same_rngs(rngs, _rng_states())
    assert np.allclose(y, np.linspace(-2.0, 2.0, 5)) and model[1].training
    init_model(model, "auto", seed=0)
    assert _same_rngs(rngs, _rng_states())

"""diagnose leaves the model exactly as it found it, also when it fails, and never touches the global RNG."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from torch import nn

import initlab
from initlab.model.state import ModelState

from . import nets


def _busy_model() -> nn.Module:
    """Grads present, a frozen layer, a submodule in eval mode, BatchNorm running stats, dropout."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(8, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(16, 16),
        nn.Tanh(),
        nn.Linear(16, 3),
    )
    net(torch.randn(4, 8)).sum().backward()
    net[4].weight.requires_grad_(False)
    net[4].weight.grad = None
    net[6].eval()
    return net


def test_model_unchanged_after_diagnose() -> None:
    net = _busy_model()
    before = ModelState.capture(net)
    rng = torch.get_rng_state()
    d = initlab.diagnose(net, torch.randn(32, 8, generator=torch.Generator().manual_seed(1)))
    assert before.matches(net)
    assert torch.equal(rng, torch.get_rng_state())
    # Linear -> BN -> ReLU: the ReLU acts on the norm's output, so dead units are judged there
    assert [(la.name, la.kind, la.activation) for la in d.layers] == [
        ("0", "linear", None),
        ("1", "norm", "relu"),
        ("4", "linear", "tanh"),
        ("6", "linear", None),
    ]
    frozen = d.layers[2].weight
    assert frozen is not None and frozen.grad_norm is not None  # frozen, yet measured


@pytest.mark.parametrize("bad", [torch.randn(32, 5), torch.full((32, 8), float("nan")), "not a tensor"])
def test_model_unchanged_when_diagnose_raises(bad: object) -> None:
    net = _busy_model()
    before = ModelState.capture(net)
    with pytest.raises((ValueError, TypeError)) as info:
        initlab.diagnose(net, bad)
    assert before.matches(net)
    message = str(info.value)
    assert ("shape" in message) or ("NaN" in message) or ("tensor" in message)


@pytest.mark.filterwarnings("ignore:Using a target size")
def test_loss_errors_restore_too() -> None:
    net = _busy_model()
    before = ModelState.capture(net)
    with pytest.raises(ValueError):
        initlab.diagnose(net, torch.randn(32, 8), target=torch.randn(32, 7))  # wrong target shape for MSE
    assert before.matches(net)


def test_same_seed_same_numbers_and_different_seed_differs() -> None:
    net = nets.healthy(nets.mlp(4, nn.Tanh, std=1.0))
    x = nets.batch()
    a, b = initlab.diagnose(net, x, seed=3), initlab.diagnose(net, x, seed=3)
    c = initlab.diagnose(net, x, seed=4)
    assert a.to_dict() == b.to_dict()
    assert a.layers[0].grad_rms != c.layers[0].grad_rms
    assert a.layers[0].output == c.layers[0].output  # the forward pass does not depend on the seed


def test_target_and_loss_fn() -> None:
    net = nets.healthy(nets.mlp(3, nn.ReLU, std=1.0))
    x = nets.batch()
    y = torch.randint(0, 10, (x.shape[0],), generator=torch.Generator().manual_seed(0))
    d = initlab.diagnose(net, x, target=y)  # integer target: cross-entropy
    ce = nn.functional.cross_entropy(net(x), y).detach()
    assert d.loss == pytest.approx(float(ce), rel=1e-6)
    d2 = initlab.diagnose(net, x, target=y, loss_fn=nn.CrossEntropyLoss())
    assert d2.loss == pytest.approx(d.loss)
    assert d2.layers[0].grad_norm == pytest.approx(d.layers[0].grad_norm)


def test_tuple_and_dict_batches() -> None:
    class Two(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.a(x) + self.b(y)

    net = Two()
    x, y = torch.randn(8, 4), torch.randn(8, 4)
    assert [la.name for la in initlab.diagnose(net, (x, y)).layers] == ["a", "b"]
    assert [la.name for la in initlab.diagnose(net, {"x": x, "y": y}).layers] == ["a", "b"]


def test_meta_model_is_rejected_before_anything_runs() -> None:
    with torch.device("meta"):
        net = nn.Linear(4, 4)
    with pytest.raises(ValueError, match="meta"):
        initlab.diagnose(net, torch.randn(2, 4))


class _DrawingAct(nn.Module):
    """A custom elementwise activation module that draws from Python's and numpy's global generators."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        random.random()
        np.random.random()
        return torch.tanh(x) * 1.5


def test_custom_activation_modules_leave_every_global_rng_as_it_was() -> None:
    """diagnose evaluates a custom activation module itself (thresholds, post-activation values): inside one
    block that keeps Python's, numpy's and torch's global state, also for the model's own calls of it."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), _DrawingAct(), nn.Linear(16, 4))
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
    random.seed(5)
    np.random.seed(5)
    py, npy, rng = random.getstate(), np.random.get_state(), torch.get_rng_state()
    d = initlab.diagnose(net, x)
    assert d.layers[0].activation == "_DrawingAct"  # measured through the module (the test's premise)
    assert random.getstate() == py and torch.equal(rng, torch.get_rng_state())
    now = np.random.get_state()
    assert now[0] == npy[0] and np.array_equal(now[1], npy[1]) and now[2:] == npy[2:]

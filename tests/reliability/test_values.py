"""Non-finite draws and seed/generator validation (issue 14 items 6 and 7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import initlab
from initlab.backends.counter.fill import counter_fill_
from initlab.backends.numpy_backend import sample
from initlab.catalog.draws import Normal
from initlab.errors import InitlabError
from initlab.methods.transfer import TransferError, transfer


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))


def _same(a: nn.Module, b: nn.Module) -> bool:
    pairs = zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    return all(torch.equal(x, y) for x, y in pairs)


@pytest.mark.parametrize("scheme", ["normal(0, 1e300)", "uniform(0, 1e39)", "uniform(-3e38, 3e38)",
                                    "constant(1e39)", "truncated_normal(0, 1e38, -5, 5)"])
@pytest.mark.parametrize("generator", ["counter", "torch"])
def test_non_finite_draws_are_refused(scheme, generator):  # type: ignore[no-untyped-def]
    model, ref = _model(), _model()
    with pytest.raises(InitlabError, match="cannot hold"):
        initlab.init_model(model, scheme, seed=0, generator=generator)
    assert _same(model, ref)


def test_half_and_double_limits():  # type: ignore[no-untyped-def]
    with pytest.raises(InitlabError, match="float16 cannot hold"):
        initlab.init_(torch.empty(4, 4, dtype=torch.float16), "normal(0, 1e4)", seed=0)
    w = initlab.init_(torch.empty(4, 4, dtype=torch.float64), "normal(0, 1e300)", seed=0)
    assert bool(torch.isfinite(w).all())
    with pytest.raises(InitlabError):
        counter_fill_(torch.empty(3, 3), Normal(0.0, float("inf")), seed=0, name="w")
    with pytest.raises(InitlabError):
        sample("normal(0, 1e300)", (3, 3), 0)


def test_transfer_reinit_checked_before_loading():  # type: ignore[no-untyped-def]
    model, ref = _model(), _model()
    source = {"0.weight": torch.ones(8, 4), "0.bias": torch.ones(8)}
    with pytest.raises(TransferError, match="cannot hold"):
        transfer(model, source, reinit="normal(0, 1e300)", seed=0)
    assert _same(model, ref)


@pytest.mark.parametrize("seed", [-1, 1.5, 2**64, True, "3"])
@pytest.mark.parametrize("generator", ["counter", "torch"])
def test_seed_validation_is_the_same_on_every_path(seed, generator):  # type: ignore[no-untyped-def]
    model, ref = _model(), _model()
    with pytest.raises(InitlabError, match="seed"):
        initlab.init_model(model, "he_normal", seed=seed, generator=generator)
    assert _same(model, ref)
    with pytest.raises(InitlabError, match="seed"):
        initlab.init_(torch.empty(3, 3), "he_normal", seed=seed)


@pytest.mark.parametrize("generator", [5, np.random.default_rng(0), "mt19937"])
def test_bad_generator_is_an_error(generator):  # type: ignore[no-untyped-def]
    with pytest.raises(InitlabError, match="generator"):
        initlab.init_(torch.empty(3, 3), "he_normal", generator=generator)
    model, ref = _model(), _model()
    with pytest.raises(InitlabError, match="generator"):
        transfer(model, {"0.weight": torch.ones(8, 4)}, generator=generator)
    assert _same(model, ref)


def test_transfer_seed_and_generator_together():  # type: ignore[no-untyped-def]
    with pytest.raises(TransferError, match="not both"):
        transfer(_model(), {"0.weight": torch.ones(8, 4)}, seed=0, generator=torch.Generator())


def test_transfer_directory_and_fifo(tmp_path):  # type: ignore[no-untyped-def]
    import os

    with pytest.raises(TransferError, match="is a directory"):
        transfer(_model(), tmp_path)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(TransferError, match="not a regular file"):
        transfer(_model(), fifo)
    with pytest.raises(TransferError, match="no such file"):
        transfer(_model(), tmp_path / "missing.pt")


@pytest.mark.parametrize("device", ["bogus", 5, None, "cuda" if not torch.cuda.is_available() else "bogus2"])
def test_check_device(device):  # type: ignore[no-untyped-def]
    from initlab.backends.checks import check_device

    with pytest.raises(InitlabError, match="device"):
        check_device(device)
    assert check_device("cpu") == torch.device("cpu")

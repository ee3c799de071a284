"""Bad input to the catalog and the data-driven inits: one clear initlab error, model unchanged (issue 14
item 7)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from initlab.catalog import get
from initlab.errors import InitlabError
from initlab.methods.datadep import DataInitError, data_dependent_init, weight_norm_init


@pytest.mark.parametrize("spec, message", [
    ("normal(mean=0, mean=1)", "given twice"),
    ("keras:he_normal(_s=100.0)", "no parameter _s"),
    ("jax:glorot_uniform(_m='fan_in')", "no parameter _m"),
    ("keras:he_normal('fan_out', 3.0)", "positional"),
    ("normal(0, 1" + "0" * 400 + ")", "too large"),
    ("normal(0, 'a')", "could not convert"),
    ("normal(0)(1)", "expected NAME"),
    ("normal(**{'std': 1})", r"\*\* is not allowed"),
])
def test_bad_scheme_strings(spec, message):  # type: ignore[no-untyped-def]
    with pytest.raises(InitlabError, match=message):
        get(spec)


def test_keyword_given_twice():  # type: ignore[no-untyped-def]
    with pytest.raises(InitlabError, match="given both"):
        get("normal(0, std=1)", std=2)


def test_hidden_parameters_are_not_in_the_signature():  # type: ignore[no-untyped-def]
    from initlab.catalog.registry import describe

    assert describe("keras:he_normal").signature().startswith("keras:he_normal()")


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


@pytest.mark.parametrize("batch, kwargs, message", [
    (torch.randn(16, 5), {}, "does not fit the model"),
    (torch.randint(0, 5, (16, 4)), {}, "does not fit the model"),
    (torch.randn(16, 4), {"layers": ["nope"]}, "no attribute"),
    (torch.randn(16, 4), {"generator": 5}, "generator"),
    (torch.randn(16, 4), {"seed": 2**64}, "seed"),
    (torch.randn(16, 4), {"seed": 0, "generator": torch.Generator()}, "not both"),
])
def test_data_dependent_init_bad_input(batch, kwargs, message):  # type: ignore[no-untyped-def]
    model, ref = _mlp(), _mlp()
    with pytest.raises((DataInitError, InitlabError), match=message):
        data_dependent_init(model, batch, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), ref.parameters(), strict=True))


@pytest.mark.parametrize("v_std", [-1.0, 0.0, float("nan"), float("inf")])
def test_weight_norm_init_v_std(v_std):  # type: ignore[no-untyped-def]
    model = nn.Sequential(weight_norm(nn.Linear(4, 4)))
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(DataInitError, match="v_std"):
        weight_norm_init(model, torch.randn(16, 4), v_std=v_std)
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), before, strict=True))

"""init_model / materialize arguments that used to be ignored or failed with a raw error (issue 14 item 7):
each is now one initlab error naming the fix, raised before the model is read or changed."""

import re

import numpy as np
import pytest
import torch
from torch import nn

import initlab
from initlab.errors import InitlabError
from initlab.model import ModelState


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))


@pytest.mark.parametrize(
    ("kwargs", "fix"),
    [
        ({"generator": 5}, "seed=N"),
        ({"generator": np.random.default_rng(0)}, "numpy Generator"),
        ({"generator": "philox"}, "'counter'"),
        ({"seed": -1}, "seed=0"),
        ({"seed": 1.5}, "seed=0"),
        ({"seed": 2**64}, "seed=0"),
        ({"graph": "str"}, "discover(model)"),
        ({"seed": 0, "generator": torch.Generator()}, "not both"),
    ],
)
def test_bad_arguments_are_clear_errors_and_change_nothing(kwargs: dict, fix: str) -> None:
    m = _model()
    before = ModelState.capture(m)
    with pytest.raises(InitlabError, match=re.escape(fix)):
        initlab.init_model(m, "he_normal", **kwargs)
    assert before.matches(m)


def test_scripted_module_is_refused() -> None:
    scripted = torch.jit.script(_model())
    with pytest.raises(InitlabError, match="eager module"):
        initlab.init_model(scripted, "he_normal", seed=0)


def test_legacy_weight_norm_names_the_parametrization() -> None:
    with pytest.warns(FutureWarning):
        legacy = torch.nn.utils.weight_norm(nn.Linear(4, 4))
    m = nn.Sequential(legacy, nn.ReLU())
    before = ModelState.capture(m)
    with pytest.raises(InitlabError, match=r"parametrizations\.weight_norm"):
        initlab.init_model(m, "auto", seed=0)
    assert before.matches(m)


def test_materialize_bad_device_is_clear() -> None:
    with torch.device("meta"):
        m = nn.Sequential(nn.Linear(4, 4))
    with pytest.raises(InitlabError, match="device"):
        initlab.materialize(m, "bogus", seed=0)
    assert all(p.is_meta for p in m.parameters())


def test_data_methods_name_a_batch_that_does_not_fit() -> None:
    for batch in (torch.randn(8, 7), torch.ones(8, 4, dtype=torch.long)):
        for method in (initlab.lsuv, initlab.data_dependent_init):
            m = _model()
            before = ModelState.capture(m)
            with pytest.raises(InitlabError, match="does not fit the model"):
                method(m, batch, seed=0)
            assert before.matches(m)


def test_fixup_checks_its_example_input_before_tracing() -> None:
    from initlab.lab.train import ResidualMLP

    for bad, fix in ((torch.randn(8, 7), "does not fit"), (torch.full((8, 16), float("nan")), "NaN")):
        m = ResidualMLP(16, 8, 2, 4)
        before = ModelState.capture(m)
        with pytest.raises(InitlabError, match=fix):
            initlab.fixup(m, bad)
        assert before.matches(m) and not any("fixup" in n for n, _ in m.named_parameters())


def test_auto_option_and_groups_out_of_range() -> None:
    with pytest.raises(InitlabError, match="q_saturating"):
        initlab.init_model(_model(), "auto", q_saturating=float("inf"), seed=0)
    with pytest.raises(ValueError, match="groups=3"):
        initlab.init_(torch.empty(10, 4), "he_normal", groups=3, seed=0)

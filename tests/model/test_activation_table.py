"""The one activation table: every torch spelling is derived from the catalog's entries, and agrees with the
catalog's numpy form."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from initlab.backends.torch_activations import (
    function_activation,
    module_activation,
    torch_callable,
    torch_module,
)
from initlab.catalog import activations as acts
from initlab.catalog.gains import gain, variance_gain
from initlab.catalog.initializers import VarianceScaling

X = np.linspace(-4.0, 4.0, 81)


@pytest.mark.parametrize("name", acts.activation_names())
def test_torch_form_computes_the_catalog_function(name):
    act = acts.activation(name)
    fn = torch_callable(act)
    if name == "prelu":  # a learned slope: torch has no parameter-free spelling
        assert fn is None
        return
    assert fn is not None
    np.testing.assert_allclose(fn(torch.from_numpy(X)).numpy(), act(X), atol=1e-7)
    form = acts.torch_forms()[name]
    if form.module is not None:
        assert module_activation(torch_module(name)(**dict(form.fixed))) == act


@pytest.mark.parametrize(
    ("call", "spec"),
    [
        (("gelu", (None,), {"approximate": "tanh"}), "gelu_tanh"),
        (("gelu", (None,), {}), "gelu"),
        (("leaky_relu_", (None, 0.2), {}), "leaky_relu(negative_slope=0.2)"),
        (("elu", (None,), {"alpha": 0.5}), "elu(alpha=0.5)"),
        (("softplus", (None, 2.0), {}), None),  # beta != 1: not a catalog function
        (("hardtanh", (None, -2.0, 2.0), {}), None),
        (("relu_", (None,), {}), "relu"),
    ],
)
def test_functional_calls_read_their_arguments(call, spec):
    act = function_activation(*call)
    assert (act.spec if act is not None else None) == spec


def test_modules_with_other_parameters_are_not_mistaken():
    assert module_activation(nn.GELU(approximate="tanh")).name == "gelu_tanh"
    assert module_activation(nn.Softplus(beta=2.0)).name == "Softplus"  # wrapped, evaluated by torch
    assert module_activation(F.relu).name == "relu"


@pytest.mark.parametrize("name", ["relu", "tanh", "selu", "silu", "leaky_relu(0.2)"])
def test_one_gain_function(name):
    for table in ("classic", "variance"):
        vs = VarianceScaling(1.0, "fan_in", "normal", gain="activation", gain_table=table)
        assert vs.gain_for(name) == gain(name, table)
    assert gain(name, "variance") == variance_gain(name)

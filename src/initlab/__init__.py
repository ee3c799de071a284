"""initlab: initialize neural networks well, and show why an initialization works or fails.

Packages, one concern each, data flowing one way
(catalog <- backends <- model <- methods/diagnostics/lab/scale <- cli):

- :mod:`initlab.catalog` -- every named scheme, fans, gains; backend-neutral (numpy/scipy only).
- :mod:`initlab.backends` -- fill torch tensors (``init_``) and numpy arrays (``sample``) from the catalog.
- :mod:`initlab.compat` -- drop-in ``torch.nn.init`` with ``generator=``.
- :mod:`initlab.model` -- ``init_model``: one call initializes a whole PyTorch model.
- :mod:`initlab.methods` -- LSUV, data-dependent init, Fixup/SkipInit/ReZero, transfer.
- :mod:`initlab.diagnostics` -- ``diagnose``/``compare``/``monitor``: signal propagation, verdicts, reports.
- :mod:`initlab.lab` -- reproducible experiments and the demo.
- :mod:`initlab.scale` -- counter-based generation, sharded and meta-device init.
- :mod:`initlab.width` -- μP / spectral init, μP learning rates, the coordinate check.
- :mod:`initlab.cli` -- the ``initlab`` command.

Heavy subpackages load on first use: ``import initlab`` imports neither torch nor matplotlib.
"""

from __future__ import annotations

import importlib
from typing import Any

from .catalog import (
    Axes,
    Fans,
    Initializer,
    VarianceScaling,
    activation,
    available,
    chi,
    classic_gain,
    compute_fans,
    critical_sigma_w2,
    describe,
    from_config,
    gain,
    get,
    moments,
    to_config,
    variance_gain,
    variance_scaling,
)
from .catalog import activations as _activations

__version__ = "0.1.0"

# public name -> module that defines it (loaded lazily)
_LAZY = {
    "init_": "initlab.backends.torch_backend",
    "sample": "initlab.backends.numpy_backend",
    "init_model": "initlab.model",
    "InitReport": "initlab.model",
    "register_layer": "initlab.model",
    "lsuv": "initlab.methods",
    "fixup": "initlab.methods",
    "transfer": "initlab.methods",
    "lsuv_reference": "initlab.methods",
    "skipinit": "initlab.methods",
    "data_dependent_init": "initlab.methods",
    "weight_norm_init": "initlab.methods",
    "diagnose": "initlab.diagnostics",
    "Diagnosis": "initlab.diagnostics",
    "compare": "initlab.diagnostics",
    "monitor": "initlab.diagnostics",
    "materialize": "initlab.scale",
    "on_meta": "initlab.scale",
    "mup_param_groups": "initlab.width",
    "coord_check": "initlab.width",
}

__all__ = [
    "Axes", "Fans", "Initializer", "VarianceScaling", "activation", "available", "chi", "classic_gain",
    "compute_fans", "critical_sigma_w2", "describe", "from_config", "gain", "get", "moments", "to_config",
    "variance_gain", "variance_scaling", *_LAZY,
]


def _torch_adapter(obj: Any) -> Any:
    """Let catalog functions take torch modules (``initlab.gain(nn.LeakyReLU(0.2))``) without importing torch
    until one is actually passed."""
    from_torch = getattr(obj, "__module__", "") in ("torch", "torch.nn.functional")
    if type(obj).__module__.startswith("torch") or from_torch:
        module = importlib.import_module("initlab.backends.torch_activations")
        return module.module_activation(obj)
    return None


_activations.ADAPTERS.append(_torch_adapter)


# packages whose import registers init_model schemes (model cannot import them: data flows one way)
_SCHEME_PLUGINS = ("initlab.methods",)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        if _LAZY[name] == "initlab.model":
            for plugin in _SCHEME_PLUGINS:
                importlib.import_module(plugin)
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'initlab' has no attribute {name!r}")

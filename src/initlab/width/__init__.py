"""Width: μP (Tensor Programs V) and the spectral condition -- init and learning rates that transfer from a
narrow model to a wide one.

Owns the μP classification of parameters (:mod:`._classify`: input-like, hidden, output-like, vector-like,
fixed, found by comparing each parameter's fans with those of the same architecture at a base width), the
init transform (:mod:`._transform`: the ``"mup"`` and ``"spectral"`` ``init_model`` schemes, a pure
``mup_transform(plan, report, classes) -> plan``), the optimizer parameter groups (:mod:`._groups`), what μP
needs in the forward (:mod:`._forward`: the tied readout's multiplier as a removable hook, attention 1/d
named in the report) and the coordinate check (:mod:`._coord`). May import catalog, backends and model;
never diagnostics, lab or cli.

Public API: ``classify(model, base)``, ``mup_transform``, ``mup_param_groups(model, lr, optimizer,
weight_decay, *, base)``, ``coord_check(make_model, widths, batch, ...)``, ``mup_forward(model, base)`` /
``remove_mup_forward(model)``;
``init_model(model, "mup" | "spectral", base=...)`` once this package is imported (``import initlab`` does
it on first use of ``init_model``)."""

from ._classify import Classification, ParamClass, classify
from ._coord import CoordCheck, coord_check  # noqa: F401 (re-exports, see below)
from ._forward import mup_forward, remove_mup_forward
from ._groups import mup_param_groups  # noqa: F401 (re-exports, see below)
from ._transform import mup_transform

# Also here, listed once in ``initlab.__all__`` (their one documented path, ``initlab.<name>``):
# mup_param_groups, coord_check.
__all__ = [
    "Classification", "CoordCheck", "ParamClass", "classify", "mup_forward", "mup_transform",
    "remove_mup_forward",
]

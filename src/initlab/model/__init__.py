"""Model-level initialization: one call initializes a whole PyTorch model.

Owns discovering a model's layers (fans, the activation that follows each, residual branches, tied and
parametrized weights), planning each parameter's scheme, the data-free "auto" scheme, the report, and exact
state snapshots (:mod:`.state`). May import the catalog and backends; never diagnostics, lab or cli.

Public API:

- ``init_model(model, scheme="auto", *, example_input=None, seed=None, rules=None, dry_run=False) ->
  InitReport``
- ``discover(model, example_input=None) -> ModelGraph``: the project's one graph walker (``LayerInfo`` per
  weight layer in execution order, ``Branch`` per residual branch, ``unreached`` parameters, ``method``).
- ``trace_activations(model, graph)``: context manager recording each layer's output (pre-activation) and the
  output of the activation that follows it (post-activation), functional activations included.
- ``register_model_scheme(name, fn)``: whole-model schemes (LSUV, Fixup...) run by ``init_model`` inside the
  same validation and all-or-nothing wrapper; ``fn(model, graph, SchemeOptions) -> InitReport``.
- ``init_model(..., dry_run=True).plan`` / ``apply_plan(model, plan, generator)``: a plan made from shapes
  (meta-device models too), drawn into real tensors later.
- ``ModelState``: exact snapshots (capture/restore/matches).
- ``register_layer(cls, params={"weight": "out_in", "bias": "bias"}, ...)``: teach initlab a layer type
  (:mod:`._registry`: ``LayerType``, ``Kind``, ``ParamSpec``, ``layer_type(module)``)."""

from ._registry import Kind, LayerType, ParamSpec, layer_type, register_layer  # noqa: F401 (re-exports, see below)
from .api import SchemeOptions, init_model, model_schemes, register_model_scheme  # noqa: F401 (re-exports, see below)
from .graph import Branch, LayerInfo, ModelGraph, Node, discover, unwrap
from .plan import Assignment, Plan, apply_plan
from .report import InitReport, Row, UnhealthyPlan  # noqa: F401 (re-exports, see below)
from .state import ModelState
from .trace import ActivationTrace, trace_activations

# Also here, listed once in ``initlab.__all__`` (their one documented path, ``initlab.<name>``): init_model,
# InitReport, register_layer.
__all__ = [
    "ActivationTrace", "Assignment", "Branch", "Kind", "LayerInfo", "LayerType",
    "ModelGraph", "ModelState", "Node", "ParamSpec", "Plan", "Row", "SchemeOptions", "UnhealthyPlan",
    "apply_plan", "discover", "layer_type", "model_schemes", "register_model_scheme", "trace_activations",
    "unwrap",
]

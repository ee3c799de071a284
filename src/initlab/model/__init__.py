"""Model-level initialization: one call initializes a whole PyTorch model.

Owns discovering a model's layers (fans, the activation that follows each, residual branches, tied and
parametrized weights), planning each parameter's scheme, the data-free "auto" scheme, the report, and exact
state snapshots (:mod:`.state`). May import the catalog and backends; never diagnostics, lab or cli.
"""

from .state import ModelState

__all__ = ["ModelState"]

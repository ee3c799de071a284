"""Diagnostics: show, layer by layer, why a network's initialization works or fails -- and what to do.

Owns ``diagnose`` (one hooked forward/backward pass: activation moments, dead and saturated units, gradient
norms, weight/gradient ratios, symmetry groups, effective ranks, Jacobian spectrum), the verdict rules, the
``Diagnosis`` report (rich table, JSON, self-contained HTML), ``compare`` and the training-time ``monitor``.
May import the catalog, backends and model packages (layer discovery, ``ModelState``); never lab, scale
or cli.
"""

import random as _random

# rich.console draws from Python's global ``random`` when first imported: keep the user's stream as it was.
_state = _random.getstate()
try:
    from .compare import Comparison, compare  # noqa: F401 (re-exports, see below)
    from .core import diagnose  # noqa: F401 (re-exports, see below)
    from .diagnosis import Diagnosis  # noqa: F401 (re-exports, see below)
    from .monitor import Monitor, Snapshot, monitor  # noqa: F401 (re-exports, see below)
    from .records import LayerStats, ParamStats
    from .verdicts import Verdict
finally:
    _random.setstate(_state)
    del _state

# Also here, listed once in ``initlab.__all__`` (their one documented path, ``initlab.<name>``): diagnose,
# Diagnosis, compare, monitor.
__all__ = [
    "Comparison", "LayerStats", "Monitor", "ParamStats", "Snapshot", "Verdict",
]

"""Diagnostics: show, layer by layer, why a network's initialization works or fails -- and what to do.

Owns ``diagnose`` (one hooked forward/backward pass: activation moments, dead and saturated units, gradient
norms, weight/gradient ratios, symmetry groups, effective ranks, Jacobian spectrum), the verdict rules, the
``Diagnosis`` report (rich table, JSON, self-contained HTML), ``compare`` and the training-time ``monitor``.
May import the catalog, backends and model packages (layer discovery, ``ModelState``); never lab, scale
or cli.
"""

from .compare import Comparison, compare
from .core import diagnose
from .diagnosis import Diagnosis
from .monitor import Monitor, Snapshot, monitor
from .records import LayerStats, ParamStats
from .verdicts import Verdict

__all__ = [
    "Comparison",
    "Diagnosis",
    "LayerStats",
    "Monitor",
    "ParamStats",
    "Snapshot",
    "Verdict",
    "compare",
    "diagnose",
    "monitor",
]

"""Which layers diagnose hooks, in forward order, and the activation that follows each.

TEMPORARY adapter: a minimal stand-in until ``initlab.model.discover`` lands on main; this is the only place
diagnostics looks at a model's structure, and it will become a thin translation of ``discover``'s graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ..backends.torch_activations import module_activation
from ..catalog.activations import Activation


@dataclass(frozen=True)
class Site:
    """One layer to hook: ``unit_dim`` is the output axis holding its units (channels for convs),
    ``transposed`` says the weight stores output units on dim 1 (ConvTranspose)."""

    name: str
    module: nn.Module
    kind: str
    activation: Activation | None
    unit_dim: int = -1
    transposed: bool = False


_LAYERS: tuple[tuple[type[nn.Module], str], ...] = (
    (nn.Linear, "linear"),
    (nn.Conv1d, "conv"),
    (nn.Conv2d, "conv"),
    (nn.Conv3d, "conv"),
    (nn.ConvTranspose1d, "conv_transpose"),
    (nn.ConvTranspose2d, "conv_transpose"),
    (nn.ConvTranspose3d, "conv_transpose"),
    (nn.Embedding, "embedding"),
    (nn.MultiheadAttention, "attention"),
)


def layer_sites(model: nn.Module, example_input: Any = None) -> list[Site]:
    sites: list[Site] = []
    pending: list[tuple[str, nn.Module, str]] = []
    for name, module in model.named_modules():
        kind = next((k for cls, k in _LAYERS if isinstance(module, cls)), None)
        if kind is not None and not any(name.startswith(p + ".") for p, _, _ in pending):
            pending.append((name, module, kind))
            continue
        act = module_activation(module) if not list(module.parameters(recurse=False)) else None
        if act is not None and not list(module.children()) and pending:
            sites.extend(_site(n, m, k, act) for n, m, k in pending[-1:])
            sites.extend(_site(n, m, k, None) for n, m, k in pending[:-1])
            pending = []
    sites.extend(_site(n, m, k, None) for n, m, k in pending)
    return sites


def _site(name: str, module: nn.Module, kind: str, act: Activation | None) -> Site:
    conv = kind in ("conv", "conv_transpose")
    return Site(name, module, kind, act, unit_dim=1 if conv else -1, transposed=kind == "conv_transpose")

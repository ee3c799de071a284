"""Which layers diagnose hooks and the nonlinearity applied directly to each one's output.

A thin reading of :func:`initlab.model.discover` (the project's one graph walker). Discovery attributes an
activation to the weight layer whose scale it governs, also through a norm (Conv -> BN -> ReLU: "relu" for the
conv); diagnostics needs the layer whose output the activation actually receives (the BN), since dead and
saturated units are judged on that tensor. The dataflow nodes say which it is; layers inside composite blocks
(``TransformerEncoderLayer``) have no nodes and keep discovery's attribution, which is direct there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ..catalog.activations import Activation
from ..model import ModelGraph, discover
from ..model.graph import SHAPE, Walker

CHANNEL_FIRST = (nn.modules.batchnorm._NormBase, nn.GroupNorm)  # norms whose units are on dim 1


@dataclass(frozen=True)
class Site:
    """One layer to hook: ``unit_dim`` is the output axis holding its units (channels for convs),
    ``transposed`` says the weight stores output units on dim 1 (ConvTranspose, HF Conv1D)."""

    name: str
    module: nn.Module
    kind: str
    activation: Activation | None
    unit_dim: int = -1
    transposed: bool = False


def layer_sites(model: nn.Module, example_input: Any = None) -> tuple[list[Site], list[str]]:
    """The hookable layers in forward order, and notes on what could not be measured."""
    graph = discover(model, example_input, sizes=False)  # no sizes pass: a plan's, not ours
    direct = _direct_activations(graph)
    sites, notes = [], list(graph.notes)
    skipped = []
    for info in graph.layers:
        if info.module is None or not info.reached:
            skipped.append(info.name)
            continue
        act = direct.get(info.name) if info.node is not None else info.activation_fn
        conv = info.kind in ("conv", "conv_transpose") or isinstance(info.module, CHANNEL_FIRST)
        sites.append(Site(info.name, info.module, info.kind, act, unit_dim=1 if conv else -1,
                          transposed=info.kind in ("conv_transpose", "hf_conv1d")))
    if skipped:
        notes.append(f"not measured (raw parameters or layers the forward pass did not reach): "
                     f"{', '.join(skipped[:8])}{'...' if len(skipped) > 8 else ''}")
    return sites, notes


def _direct_activations(graph: ModelGraph) -> dict[str, Activation]:
    """Layer name -> the activation node fed by its output (through shape-only ops such as view, dropout)."""
    walker = graph.walker or Walker(graph.nodes, ())
    nodes = graph.nodes
    out: dict[str, Activation] = {}
    for k, node in enumerate(nodes):
        if node.op != "act" or node.act is None or k in walker.affine:
            continue
        src = walker.backward(k, SHAPE)
        if src is not None and nodes[src].op == "layer":
            out.setdefault(nodes[src].name, node.act)
    return out

"""The data-free "auto" scheme: each weight's scale from the activation that follows it and its fans.

Weights get ``Var = gain^2 / fan_in`` with the variance-preserving gain of the following activation (catalog
moment map), recurrent weights orthogonal per gate block, LSTM forget-gate bias 1, embeddings N(0, 1), norms
1/0, biases 0.
"""

from __future__ import annotations

import math
from typing import Any

from ..catalog import draws as d
from ..catalog.gains import variance_gain
from .graph import LayerInfo, ModelGraph
from .layers import ParamSpec
from .plan import Choice, _forget_bias
from .report import InitReport


class AutoChooser:
    def __init__(self, graph: ModelGraph, **options: Any):
        if options:
            raise TypeError(f"unexpected option(s) for auto: {sorted(options)}")
        self.graph = graph

    def choose(self, layer: LayerInfo, local: str, spec: ParamSpec, shape: tuple[int, ...]) -> Choice:
        role = spec.role
        fans = layer.fans.get(spec.fans_of or local)
        if role in ("bias", "norm_bias"):
            return Choice(None, "zeros", "auto:bias", draws=(d.Constant(0.0),))
        if role == "rnn_bias":
            return Choice(
                None,
                "zeros",
                "auto:rnn_bias",
                draws=(d.Constant(0.0),),
                post=_forget_bias(layer, local, shape, 1.0),
            )
        if role == "norm_weight":
            return Choice(None, "ones", "auto:norm", draws=(d.Constant(1.0),))
        if role == "embedding":
            return Choice(None, "normal(0, 1)", "auto:embedding", draws=(d.Normal(0.0, 1.0),))
        blocks = spec.blocks if spec.blocks > 1 and shape[0] % spec.blocks == 0 else 1
        if role == "rnn_recurrent":
            return Choice(None, "orthogonal", "auto:recurrent", draws=(d.Orthogonal(1.0),) * blocks)
        gain = 1.0
        if layer.activation_fn is not None and role == "weight":
            gain = variance_gain(layer.activation_fn)
        fan_in = fans.fan_in if fans is not None else 1.0
        std = gain / math.sqrt(max(fan_in, 1.0))
        return Choice(None, f"normal(0, {std:.4g})", f"auto:{role}", draws=(d.Normal(0.0, std),) * blocks)

    def finish(self, report: InitReport) -> None:
        pass

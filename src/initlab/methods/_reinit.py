"""Initialize a chosen set of parameters (the ones a transfer or a transform left uninitialized)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..backends.torch_backend import init_, make_generator
from ._sweep import model_device


def reinitialize(model: nn.Module, names: Sequence[str], scheme: Any = "auto", *, seed: int | None = None,
                 generator: torch.Generator | None = None) -> dict[str, str]:
    """Initialize the parameters ``names`` of ``model``; returns ``{name: what was used}``.

    ``"auto"`` defers to :func:`initlab.init_model`'s data-free choice for those parameters; any other value
    is a catalog scheme for weights (2-D and up), with biases set to zero and 1-D scales (norm layers) to one.
    """
    if not names:
        return {}
    if generator is None:
        generator = make_generator(model_device(model), seed)
    if isinstance(scheme, str) and scheme == "auto":
        return _auto(model, names, generator)
    params = dict(model.named_parameters(remove_duplicate=False))
    done: dict[str, str] = {}
    label = scheme if isinstance(scheme, str) else type(scheme).__name__
    with torch.no_grad():
        for name in names:
            p = params[name]
            owner = _owner(model, name)
            if p.dim() >= 2:
                init_(p, scheme, generator, **_layout(owner))
                done[name] = label
            elif name.rsplit(".", 1)[-1] == "bias":
                p.zero_()
                done[name] = "zeros"
            else:
                p.fill_(1.0)
                done[name] = "ones"
    return done


def _auto(model: nn.Module, names: Sequence[str], generator: torch.Generator) -> dict[str, str]:
    from ..model import init_model

    chosen = set(names)

    def others(name: str, module: nn.Module | None) -> bool:
        return name not in chosen

    report = init_model(model, "auto", generator=generator, rules={others: "keep"})
    done = {r.name: r.scheme for r in report.rows if r.status == "init"}
    for row in report.rows:
        for alias in row.tied:
            if row.name in done:
                done[alias] = done[row.name]
    missed = [n for n in names if n not in done]
    if missed:  # parameters discovery does not know (custom modules): their weights get torch's default
        done.update(reinitialize(model, missed, "torch:default", generator=generator))
    return {n: done[n] for n in names}


def _owner(model: nn.Module, name: str) -> nn.Module:
    owner = name.rpartition(".")[0]
    owner = owner.removesuffix(".parametrizations.weight").removesuffix(".parametrizations.bias")
    return model.get_submodule(owner) if owner else model


def _layout(module: nn.Module) -> dict[str, Any]:
    transposed = isinstance(module, nn.modules.conv._ConvTransposeNd)
    groups = int(getattr(module, "groups", 1))
    return {"layout": "torch_transposed" if transposed else "torch", "groups": groups}

"""μP learning rates as torch optimizer parameter groups (Tensor Programs V, Table 3).

With width_mult = fan_in / base fan_in of the parameter (fan_out / base fan_out for SGD's input-like ones):

==========  ===============  ==============================
class       Adam(W)          SGD
==========  ===============  ==============================
input       lr               lr x fan_out / base fan_out
vector      lr               lr x size / base size
hidden      lr / mult_in     lr
output      lr / mult_in     lr / mult_in
fixed       lr               lr
==========  ===============  ==============================

A readout tied to the embedding is input-like (its 1/width_mult is in the forward, see :mod:`._forward`).
The spectral condition gives the same rates (Adam: lr proportional to 1/fan_in; SGD: fan_out / fan_in).

Weight decay: each group's ``weight_decay`` is ``weight_decay x lr / group lr``, so that the decay per step,
lr x weight_decay, is the same for every parameter and width -- right for decoupled decay (AdamW, and
torch's Adam/SGD L2 term scaled the same way: what ``mup``'s MuAdam/MuSGD do). Everything is computed from
shapes: nothing is stored on tensors, so it works after ``torch.save``/``load`` and on FSDP2 (DTensor
parameters report their global shape)."""

from __future__ import annotations

from typing import Any, Literal

from torch import nn

from ..errors import InitlabValueError
from ._classify import BaseLike, ParamClass, classify

Optimizer = Literal["adam", "sgd"]


def lr_mult(c: ParamClass, optimizer: Optimizer) -> float:
    """The factor on the base learning rate for a parameter of class ``c``."""
    if c.kind in ("hidden", "output") and (optimizer == "adam" or c.kind == "output"):
        return 1.0 / c.mult_in
    if optimizer == "sgd" and c.kind in ("input", "vector"):
        return c.mult_out
    return 1.0


def mup_param_groups(model: nn.Module, lr: float, optimizer: Optimizer = "adam", weight_decay: float = 0.0,
                     *, base: BaseLike) -> list[dict[str, Any]]:
    """Parameter groups for ``torch.optim.Adam/AdamW`` (``optimizer="adam"``) or ``SGD`` (``"sgd"``): each
    parameter's μP learning rate for the base rate ``lr`` (the best rate found at the base width), and
    ``weight_decay`` scaled so that lr x weight_decay is constant. ``base``: the model at its base width (on
    meta) or a dict name -> base shape. Each group also holds ``mup_class``, ``width_mult`` and ``names``.

    >>> import torch
    >>> from torch import nn
    >>> make = lambda w: nn.Sequential(nn.Linear(10, w), nn.ReLU(), nn.Linear(w, 3))
    >>> groups = mup_param_groups(make(256), 1e-3, base=make(64))
    >>> sorted((g["mup_class"], g["lr"]) for g in groups)
    [('fixed', 0.001), ('input', 0.001), ('output', 0.00025), ('vector', 0.001)]
    >>> opt = torch.optim.AdamW(groups)
    """
    if optimizer not in ("adam", "sgd"):
        raise InitlabValueError(
            f"optimizer must be 'adam' (Adam, AdamW, Adam-like) or 'sgd', got {optimizer!r}")
    if not lr > 0:
        raise InitlabValueError(f"lr must be positive, got {lr!r}")
    classes = classify(model, base)
    named = dict(model.named_parameters())
    groups: dict[tuple[str, float], dict[str, Any]] = {}
    for name, c in classes.params.items():
        p = next((named[t] for t in (name, *c.tied) if t in named), None)
        if p is None or not p.requires_grad:
            continue
        mult = lr_mult(c, optimizer)
        key = (c.kind, mult)
        if key not in groups:
            group_lr = lr * mult
            groups[key] = {"params": [], "names": [], "lr": group_lr,
                           "weight_decay": weight_decay * lr / group_lr, "mup_class": c.kind,
                           "width_mult": c.mult_in if c.kind in ("hidden", "output") else c.mult_out}
        groups[key]["params"].append(p)
        groups[key]["names"].append(name)
    return list(groups.values())

"""What μP needs in the forward pass, besides init and learning rates.

- The readout's 1/width_mult: initlab puts it into the readout's init (std / width_mult) and learning rate
  (Adam lr / width_mult) -- Tensor Programs V, Table 3 -- which for Adam is the same training trajectory as
  mup's ``MuReadout`` multiplier (the abc-symmetry: multiplier x theta, init / theta, Adam lr / theta), so no
  forward change is needed. A readout *tied* to the embedding cannot take both scales, so there the
  multiplier is applied in the forward: a forward pre-hook on the readout module multiplies its input by
  1/width_mult (exactly ``MuReadout.forward``'s ``x / width_mult``), without touching the user's code.
  :func:`remove_mup_forward` removes it; the hook is a plain picklable object, so ``torch.save(model)`` keeps
  it, a ``state_dict`` does not: :func:`mup_forward` installs it on a fresh model (also after ``materialize``
  or ``init_sharded``, which only draw the weights).
- Attention 1/d instead of 1/sqrt(d): computed inside ``nn.MultiheadAttention`` /
  ``F.scaled_dot_product_attention``, which initlab cannot rescale exactly from outside (the query bias is
  not scaled by a hook on the input), so it is detected and named with the one-line change."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..model.graph import unwrap


class ReadoutScale:
    """Forward pre-hook: the readout's input times ``scale`` (1/width_mult)."""

    def __init__(self, scale: float) -> None:
        self.scale = float(scale)

    def __call__(self, module: nn.Module, args: tuple[object, ...]) -> tuple[object, ...]:
        if args and isinstance(args[0], torch.Tensor):
            return (args[0] * self.scale, *args[1:])
        return args

    def __repr__(self) -> str:
        return f"ReadoutScale({self.scale:g})"


def remove_mup_forward(model: nn.Module) -> int:
    """Remove every readout multiplier hook initlab installed; returns how many."""
    removed = 0
    for module in unwrap(model).modules():
        for key, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, ReadoutScale):
                del module._forward_pre_hooks[key]
                removed += 1
    return removed


def mup_forward(model: nn.Module, base: Any) -> list[str]:
    """Install the forward changes initlab can make for μP (the tied readout's multiplier) on ``model``, e.g.
    after ``materialize``/``init_sharded`` (which only draw weights) or loading a state dict; one line
    each."""
    from ._classify import classify

    return install_readout_hooks(model, classify(model, base).readouts)


def install_readout_hooks(model: nn.Module, readouts: Mapping[str, float]) -> list[str]:
    """Put a :class:`ReadoutScale` on each named readout (replacing one initlab put there before)."""
    model = unwrap(model)
    done = []
    for name, scale in readouts.items():
        module = model.get_submodule(name)
        for key, hook in list(module._forward_pre_hooks.items()):
            if isinstance(hook, ReadoutScale):
                del module._forward_pre_hooks[key]
        module.register_forward_pre_hook(ReadoutScale(scale))
        done.append(f"{name}: input x {scale:.4g} (1/width_mult) by a forward pre-hook; "
                    "initlab.width.remove_mup_forward(model) removes it")
    return done


def attention_findings(model: nn.Module) -> list[str]:
    """Attention that scales scores by 1/sqrt(d): μP needs 1/d. One line per place, with the change."""
    out = []
    seen: set[type] = set()
    for name, module in unwrap(model).named_modules():
        if isinstance(module, nn.MultiheadAttention):
            out.append(f"{name or 'model'} (nn.MultiheadAttention) scales attention by 1/sqrt(head_dim); μP "
                       "needs 1/head_dim: compute it with F.scaled_dot_product_attention(q, k, v, "
                       f"scale={_MUP_SCALE}) instead{_MUP_WHY}")
            continue
        cls = type(module)
        if cls in seen or cls.__module__.startswith("torch."):
            continue
        seen.add(cls)
        try:
            source = inspect.getsource(cls.forward)
        except (OSError, TypeError):
            continue
        if "scaled_dot_product_attention" in source and "scale=" not in source:
            out.append(f"{cls.__name__}.forward calls F.scaled_dot_product_attention with its default "
                       "1/sqrt(head_dim); μP needs 1/head_dim: pass "
                       f"scale={_MUP_SCALE.replace('head_dim', 'q.shape[-1]', 1)}{_MUP_WHY}")
    return out


# 1/head_dim times the constant that makes it the base model's own 1/sqrt(head_dim) at the base width (the
# mup package's README writes 8/d for d = 64): the base width's tuned attention carries over unchanged
_MUP_SCALE = "math.sqrt(base_head_dim) / head_dim"
_MUP_WHY = " (1/head_dim, equal to 1/sqrt(head_dim) at the base width)"

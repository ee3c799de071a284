"""Per-channel data-dependent inits, in one forward sweep like LSUV.

- :func:`data_dependent_init`: Krähenbühl et al. 2016, within-layer variant. Random Gaussian weights, then in
  forward order every output channel of every layer is normalized on the batch: ``W_i <- W_i / sigma_i``,
  ``b_i <- -mu_i / sigma_i``, so each pre-activation has zero mean and unit variance.
- :func:`weight_norm_init`: Salimans & Kingma 2016, for layers reparametrized with
  ``torch.nn.utils.parametrizations.weight_norm``: ``v ~ N(0, 0.05)``, then on one batch, with
  ``t = v.x / |v|``, ``g <- 1 / sigma[t]`` and ``b <- -mu[t] / sigma[t]``.

Both rescale a layer while the batch passes through it (a forward hook), hand on the normalized output, and
restore the model exactly on any failure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from ..backends.checks import check_generator, check_seed
from ..backends.torch_backend import init_, make_generator
from ..model.state import ModelState
from ._sweep import (
    DataInitError,
    _tensors,
    channel_dim,
    check_activation,
    check_batch,
    homogeneous,
    model_device,
    primary,
    replace_primary,
    scale_channels_,
    scaled_params,
    sweep,
    weight_layers,
)


@dataclass
class ChannelCalibration:
    name: str
    kind: str
    channels: int
    dead: int  # channels constant on the batch: left unscaled, bias still centred
    std_before: tuple[float, float]  # min, max over channels
    mean_before: float  # largest |mean| over channels


@dataclass
class DataInitReport:
    method: str
    layers: list[ChannelCalibration]
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.method}: {len(self.layers)} layers normalized per channel on the batch"]
        lines += [f"  {c.name:<32} {c.kind:<16} {c.channels} channels, std {c.std_before[0]:.3g}.."
                  f"{c.std_before[1]:.3g} -> 1, |mean| <= {c.mean_before:.3g} -> 0"
                  + (f", {c.dead} dead" if c.dead else "") for c in self.layers]
        lines += [f"  {name:<32} not reached by the forward pass" for name in self.skipped]
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def data_dependent_init(model: nn.Module, batch: Any, *, seed: int | None = None,
                        generator: torch.Generator | None = None, pre_init: str | None = "normal",
                        layers: Iterable[nn.Module | str] | None = None) -> DataInitReport:
    """Krähenbühl et al. 2016 (within-layer): every output channel of every Linear/Conv/ConvTranspose/
    attention layer gets zero mean and unit variance on ``batch``. ``pre_init``: the random draw before
    (``"normal"``: N(0, 1); any catalog scheme; ``None`` keeps the weights). Layers without a bias are only
    scaled. Raises :class:`DataInitError` (model unchanged) on a bad batch or a constant/non-finite layer."""
    _check_common(model, batch, seed, generator)
    plan = _checked(model, layers)
    snapshot = ModelState.capture(model)
    try:
        if pre_init is not None:
            g = generator if generator is not None else make_generator(model_device(model), seed)
            with torch.no_grad():
                for module in plan:
                    weight, bias = scaled_params(module)
                    init_(weight, pre_init, g)
                    if bias is not None:
                        bias.zero_()
        return _sweep(model, batch, plan, "data-dependent (Krähenbühl 2016)")
    except BaseException:
        snapshot.restore(model)
        raise


def weight_norm_init(model: nn.Module, batch: Any, *, seed: int | None = None,
                     generator: torch.Generator | None = None, v_std: float = 0.05) -> DataInitReport:
    """Salimans & Kingma 2016 data-dependent init of every weight-normalized layer (``parametrizations.
    weight_norm``): ``v ~ N(0, v_std)``, then ``g <- 1/sigma``, ``b <- -mu/sigma`` per output channel on
    ``batch``. Layers without weight norm are left alone. Raises :class:`DataInitError` when no layer is
    weight-normalized (model unchanged)."""
    _check_common(model, batch, seed, generator)
    if not (isinstance(v_std, (int, float)) and math.isfinite(v_std) and v_std > 0):
        raise DataInitError(f"v_std must be a finite number > 0, got {v_std!r}: the default is v_std=0.05")
    normed = [m for m in weight_layers(model) if _is_weight_normed(m)]
    if not normed:
        legacy = [n for n, m in model.named_modules() if hasattr(m, "weight_g")]
        hint = (f" ({legacy[0]} uses the deprecated torch.nn.utils.weight_norm: use "
                "torch.nn.utils.parametrizations.weight_norm)") if legacy else ""
        raise DataInitError("no weight-normalized layer: apply torch.nn.utils.parametrizations.weight_norm "
                            "to the layers first" + hint)
    plan = _checked(model, normed)
    snapshot = ModelState.capture(model)
    try:
        g = generator if generator is not None else make_generator(model_device(model), seed)
        with torch.no_grad():
            for module in plan:
                holder: Any = module
                plist = holder.parametrizations["weight"]
                plist.original1.normal_(0.0, v_std, generator=g)
                plist.original0.fill_(1.0)
                _, bias = scaled_params(module)
                if bias is not None:
                    bias.zero_()
        return _sweep(model, batch, plan, "weight norm (Salimans & Kingma 2016)")
    except BaseException:
        snapshot.restore(model)
        raise


def _is_weight_normed(module: nn.Module) -> bool:
    return (parametrize.is_parametrized(module, "weight")
            and type(module.parametrizations["weight"][0]).__name__ == "_WeightNorm")  # type: ignore[index]


def _check_common(model: Any, batch: Any, seed: Any, generator: Any) -> None:
    if not isinstance(model, nn.Module):
        raise DataInitError(f"expected an nn.Module, got {type(model).__name__}")
    if seed is not None and generator is not None:
        raise DataInitError("pass either seed or generator, not both")
    check_generator(generator)
    if seed is not None:
        check_seed(seed)
    check_batch(batch)


def _checked(model: nn.Module, layers: Iterable[nn.Module | str] | None) -> dict[nn.Module, str]:
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    try:
        plan = weight_layers(model, layers)
    except AttributeError as exc:  # get_submodule's message names the missing part
        names = [n for n, m in model.named_modules() if homogeneous(m)][:6]
        raise DataInitError(f"layers: {exc}; the weight layers are {', '.join(names) or 'none'}") from None
    if not plan:
        raise DataInitError("the model has no weight layer (Linear, Conv, attention) to initialize")
    for module, name in plan.items():
        if not homogeneous(module):
            raise DataInitError(f"{name!r} ({type(module).__name__}) is not linear in its weight and bias: "
                                "per-channel normalization needs Linear/Conv/ConvTranspose/attention layers")
        weight, _ = scaled_params(module)
        if weight.device.type == "meta" or not weight.is_floating_point():
            raise DataInitError(f"layer {name!r} has a {weight.device.type} {weight.dtype} weight")
    return plan


def _sweep(model: nn.Module, batch: Any, plan: dict[nn.Module, str], method: str) -> DataInitReport:
    done: dict[nn.Module, ChannelCalibration] = {}

    def hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        if module in done:
            return None
        out = primary(output)
        name = plan[module]
        check_activation(name, module, out)
        dim = channel_dim(module, out)
        reduce = [d for d in range(out.dim()) if d != dim]
        flat = out.float()
        mean, std = flat.mean(dim=reduce), flat.std(dim=reduce, unbiased=False)
        alive = std > 0
        safe = torch.where(alive, std, torch.ones_like(std))
        _, bias = scaled_params(module)
        scale_channels_(module, 1.0 / safe, mean if bias is not None else 0.0)
        shape = [1] * out.dim()
        shape[dim] = -1
        centred = flat - mean.view(shape) if bias is not None else flat
        out = (centred / safe.view(shape)).to(out.dtype)
        done[module] = ChannelCalibration(name, type(module).__name__, int(std.numel()), int((~alive).sum()),
                                          (float(std.min()), float(std.max())), float(mean.abs().max()))
        return replace_primary(output, out)

    try:
        sweep(model, batch, plan, hook)
    except DataInitError:
        raise
    except Exception as exc:  # the user's forward refused the batch (shape, dtype, device)
        shapes = ", ".join(f"{tuple(t.shape)} {t.dtype}" for t in _tensors(batch))
        raise DataInitError(f"the batch ({shapes}) does not fit the model: {type(exc).__name__}: "
                            f"{(str(exc).strip().splitlines() or [''])[0]}") from exc
    report = DataInitReport(method, list(done.values()), [n for m, n in plan.items() if m not in done])
    if any(not isinstance(m, nn.MultiheadAttention) and scaled_params(m)[1] is None for m in done):
        report.notes.append("layers without a bias were scaled but not centred")
    return report

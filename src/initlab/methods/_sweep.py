"""The machinery shared by the data-driven inits: which modules are weight layers, how to feed a batch, how to
rescale a layer's weight and bias per output channel, and the checks that keep bad input away from a model."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from ..errors import InitlabValueError
from ..model._registry import layer_type, tensor_of


def homogeneous(module: object) -> bool:
    """``module``'s registered layer type says its output is linear in (weight, bias): multiplying both by s
    multiplies the output by exactly s, and subtracting m from the bias subtracts m from every output of that
    channel (the registry decides, user types included)."""
    t = layer_type(module) if isinstance(module, nn.Module) else None
    return t is not None and t.homogeneous


class DataInitError(InitlabValueError):
    """A data-driven init cannot run on this model and batch; the model was not changed."""


def weight_layers(model: nn.Module, layers: Iterable[nn.Module | str] | None = None) -> dict[nn.Module, str]:
    """The layers to initialize, ``{module: qualified name}``: ``layers`` if given (modules or names), else
    every layer whose registered type is homogeneous (Linear, Bilinear, Conv, ConvTranspose,
    MultiheadAttention, HF Conv1D, user types; not the projections inside an attention)."""
    names = {m: n for n, m in model.named_modules()}
    if layers is not None:
        chosen: dict[nn.Module, str] = {}
        for item in layers:
            module = model.get_submodule(item) if isinstance(item, str) else item
            if module not in names:
                raise DataInitError(f"{type(module).__name__} is not a submodule of the model")
            chosen[module] = names[module]
        return chosen
    attentions = [m for m in names if isinstance(m, nn.MultiheadAttention)]
    inside_attention = {c for m in attentions for c in m.modules() if c is not m}
    return {m: n for m, n in names.items() if homogeneous(m) and m not in inside_attention}


def _locals(module: nn.Module) -> tuple[str, str]:
    """The names of a layer's main weight and its bias, from its registered type."""
    t = layer_type(module)
    specs = t.specs(module) if t is not None else {}
    weight = next((n for n, s in specs.items() if s.role in _WEIGHT_ROLES), "weight")
    bias = next((n for n, s in specs.items() if s.role == "bias" and s.fans_of == weight), "bias")
    return weight, bias


_WEIGHT_ROLES = ("weight", "attention_out")


def _out_axis(module: nn.Module) -> int:
    """The output-channel axis of the main weight (0 for torch's (out, in, ...); 1 for (in, out) layouts)."""
    t = layer_type(module)
    spec = (t.specs(module) if t is not None else {}).get(_locals(module)[0])
    return 1 if spec is not None and spec.layout in ("in_out", "torch_transposed") else 0


def scaled_params(module: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The (weight, bias) tensors whose product with a scale rescales the output (weight-norm: the gain g)."""
    if isinstance(module, nn.MultiheadAttention):
        return module.out_proj.weight, module.out_proj.bias
    name, bias_name = _locals(module)
    parametrizations = getattr(module, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        plist = parametrizations["weight"]
        if type(plist[0]).__name__ != "_WeightNorm":
            raise DataInitError(f"cannot rescale the parametrized weight of {type(module).__name__} "
                                f"({type(plist[0]).__name__}); only weight_norm is supported")
        return plist.original0, _bias(module)
    weight = tensor_of(module, name)
    if weight is None:
        raise DataInitError(f"{type(module).__name__} has no weight tensor to rescale")
    return weight, tensor_of(module, bias_name)


def _bias(module: nn.Module) -> torch.Tensor | None:
    return tensor_of(module, _locals(module)[1])


def channel_dim(module: nn.Module, out: torch.Tensor) -> int:
    """Axis of the output channels in ``out``."""
    if isinstance(module, nn.modules.conv._ConvNd):
        return out.dim() - len(module.kernel_size) - 1
    return out.dim() - 1


@torch.no_grad()
def scale_channels_(module: nn.Module, scale: torch.Tensor | float,
                    shift: torch.Tensor | float = 0.0) -> None:
    """Make the layer compute ``scale * (y - shift)`` per output channel instead of ``y``."""
    weight, bias = scaled_params(module)
    per_channel = isinstance(scale, torch.Tensor) and scale.dim() > 0
    if isinstance(shift, torch.Tensor) or shift != 0.0:
        if bias is None:
            raise DataInitError(f"{type(module).__name__} has no bias to re-center")
        bias.sub_(shift)
    if not per_channel:
        weight.mul_(scale)
        if bias is not None:
            bias.mul_(scale)
        return
    assert isinstance(scale, torch.Tensor)
    scale = scale.to(weight.dtype)
    if bias is not None:
        bias.mul_(scale)
    if weight.dim() == 1 or weight is not tensor_of(module, _locals(module)[0]):  # weight-norm gain
        weight.mul_(scale.view(-1, *([1] * (weight.dim() - 1))))
    elif isinstance(module, nn.modules.conv._ConvTransposeNd):
        groups = module.groups
        w = weight.view(groups, weight.shape[0] // groups, weight.shape[1], -1)
        w.mul_(scale.view(groups, 1, -1, 1))
    elif _out_axis(module) == 1:  # (in, out, ...): HF Conv1D, user x @ W layers
        weight.mul_(scale.view(1, -1, *([1] * (weight.dim() - 2))))
    else:
        weight.mul_(scale.view(-1, *([1] * (weight.dim() - 1))))


def primary(output: Any) -> torch.Tensor:
    """The activation tensor of a layer's output (attention returns ``(output, weights)``)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise DataInitError(f"no activation tensor in a layer output of type {type(output).__name__}")


def replace_primary(output: Any, tensor: torch.Tensor) -> Any:
    if isinstance(output, torch.Tensor):
        return tensor
    return type(output)((tensor, *output[1:]))


def check_batch(batch: Any) -> list[torch.Tensor]:
    """Refuse batches that cannot calibrate anything: non-finite, constant, or a single sample."""
    tensors = _tensors(batch)
    floats = [t for t in tensors if t.is_floating_point()]
    if not tensors:
        raise DataInitError("the batch holds no tensor")
    for t in floats:
        if t.device.type == "meta":
            raise DataInitError("the batch is on the meta device: pass real data")
        if not bool(torch.isfinite(t).all()):
            raise DataInitError("the batch contains NaN or infinite values")
    first = tensors[0]
    if first.dim() == 0 or first.shape[0] < 2:
        raise DataInitError("the batch needs at least 2 samples along its first dimension")
    if floats and all(float(t.float().var()) == 0.0 for t in floats):
        raise DataInitError("the batch has zero variance: every input value is the same")
    return tensors


def _tensors(batch: Any) -> list[torch.Tensor]:
    if isinstance(batch, torch.Tensor):
        return [batch]
    if isinstance(batch, Mapping):
        return [t for v in batch.values() for t in _tensors(v)]
    if isinstance(batch, (tuple, list)):
        return [t for v in batch for t in _tensors(v)]
    return []


def run(model: nn.Module, batch: Any) -> Any:
    """The model's forward on ``batch``; a batch that does not fit (shape, dtype) is a DataInitError."""
    try:
        if isinstance(batch, Mapping):
            return model(**batch)
        if isinstance(batch, (tuple, list)):
            return model(*batch)
        return model(batch)
    except (RuntimeError, TypeError, IndexError) as exc:
        kinds = ", ".join(f"{tuple(t.shape)} {str(t.dtype).replace('torch.', '')}" for t in _tensors(batch))
        first = (str(exc).strip().splitlines() or [""])[0]
        raise DataInitError(f"the batch ({kinds}) does not fit the model: {type(exc).__name__}: {first}; "
                            "pass a batch the model's forward accepts") from exc


def sweep(model: nn.Module, batch: Any, modules: Iterable[nn.Module], hook: Any, *,
          with_kwargs: bool = False) -> None:
    """One no-grad forward pass with ``hook`` on each of ``modules``; buffers are put back afterwards."""
    buffers = BufferGuard(model)
    handles = [m.register_forward_hook(hook, with_kwargs=with_kwargs) for m in modules]
    try:
        with torch.no_grad():
            run(model, batch)
    finally:
        for h in handles:
            h.remove()
        buffers.restore()


def batch_dim(module: nn.Module) -> int:
    return 1 if isinstance(module, nn.MultiheadAttention) and not module.batch_first else 0


def check_activation(name: str, module: nn.Module, out: torch.Tensor) -> float:
    """The output's variance, after refusing outputs that are non-finite or the same for every sample."""
    if out.numel() == 0 or out.dim() == 0:
        raise DataInitError(f"layer {name!r} produced an empty output")
    value = variance(out)
    if not math.isfinite(value):  # any NaN/inf element makes the variance non-finite
        raise DataInitError(f"layer {name!r} produced NaN or infinite values on this batch")
    dim = batch_dim(module)
    if same_for_every_sample(out, dim):
        raise DataInitError(f"layer {name!r} produced the same output for every sample of the batch: its "
                            "scale cannot be calibrated (is an earlier layer dead or the input constant?)")
    return value


def same_for_every_sample(t: torch.Tensor, dim: int) -> bool:
    """True when ``t`` is the same along ``dim`` (the batch): also when that dimension has size 1 (a table
    shared by the batch, e.g. a relative-position MLP's input)."""
    if t.dim() <= dim or t.shape[dim] < 2:
        return True
    first = t.narrow(dim, 0, 1)
    return bool((t.narrow(dim, 1, 1) == first).all()) and bool((t == first).all())


def variance(out: torch.Tensor) -> float:
    return float(out.detach().float().var(unbiased=False))


def finite_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0.0


class BufferGuard:
    """Put buffers (batch-norm running statistics) back after calibration passes."""

    def __init__(self, model: nn.Module) -> None:
        self.saved = [(b, b.detach().clone()) for b in model.buffers() if b.device.type != "meta"]

    @torch.no_grad()
    def restore(self) -> None:
        for b, value in self.saved:
            b.copy_(value)


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters live (the device a private generator must be on)."""
    p = next(iter(model.parameters()), None)
    return p.device if p is not None and p.device.type != "meta" else torch.device("cpu")

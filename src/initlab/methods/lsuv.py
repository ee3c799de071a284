"""LSUV (Mishkin & Matas 2016) in one forward sweep, and the O(L^2) reference algorithm for comparison.

Orthogonal pre-init, then every weight layer in forward order is rescaled until the variance of its output
on the batch is within ``1 ± tol`` (default tol 0.1, at most ``max_iter`` = 10 rescalings; the authors'
PyTorch port uses the same values). The sweep rescales a layer while the batch's activations pass through it:
a forward hook measures the output, rescales the layer, and hands the rescaled output on, so the rest of the
network sees calibrated activations and nothing runs twice. For layers whose output is linear in (weight,
bias) -- Linear, Bilinear, Conv/ConvTranspose (any groups), MultiheadAttention (its output projection) --
rescaling both by s rescales the output by exactly s, so the activation is rescaled in place; other layers
(passed in ``layers=``) are re-evaluated after each rescaling. Total cost: one forward pass plus one
re-evaluation per iteration of a non-linear layer, i.e. O(L) layer evaluations, against O(L^2) for the
reference that reruns the network for every attempt at every layer (:func:`lsuv_reference`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..backends.torch_backend import init_, make_generator
from ..model.state import ModelState
from ._sweep import (
    HOMOGENEOUS,
    BufferGuard,
    DataInitError,
    channel_dim,
    check_activation,
    check_batch,
    finite_positive,
    primary,
    replace_primary,
    run,
    scale_channels_,
    scaled_params,
    sweep,
    variance,
    weight_layers,
)


@dataclass
class LayerCalibration:
    """One layer's LSUV outcome: variance before/after on the batch, rescalings done, evaluations spent."""

    name: str
    kind: str
    initial_variance: float
    variance: float
    iterations: int
    scale: float
    converged: bool
    evaluations: int


@dataclass
class LSUVReport:
    layers: list[LayerCalibration]
    tol: float
    max_iter: int
    target: float
    evaluations: int
    forward_passes: int
    skipped: list[str] = field(default_factory=list)
    algorithm: str = "sweep"

    @property
    def converged(self) -> bool:
        return all(layer.converged for layer in self.layers)

    def __str__(self) -> str:
        head = (f"LSUV ({self.algorithm}): {len(self.layers)} layers, tol {self.tol}, "
                f"max_iter {self.max_iter}, {self.evaluations} layer evaluations, "
                f"{self.forward_passes} forward passes")
        rows = [f"  {c.name:<32} {c.kind:<20} var {c.initial_variance:10.4g} -> {c.variance:.4f}  "
                f"iters {c.iterations}{'' if c.converged else '  NOT CONVERGED'}" for c in self.layers]
        rows += [f"  {name:<32} not reached by the forward pass" for name in self.skipped]
        return "\n".join([head, *rows])

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "tol": self.tol, "max_iter": self.max_iter,
                "target": self.target, "evaluations": self.evaluations, "forward_passes": self.forward_passes,
                "skipped": self.skipped, "layers": [vars(c) for c in self.layers]}


def lsuv(model: nn.Module, batch: Any, *, tol: float = 0.1, max_iter: int = 10, seed: int | None = None,
         generator: torch.Generator | None = None, pre_init: str | None = "orthogonal", center: bool = False,
         target: float = 1.0, layers: Iterable[nn.Module | str] | None = None) -> LSUVReport:
    """Layer-sequential unit-variance init of ``model`` on ``batch``, in one forward sweep.

    ``batch``: the model's input (a tensor, or a tuple/dict of arguments). ``pre_init``: ``"orthogonal"``
    (the paper), any catalog scheme, or ``None`` to keep the current weights. ``center``: also move each
    layer's bias so its outputs have zero mean per channel. ``layers``: which modules to calibrate (default:
    every Linear/Bilinear/Conv/ConvTranspose/MultiheadAttention). Batch-norm running statistics are left as
    they were. Raises :class:`DataInitError` (model unchanged) for a non-finite or constant batch, or a layer
    whose output is non-finite or the same for every sample.
    """
    plan = _plan(model, batch, tol, max_iter, target, layers)
    snapshot = ModelState.capture(model)
    try:
        _pre_init(plan, pre_init, seed, generator)
        return _sweep(model, batch, plan, tol, max_iter, target, center)
    except BaseException:
        snapshot.restore(model)
        raise


def lsuv_reference(model: nn.Module, batch: Any, *, tol: float = 0.1, max_iter: int = 10,
                   seed: int | None = None, generator: torch.Generator | None = None,
                   pre_init: str | None = "orthogonal", target: float = 1.0,
                   layers: Iterable[nn.Module | str] | None = None) -> LSUVReport:
    """The textbook algorithm, for comparison: for each layer, run the whole network, read the layer's output
    variance, rescale, repeat (the authors' code does this). O(L^2) layer evaluations."""
    plan = _plan(model, batch, tol, max_iter, target, layers)
    snapshot = ModelState.capture(model)
    try:
        _pre_init(plan, pre_init, seed, generator)
        return _reference(model, batch, plan, tol, max_iter, target)
    except BaseException:
        snapshot.restore(model)
        raise


def _plan(model: nn.Module, batch: Any, tol: float, max_iter: int, target: float,
          layers: Iterable[nn.Module | str] | None) -> dict[nn.Module, str]:
    if not tol > 0:
        raise DataInitError(f"tol must be > 0, got {tol}")
    if max_iter < 1:
        raise DataInitError(f"max_iter must be >= 1, got {max_iter}")
    if not finite_positive(target):
        raise DataInitError(f"target variance must be finite and > 0, got {target}")
    check_batch(batch)
    plan = weight_layers(model, layers)
    if not plan:
        raise DataInitError("the model has no weight layer (Linear, Conv, attention) to calibrate")
    for module, name in plan.items():
        weight, _ = scaled_params(module)
        if weight.device.type == "meta":
            raise DataInitError(f"layer {name!r} is on the meta device: materialize the model first")
        if not weight.is_floating_point():
            raise DataInitError(f"layer {name!r} has a {weight.dtype} weight")
    return plan


@torch.no_grad()
def _pre_init(plan: dict[nn.Module, str], scheme: str | None, seed: int | None,
              generator: torch.Generator | None) -> None:
    if scheme is None:
        return
    device = scaled_params(next(iter(plan)))[0].device
    g = generator if generator is not None else make_generator(device, seed)
    done: set[tuple[object, ...]] = set()
    for module in plan:
        for w in _pre_init_targets(module):
            # by memory, not id(): the q/k/v blocks are views made here, whose ids Python reuses once freed
            where = (w.untyped_storage().data_ptr(), w.storage_offset(), tuple(w.shape), w.stride())
            if where not in done and w.dim() >= 2:
                done.add(where)
                init_(w, scheme, g)
        parametrizations = getattr(module, "parametrizations", None)
        if parametrizations is not None and "weight" in parametrizations:  # weight norm: g = |v| per row
            plist = parametrizations["weight"]
            v = plist.original1
            plist.original0.copy_(v.flatten(1).norm(dim=1).view_as(plist.original0))


def _pre_init_targets(module: nn.Module) -> list[torch.Tensor]:
    if isinstance(module, nn.MultiheadAttention):
        out = [module.out_proj.weight]
        if module.in_proj_weight is not None:
            out += list(module.in_proj_weight.chunk(3, dim=0))  # views: q, k, v blocks separately
        else:
            out += [module.q_proj_weight, module.k_proj_weight, module.v_proj_weight]
        return out
    parametrizations = getattr(module, "parametrizations", None)
    if parametrizations is not None and "weight" in parametrizations:
        return [parametrizations["weight"].original1]
    weight = getattr(module, "weight", None)
    return [weight] if isinstance(weight, torch.Tensor) else []


@dataclass
class _State:
    name: str
    calls: int = 0
    result: LayerCalibration | None = None


def _sweep(model: nn.Module, batch: Any, plan: dict[nn.Module, str], tol: float, max_iter: int, target: float,
           center: bool) -> LSUVReport:
    states = {m: _State(n) for m, n in plan.items()}
    order: list[nn.Module] = []
    owner: dict[int, str] = {}  # weight tensor -> the layer that calibrated it (tied weights: once)

    def hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        state = states[module]
        state.calls += 1
        if state.result is not None:  # a layer applied twice (shared weights) is calibrated at its first use
            return None
        order.append(module)
        out = primary(output)
        first = current = check_activation(state.name, module, out)
        weight_id = id(scaled_params(module)[0])
        if weight_id in owner:
            state.result = LayerCalibration(state.name, f"tied to {owner[weight_id]}", first, current, 0, 1.0,
                                            True, 1)
            return None
        owner[weight_id] = state.name
        if center:
            out = _center(module, out)
            first = current = variance(out)
        iterations, total, evaluations = 0, 1.0, 1
        exact = isinstance(module, HOMOGENEOUS)
        while abs(current - target) >= tol and iterations < max_iter:
            s = (target / current) ** 0.5
            scale_channels_(module, s)
            total *= s
            iterations += 1
            if exact:  # the output scales exactly with (weight, bias): no need to run the layer again
                out = out.mul_(s)
                current *= s * s
            else:
                out = primary(module.forward(*args, **kwargs))
                evaluations += 1
                current = check_activation(state.name, module, out)
        state.calls += evaluations - 1
        state.result = LayerCalibration(state.name, type(module).__name__, first, current, iterations, total,
                                        abs(current - target) < tol, evaluations)
        return replace_primary(output, out.to(primary(output).dtype))

    sweep(model, batch, plan, hook, with_kwargs=True)
    results = [states[m].result for m in order]
    return LSUVReport([r for r in results if r is not None], tol, max_iter, target,
                      evaluations=sum(s.calls for s in states.values()), forward_passes=1,
                      skipped=[s.name for s in states.values() if s.result is None])


def _center(module: nn.Module, out: torch.Tensor) -> torch.Tensor:
    _, bias = scaled_params(module)
    if bias is None:
        return out
    dim = channel_dim(module, out)
    mean = out.float().mean(dim=[d for d in range(out.dim()) if d != dim])
    scale_channels_(module, 1.0, mean.to(bias.dtype))
    shape = [1] * out.dim()
    shape[dim] = -1
    return out.sub_(mean.view(shape).to(out.dtype))


def _reference(model: nn.Module, batch: Any, plan: dict[nn.Module, str], tol: float, max_iter: int,
               target: float) -> LSUVReport:
    counts = dict.fromkeys(plan, 0)
    order: list[nn.Module] = []
    captured: dict[nn.Module, torch.Tensor] = {}

    def count(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        counts[module] += 1
        if module not in order:
            order.append(module)
        captured.setdefault(module, primary(output).detach())

    buffers = BufferGuard(model)
    handles = [m.register_forward_hook(count) for m in plan]
    passes = 0

    def forward() -> None:
        nonlocal passes
        captured.clear()
        passes += 1
        with torch.no_grad():
            run(model, batch)

    results: list[LayerCalibration] = []
    try:
        forward()  # discovers the forward order
        for module in list(order):
            name = plan[module]
            iterations, total, first = 0, 1.0, None
            while True:
                forward()
                current = check_activation(name, module, captured[module])
                first = current if first is None else first
                if abs(current - target) < tol or iterations == max_iter:
                    break
                s = (target / current) ** 0.5
                scale_channels_(module, s)
                total *= s
                iterations += 1
            results.append(LayerCalibration(name, type(module).__name__, first, current, iterations, total,
                                            abs(current - target) < tol, iterations + 1))
    finally:
        for h in handles:
            h.remove()
        buffers.restore()
    return LSUVReport(results, tol, max_iter, target, evaluations=sum(counts.values()), forward_passes=passes,
                      skipped=[plan[m] for m in plan if m not in order], algorithm="reference O(L^2)")

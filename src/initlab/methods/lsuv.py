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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from ..backends.torch_backend import init_, make_generator
from ..model.state import ModelState
from ._sweep import (
    BufferGuard,
    DataInitError,
    batch_dim,
    channel_dim,
    check_activation,
    check_batch,
    finite_positive,
    homogeneous,
    primary,
    replace_primary,
    run,
    same_for_every_sample,
    scale_channels_,
    scaled_params,
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
    reasons: dict[str, str] = field(default_factory=dict)  # skipped layer -> why
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
        rows += [f"  {name:<32} skipped: {self.reasons.get(name, NOT_REACHED)}" for name in self.skipped]
        return "\n".join([head, *rows])

    def to_dict(self) -> dict[str, Any]:
        return {"algorithm": self.algorithm, "tol": self.tol, "max_iter": self.max_iter,
                "target": self.target, "evaluations": self.evaluations, "forward_passes": self.forward_passes,
                "skipped": self.skipped, "reasons": self.reasons, "layers": [vars(c) for c in self.layers]}


def lsuv(model: nn.Module, batch: Any, *, tol: float = 0.1, max_iter: int = 10, seed: int | None = None,
         generator: torch.Generator | None = None, pre_init: str | None = "orthogonal", center: bool = False,
         target: float = 1.0, layers: Iterable[nn.Module | str] | None = None) -> LSUVReport:
    """Layer-sequential unit-variance init of ``model`` on ``batch``, in one forward sweep.

    ``batch``: the model's input (a tensor, or a tuple/dict of arguments). ``pre_init``: ``"orthogonal"``
    (the paper), any catalog scheme, or ``None`` to keep the current weights. ``center``: also move each
    layer's bias so its outputs have zero mean per channel. ``layers``: which modules to calibrate (default:
    every Linear/Bilinear/Conv/ConvTranspose/MultiheadAttention and HF ``Conv1D``); a layer used through
    ``F.linear``/``F.conv*`` outside its own forward (torchvision's Swin) is calibrated there. Batch-norm
    running statistics are left as they were. A layer whose output does not depend on the batch -- its
    input is the same for every sample (positional projections, zero-initialized queries), it computes a
    table of batch size 1, or a zero gain or weight makes its output constant -- is skipped and
    ``report.reasons`` says why. Raises :class:`DataInitError` (model unchanged) for a non-finite or constant
    batch, or a layer whose output is non-finite.
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
    plan = weight_layers(model, layers)  # HF Conv1D included: its registered type is homogeneous
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
        if parametrizations is not None and "weight" in parametrizations:  # weight norm: g = |v| per slice
            plist = parametrizations["weight"]
            v = plist.original1
            dim = getattr(plist[0], "dim", 0)  # weight_norm(dim=2) (Wav2Vec2's positional conv): g (1, 1, k)
            plist.original0.copy_(torch.norm_except_dim(v, 2, dim).view_as(plist.original0))


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


SKIP_SHARED_TABLE = ("its output has size 1 along the batch dimension: it computes a table shared by every "
                     "sample (e.g. a relative-position MLP), which the batch cannot calibrate; kept at its "
                     "pre-init")
SKIP_SAME_INPUT = ("its input is the same for every sample (a positional or learned-query projection that "
                   "does not see the data), so the batch cannot calibrate it; kept at its pre-init")
SKIP_DEAD_OUTPUT = ("its output is the same for every sample although its input is not (a zero-initialized "
                    "weight or gain, as the last layer of a residual branch often has), which rescaling "
                    "cannot change; kept at its pre-init")
SKIP_ZERO_INPUT = ("its input is zero for every sample (zero-initialized queries, or an earlier layer that "
                   "outputs zeros), so the batch cannot calibrate it; kept at its pre-init")
NOT_REACHED = "not reached by the forward pass"


def used_elsewhere(op: str) -> str:
    return (f"its weight is used through {op} outside the module's forward (not F.linear/F.conv), which LSUV "
            "cannot rescale in flight; kept at its pre-init")


def input_independent(module: nn.Module, inp: torch.Tensor | None, out: torch.Tensor) -> str | None:
    """Why this layer's output does not depend on the batch (a reason to skip it), or None."""
    dim = batch_dim(module)
    if out.dim() > dim and out.shape[dim] == 1:
        return SKIP_SHARED_TABLE
    if not same_for_every_sample(out, dim) or inp is None or not inp.is_floating_point():
        return None
    if not same_for_every_sample(inp, dim):
        return SKIP_DEAD_OUTPUT
    if not bool(inp.any()):
        return SKIP_ZERO_INPUT
    return SKIP_SAME_INPUT if inp.dim() > dim and inp.shape[dim] > 1 else SKIP_SHARED_TABLE


class _Calibrator:
    """The sweep's state: each planned layer is calibrated at its first use, whether the model calls the
    module (a forward hook) or uses its weight through ``F.linear``/``F.conv*`` (a torch-function mode)."""

    def __init__(self, plan: dict[nn.Module, str], tol: float, max_iter: int, target: float, center: bool):
        self.states = {m: _State(n) for m, n in plan.items()}
        self.tol, self.max_iter, self.target, self.center = tol, max_iter, target, center
        self.order: list[nn.Module] = []
        self.owner: dict[int, str] = {}  # weight tensor -> the layer that calibrated it (tied weights: once)
        self.reasons: dict[str, str] = {}
        self.running: set[nn.Module] = set()  # modules inside their own forward: their hook calibrates them
        self.used_by: dict[nn.Module, str] = {}  # weights read by other ops outside their module's forward
        self.by_weight: dict[int, list[nn.Module]] = {}  # tied weights: several modules
        for m in plan:
            w = getattr(m, "weight", None)
            if isinstance(w, torch.Tensor):
                self.by_weight.setdefault(id(w), []).append(m)

    def calibrate(self, module: nn.Module, inp: torch.Tensor | None, out: torch.Tensor,
                  rerun: Callable[[], torch.Tensor] | None) -> torch.Tensor | None:
        """Rescale ``module`` until its output variance is on target; the rescaled output, or None to keep
        the original one (calibrated before, tied, or skipped with a reason)."""
        state = self.states[module]
        state.calls += 1
        if state.result is not None or state.name in self.reasons:
            return None
        self.order.append(module)
        reason = input_independent(module, inp, out)
        if reason is not None:
            self.reasons[state.name] = reason
            return None
        first = current = check_activation(state.name, module, out)
        weight_id = id(scaled_params(module)[0])
        if weight_id in self.owner:
            state.result = LayerCalibration(state.name, f"tied to {self.owner[weight_id]}", first, current, 0,
                                            1.0, True, 1)
            return None
        self.owner[weight_id] = state.name
        if self.center:
            out = _center(module, out)
            first = current = variance(out)
        iterations, total, evaluations = 0, 1.0, 1
        exact = (homogeneous(module) and _plain_forward(module)) or rerun is None
        while abs(current - self.target) >= self.tol and iterations < self.max_iter:
            s = (self.target / current) ** 0.5
            scale_channels_(module, s)
            total *= s
            iterations += 1
            if exact:  # the output scales exactly with (weight, bias): no need to run the layer again
                out = out.mul_(s)
                current *= s * s
            else:
                assert rerun is not None
                out = rerun()
                evaluations += 1
                current = check_activation(state.name, module, out)
        state.calls += evaluations - 1
        state.result = LayerCalibration(state.name, type(module).__name__, first, current, iterations, total,
                                        abs(current - self.target) < self.tol, evaluations)
        return out

    def hook(self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], output: Any) -> Any:
        self.running.discard(module)
        out = primary(output)
        inp = _first_tensor(args, kwargs)
        new = self.calibrate(module, inp, out, lambda: primary(module.forward(*args, **kwargs)))
        return None if new is None else replace_primary(output, new.to(out.dtype))

    def pre_hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.running.add(module)

    def functional(self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """``F.linear(x, layer.weight, ...)`` outside ``layer.forward`` (Swin's qkv/proj in torchvision)."""
        out = func(*args, **kwargs)
        weight = args[1] if len(args) > 1 else kwargs.get("weight")
        modules = self.by_weight.get(id(weight), [])
        if not modules or any(m in self.running for m in modules) or not isinstance(out, torch.Tensor):
            return out
        new = self.calibrate(modules[0], args[0] if args else kwargs.get("input"), out, None)
        return out if new is None else new


_FUNCTIONAL = (F.linear, F.conv1d, F.conv2d, F.conv3d, F.conv_transpose1d, F.conv_transpose2d,
               F.conv_transpose3d, F.bilinear)


class _FunctionalUses(TorchFunctionMode):
    def __init__(self, calibrator: _Calibrator) -> None:
        super().__init__()
        self.calibrator = calibrator

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        if func in _FUNCTIONAL:
            return self.calibrator.functional(func, args, kwargs or {})
        cal = self.calibrator
        for value in args:
            modules = cal.by_weight.get(id(value), ()) if isinstance(value, torch.Tensor) else ()
            for m in modules:
                if m not in cal.running:
                    cal.used_by.setdefault(m, getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


_PLAIN = {c.forward for c in (nn.Linear, nn.Bilinear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                              nn.ConvTranspose2d, nn.ConvTranspose3d, nn.MultiheadAttention)}
# torch's own homogeneous layers: a subclass of one of these with its own forward may transform the weight
_TORCH_LINEAR = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd, nn.MultiheadAttention)


def _plain_forward(module: nn.Module) -> bool:
    """The class keeps torch's forward, or is not a torch layer class (HF Conv1D, a registered user layer,
    which the registry says is homogeneous): its output scales exactly with (weight, bias). A subclass of a
    torch layer may transform the weight first (timm's ScaledStdConv2d standardizes it), so it is re-run."""
    return type(module).forward in _PLAIN or not isinstance(module, _TORCH_LINEAR)


def _first_tensor(args: tuple[Any, ...], kwargs: dict[str, Any]) -> torch.Tensor | None:
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            return value
    return None


def _sweep(model: nn.Module, batch: Any, plan: dict[nn.Module, str], tol: float, max_iter: int, target: float,
           center: bool) -> LSUVReport:
    cal = _Calibrator(plan, tol, max_iter, target, center)
    buffers = BufferGuard(model)
    handles = [m.register_forward_pre_hook(cal.pre_hook) for m in plan]
    handles += [m.register_forward_hook(cal.hook, with_kwargs=True) for m in plan]
    try:
        with torch.no_grad(), _FunctionalUses(cal):
            run(model, batch)
    finally:
        for h in handles:
            h.remove()
        buffers.restore()
    results = [cal.states[m].result for m in cal.order]
    reasons = dict(cal.reasons)
    reasons.update({s.name: used_elsewhere(cal.used_by[m]) if m in cal.used_by else NOT_REACHED
                    for m, s in cal.states.items() if s.result is None and s.name not in reasons})
    return LSUVReport([r for r in results if r is not None], tol, max_iter, target,
                      evaluations=sum(s.calls for s in cal.states.values()), forward_passes=1,
                      skipped=list(reasons), reasons=reasons)


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

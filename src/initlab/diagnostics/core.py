"""``diagnose``: one forward and one backward pass with hooks, the model restored exactly afterwards."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import InitlabTypeError, InitlabValueError
from ..model._apply import model_lock
from ..model._isolate import kept_rngs
from ..model.state import ModelState
from . import stats
from .diagnosis import Diagnosis
from .recorder import Recorder
from .sites import Site, layer_sites

DEFAULT_SEED = 0
LossFn = Callable[..., torch.Tensor]


def diagnose(
    model: nn.Module,
    batch: Any,
    *,
    target: Any = None,
    loss_fn: LossFn | None = None,
    seed: int | None = None,
    jacobian: bool = False,
    full_rank: bool = False,
) -> Diagnosis:
    """Measure, layer by layer, how signal and gradients propagate through ``model`` on ``batch``.

    ``batch`` is a tensor, a tuple of positional inputs or a dict of keyword inputs. The backward pass uses
    ``loss_fn(output, target)`` when given (cross-entropy for integer targets, MSE otherwise, when only
    ``target`` is given), else a unit-variance random cotangent drawn from a private generator seeded with
    ``seed`` (0 when None, so the same call gives the same numbers). ``jacobian=True`` also measures the
    singular values of the input-output Jacobian on up to 4 samples. The effective rank of a weight matrix
    whose both sides exceed 128 (an O(n^3) eigendecomposition: 3.5 ms at 256, which costs more than the
    passes measured on a small batch) is left out (None) unless ``full_rank=True``; the diagnosis notes how
    many. Dropout in train mode draws from torch's global generator, whose state is restored afterwards;
    call ``model.eval()`` first to measure without it.
    Parameters, buffers, ``.grad``, ``requires_grad`` and train/eval modes are restored exactly afterwards,
    also when the pass fails; ``init_model`` calls on the same model from other threads wait meanwhile.

    >>> import torch, initlab
    >>> net = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> d = initlab.diagnose(net, torch.randn(32, 8, generator=torch.Generator().manual_seed(0)))
    >>> [la.name for la in d.layers]
    ['0', '2']
    """
    params = _validate(model, batch, loss_fn)
    seed = DEFAULT_SEED if seed is None else int(seed)
    with model_lock(model):  # an init_model running in another thread must not be undone by our restore
        return _measure(model, params, batch, target, loss_fn, seed, jacobian, full_rank)


def _measure(model: nn.Module, params: list[nn.Parameter], batch: Any, target: Any, loss_fn: LossFn | None,
             seed: int, jacobian: bool, full_rank: bool) -> Diagnosis:
    state = ModelState.capture(model)
    try:
        sites, notes = layer_sites(model, batch)  # discovery may run the model once
        if not sites:
            raise InitlabValueError(
                f"found no layers to diagnose in {type(model).__name__} (Linear, Conv, Embedding, "
                "attention...)"
            )
        # dropout draws from torch's global generator: fork it so the caller's stream is left as it was
        with torch.random.fork_rng(devices=_cuda_devices(params)), torch.enable_grad(), _kept_rngs(sites):
            with Recorder(sites, edges=True) as recorder:
                grads, loss = _forward_backward(model, batch, target, loss_fn, seed, params, recorder)
            with stats.full_rank(full_rank):
                layers = recorder.layers(lambda p: grads.get(id(p)))
            notes = [*notes, *_rank_note(layers)]
            spectrum = None
            if jacobian:
                from .jacobian import jacobian_spectrum

                spectrum = jacobian_spectrum(model, batch)
    except RuntimeError as exc:
        state.restore(model)
        raise InitlabValueError(
            f"diagnose: the forward/backward pass of {type(model).__name__} failed on a batch of "
            f"shape {_shape(batch)}: {exc}"
        ) from exc
    except BaseException:
        state.restore(model)
        raise
    state.restore(model)
    return Diagnosis.build(
        type(model).__name__,
        _shape(batch),
        layers,
        input_rms=_input_rms(batch),
        loss=loss,
        seed=seed,
        jacobian=spectrum,
        notes=notes,
    )


def _kept_rngs(sites: list[Site]) -> contextlib.AbstractContextManager[None]:
    """Evaluating a custom activation module (HF's ``GELUActivation``) keeps every global RNG around each
    call, a snapshot of numpy's state alone ~0.2 ms, twice per such layer; one block around the whole pass
    keeps them once (the nested ones then do nothing)."""
    if any(s.activation is not None and getattr(s.activation.fn, "runs_module", False) for s in sites):
        return kept_rngs()
    return contextlib.nullcontext()


def _rank_note(layers: list[Any]) -> list[str]:
    skipped = sum(1 for la in layers if la.effective_rank is None and la.weight is not None
                  and len(la.weight.shape) >= 2 and "#" not in la.name)
    if not skipped:
        return []
    return [f"effective rank not computed for {skipped} weight matri{'x' if skipped == 1 else 'ces'} larger "
            f"than {stats.RANK_LIMIT} on both sides (O(n^3)); diagnose(..., full_rank=True) computes them"]


def _validate(model: Any, batch: Any, loss_fn: Any) -> list[nn.Parameter]:
    """The model's parameters (walked once: the checks, the RNG fork and the pass use them), after checking
    the arguments."""
    if not isinstance(model, nn.Module):
        raise InitlabTypeError(f"diagnose expects a torch.nn.Module, got {type(model).__name__}")
    if loss_fn is not None and not callable(loss_fn):
        raise InitlabTypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
    tensors = _tensors(batch)
    if not tensors:
        raise InitlabTypeError(
            "batch must be a tensor, a tuple/list of tensors or a dict of tensors, got "
            f"{type(batch).__name__}"
        )
    for t in tensors:
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            raise InitlabValueError("the batch contains NaN or infinite values; diagnose needs finite inputs")
    # model.parameters(), read from each module's own dict: its generators walk the module tree per call
    held = {id(p): p for m in model.modules() for p in m._parameters.values() if p is not None}
    params = list(held.values())
    if any(p.device.type == "meta" for p in params):
        meta = next(n for n, p in model.named_parameters() if p.device.type == "meta")
        raise InitlabValueError(f"parameters on the meta device ({meta}, ...): materialize the model first")
    return params


def _forward_backward(
    model: nn.Module, batch: Any, target: Any, loss_fn: LossFn | None, seed: int,
    params: list[nn.Parameter] | None = None, recorder: Recorder | None = None,
) -> tuple[dict[int, torch.Tensor], float | None]:
    """The parameters' gradients (by id) and the loss (None without a target or loss_fn); the recorder's
    layer outputs' gradients come back from the same ``autograd.grad`` call."""
    params = [p for p in (model.parameters() if params is None else params)  # tied weights come once
              if p.is_floating_point()]
    for p in params:
        p.requires_grad_(True)
    output = _call(model, batch)
    outputs = [t for t in _tensors(output) if t.is_floating_point() and t.requires_grad]
    if not outputs:
        raise InitlabValueError(
            f"{type(model).__name__} returned no floating-point tensor that depends on its "
            "parameters; nothing to differentiate"
        )
    loss_value: float | None = None
    if loss_fn is not None or target is not None:
        loss = _loss(output, outputs[0], target, loss_fn)
        loss_value = float(loss.detach())
        roots, cotangents = [loss], [torch.ones_like(loss)]
    else:
        g = torch.Generator(device=outputs[0].device).manual_seed(seed)
        roots = outputs
        cotangents = [torch.randn(o.shape, generator=g, device=o.device).to(o.dtype) for o in outputs]
    edges = recorder.grad_edges() if recorder is not None else []
    inputs: list[Any] = [*params, *edges]  # (torch's annotation wants one kind; autograd takes both)
    # a backward that runs the forward again (activation checkpointing, Reformer's reversible layers) does not
    # record its layers a second time (the recorder's hooks skip calls made during a backward pass)
    found = torch.autograd.grad(roots, inputs, cotangents, allow_unused=True)
    if recorder is not None:
        recorder.take_grads(found[len(params):])
    return {id(p): g for p, g in zip(params, found[:len(params)], strict=True) if g is not None}, loss_value


def _loss(output: Any, first: torch.Tensor, target: Any, loss_fn: LossFn | None) -> torch.Tensor:
    if loss_fn is None:  # only a target: cross-entropy for class indices, else MSE, on the first output
        integer = isinstance(target, torch.Tensor) and not target.is_floating_point()
        loss = F.cross_entropy(first, target) if integer else F.mse_loss(first, target)
    else:
        loss = loss_fn(output, target) if target is not None else loss_fn(output)
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise InitlabValueError("loss_fn must return a scalar tensor")
    return loss.reshape(())


def _call(model: nn.Module, batch: Any) -> Any:
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    return model(batch)


def _tensors(obj: Any) -> list[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [t for item in obj for t in _tensors(item)]
    return []


def _shape(batch: Any) -> list[int]:
    tensors = _tensors(batch)
    return list(tensors[0].shape) if tensors else []


def _input_rms(batch: Any) -> float | None:
    tensors = [t for t in _tensors(batch) if t.is_floating_point()]
    if not tensors:
        return None
    rms = stats.moments(tensors[0]).rms
    return rms if math.isfinite(rms) else None


def _cuda_devices(params: list[nn.Parameter]) -> list[int]:
    return sorted({p.device.index or 0 for p in params if p.device.type == "cuda"})

"""Forward passes initlab runs for its own purposes leave no trace: global RNGs and buffers are kept.

Discovery, the example-input check and Lazy materialization run the user's model once. That forward may draw
from torch's global generator (Dropout and stochastic depth in train mode), from Python's ``random`` or
numpy's global state (a user's forward may call them), and may write buffers (BatchNorm running statistics,
counters, EMA, KV caches, spectral norm's ``_u``/``_v``). None of this is the user's intent when they ask for
an initialization, so every such forward runs inside :func:`kept_rngs` and :func:`kept_buffers`.
"""

from __future__ import annotations

import contextlib
import random
import threading
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.parameter import UninitializedBuffer

_KEEPING = threading.local()  # whether this thread is inside a kept_rngs block


@contextlib.contextmanager
def kept_rngs() -> Iterator[None]:
    """torch's CPU and (initialized) CUDA generators, Python's ``random`` and numpy's global state, as on
    entry, whatever happens inside. Inside another ``kept_rngs`` of the same thread it does nothing: the outer
    one restores them all (a snapshot of numpy's state alone costs ~0.2 ms, and a plan evaluates a custom
    activation module dozens of times)."""
    if getattr(_KEEPING, "active", False):
        yield
        return
    _KEEPING.active = True
    try:
        with _kept_rngs():
            yield
    finally:
        _KEEPING.active = False


@contextlib.contextmanager
def _kept_rngs() -> Iterator[None]:
    cpu = torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
    py = random.getstate()
    npy = np.random.get_state()
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)
        random.setstate(py)
        np.random.set_state(npy)


_Saved = tuple[nn.Module, str, torch.Tensor, torch.Tensor | None, int]


@contextlib.contextmanager
def kept_buffers(model: nn.Module) -> Iterator[None]:
    """Every buffer as on entry: values written in place are copied back, buffers the forward replaced or
    added are put back or removed (Lazy buffers the forward materializes stay materialized)."""
    saved: list[_Saved] = []
    known: set[tuple[int, str]] = set()
    for module in model.modules():
        for name, buf in module._buffers.items():
            known.add((id(module), name))
            if buf is None or isinstance(buf, UninitializedBuffer):
                continue  # materializing these is the point of the forward that meets them
            copy = None if buf.device.type == "meta" else buf.detach().clone()
            saved.append((module, name, buf, copy, _version(buf)))
    try:
        yield
    finally:
        _restore(model, saved, known)


def _version(t: torch.Tensor) -> int:
    try:
        return int(t._version)
    except RuntimeError:  # inference tensors have no version counter
        return -1


def _restore(model: nn.Module, saved: list[_Saved], known: set[tuple[int, str]]) -> None:
    for module, name, buf, copy, version in saved:
        if module._buffers.get(name) is not buf:
            module._buffers[name] = buf
        # (BatchNorm's kernel updates its running statistics without bumping the version counter)
        if copy is not None and (version < 0 or _version(buf) != version or not torch.equal(buf, copy)):
            with torch.no_grad():
                buf.copy_(copy)
    for module in model.modules():
        for name in [n for n in module._buffers if (id(module), n) not in known]:
            del module._buffers[name]


@contextlib.contextmanager
def quiet_forward(model: nn.Module) -> Iterator[None]:
    """A forward of initlab's own: no grad, global RNGs and buffers kept, training flags restored; eval mode
    (dropout and stochastic depth are random masks, not the function), except that a BatchNorm in training
    mode keeps normalizing by the batch, as it will in the first training step the plan is for. (In eval mode
    it used its running statistics: a fresh model's are the identity, and after one training-mode forward
    they are a tenth of the way to the batch's, so the averages the example shows -- EfficientNet-B7's
    squeeze-excitation pools -- depended on whether the user had run the model once.) A norm that cannot
    take batch statistics of its input (one value per channel) uses its running ones for that call, and a
    SyncBatchNorm stays in eval mode: by the batch it would synchronize with other ranks, a collective they
    may never join when only this one initializes."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    handles = []
    for m, flag in flags:
        if flag and isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, nn.SyncBatchNorm):
            m.training = True
            handles.append(m.register_forward_pre_hook(_batch_stats_if_possible))
    try:
        with kept_rngs(), kept_buffers(model), torch.no_grad():
            yield
    finally:
        for h in handles:
            h.remove()
        for m, flag in flags:
            m.training = flag


def _batch_stats_if_possible(module: nn.Module, args: tuple[object, ...]) -> None:
    x = args[0] if args else None
    if isinstance(x, torch.Tensor) and x.dim() >= 2:
        module.training = x.numel() // max(x.shape[1], 1) > 1

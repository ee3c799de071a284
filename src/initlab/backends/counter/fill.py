"""Fill torch tensors from the counter-based generator: ``counter_fill_(tensor, draw, seed=, name=)``.

A tensor may be the whole parameter or any rectangular piece of it (a shard): ``global_shape`` is the full
parameter's shape and ``offset`` either the flat global index of the piece's first element (a piece that is
contiguous in the full tensor, e.g. FSDP's dim-0 shards) or one offset per dimension (a box, e.g. DTensor
``Shard(1)``). Elementwise draws (Constant, Uniform, Normal, TruncatedNormal) are generated for exactly the
piece's indices. Structured draws (Orthogonal, DeltaOrthogonal, Sparse, Eye, Dirac, ZerO) are defined on the
global tensor: its Gaussian (and, for Sparse, the mask keys) are drawn by index, the construction (QR with the
sign fix, per-column masking) runs on the full tensor -- on every rank that holds a piece, with no
communication -- and the piece is cut out of it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from ...catalog import draws as d
from .. import torch_backend
from . import counter

Engine = Literal["auto", "numba", "numpy"]
SERIAL_BELOW = 1 << 18  # elements: below this a parallel launch costs more than it saves

try:  # the JIT kernel is optional (``pip install initlab[fast]``); the numpy reference gives the same values
    from . import kernels_numba as _numba
except ImportError:  # pragma: no cover - exercised on installs without numba
    _numba = None  # type: ignore[assignment]


def has_numba() -> bool:
    return _numba is not None and os.environ.get("INITLAB_NO_NUMBA", "") in ("", "0")


def fill_array(out: np.ndarray, starts: np.ndarray, p: counter.CounterPlan, *, engine: Engine = "auto",
               threads: int | None = None) -> None:
    """Fill a 2-D float32/float64 array whose row ``r`` holds global indices ``starts[r] + arange(cols)``."""
    if p.constant is not None:
        out.fill(p.constant)
        return
    use_numba = engine == "numba" or (engine == "auto" and has_numba())
    if not use_numba:
        counter.fill_numpy(out, starts, p)
        return
    if _numba is None:
        raise RuntimeError("engine='numba' needs numba: pip install 'initlab[fast]'")
    params = np.asarray(p.params, dtype=np.float64)
    import numba

    most = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    n = max(1, min(threads or torch.get_num_threads(), most))
    if n == 1 or out.size < SERIAL_BELOW:
        _numba.fill_serial(out, starts, p.kind, p.stream, p.key[0], p.key[1], params)
        return
    with _numba.LAUNCH:
        before = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            _numba.fill(out, starts, p.kind, p.stream, p.key[0], p.key[1], params)
        finally:
            numba.set_num_threads(before)


def row_starts(local_shape: Sequence[int], global_shape: Sequence[int],
               offset: int | Sequence[int] = 0) -> tuple[np.ndarray, int]:
    """Split a piece of a row-major global tensor into runs of consecutive global indices:
    ``(starts, length)``. ``offset``: flat index of the first element (the piece is then contiguous in the
    global tensor) or one offset per dimension (a box).
    """
    local, glob = tuple(int(s) for s in local_shape), tuple(int(s) for s in global_shape)
    n = math.prod(local)
    whole = offset == 0 if isinstance(offset, (int, np.integer)) else (
        len(offset) == len(local) and not any(offset))
    if local and local == glob and whole:  # the whole tensor: one run
        return np.zeros(1, dtype=np.int64), n
    if isinstance(offset, (int, np.integer)):
        if offset < 0 or offset + n > math.prod(glob):
            raise ValueError(f"a piece of {n} elements at offset {offset} does not fit in shape {glob}")
        return np.array([int(offset)], dtype=np.int64), n
    offs = tuple(int(o) for o in offset)
    if not len(offs) == len(local) == len(glob):
        raise ValueError(f"offset {offs}, local shape {local} and global shape {glob} differ in length")
    if any(o < 0 or o + s > g for o, s, g in zip(offs, local, glob, strict=True)):
        raise ValueError(f"a box of shape {local} at {offs} does not fit in global shape {glob}")
    if not local:
        return np.zeros(1, dtype=np.int64), 1
    strides = [math.prod(glob[k + 1:]) for k in range(len(glob))]
    j = len(local) - 1  # merge trailing dimensions the box spans fully into one run
    while j > 0 and local[j] == glob[j]:
        j -= 1
    length = math.prod(local[j:])
    starts = np.full((), offs[j] * strides[j], dtype=np.int64)
    for k in range(j):
        starts = starts[..., None] + (offs[k] + np.arange(local[k], dtype=np.int64)) * strides[k]
    return starts.reshape(-1), length


def generate(draw: d.Draw, *, seed: int, name: str, local_shape: Sequence[int],
             global_shape: Sequence[int] | None = None, offset: int | Sequence[int] = 0,
             dtype: torch.dtype = torch.float32, engine: Engine = "auto",
             threads: int | None = None) -> torch.Tensor:
    """A new CPU tensor with the piece of parameter ``name`` described by ``local_shape``/``offset``."""
    out = torch.empty(tuple(local_shape), dtype=dtype)
    return counter_fill_(out, draw, seed=seed, name=name, offset=offset, global_shape=global_shape,
                         engine=engine, threads=threads)


@torch.no_grad()
def counter_fill_(tensor: torch.Tensor, draw: d.Draw, *, seed: int, name: str,
                  offset: int | Sequence[int] = 0, global_shape: Sequence[int] | None = None,
                  engine: Engine = "auto", threads: int | None = None) -> torch.Tensor:
    """Fill ``tensor`` in place from ``draw`` with values that depend only on ``(seed, name, global index)``.

    ``name`` is the parameter's stable identity (its qualified name, e.g. ``"encoder.layers.0.fc1.weight"``);
    ``global_shape``/``offset`` place ``tensor`` inside the full parameter (default: the full parameter).
    ``threads`` defaults to ``torch.get_num_threads()``. Meta tensors are validated and left alone.

    >>> import torch
    >>> from initlab.catalog.draws import Normal
    >>> w = counter_fill_(torch.empty(4, 6), Normal(0.0, 1.0), seed=0, name="fc.weight")
    >>> half = counter_fill_(torch.empty(2, 6), Normal(0.0, 1.0), seed=0, name="fc.weight", offset=12,
    ...                      global_shape=(4, 6))
    >>> torch.equal(w[2:], half)
    True
    """
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"counter_fill_ expects a torch.Tensor, got {type(tensor).__name__}")
    if not tensor.is_floating_point():
        raise TypeError(f"cannot initialize a tensor of dtype {tensor.dtype}: use a floating-point tensor")
    torch_backend.check_dtype(draw, tensor.dtype)
    glob = tuple(tensor.shape) if global_shape is None else tuple(int(s) for s in global_shape)
    starts, length = row_starts(tensor.shape, glob, offset)
    if not isinstance(draw, d.ELEMENTWISE):
        full = _structured(draw, glob, seed, name, engine, threads)
        if tensor.device.type != "meta":
            tensor.copy_(_cut(full, tensor.shape, glob, offset))
        return tensor
    p = counter.plan(draw, seed, name)  # validates the draw before anything is written
    if tensor.device.type == "meta" or tensor.numel() == 0:
        return tensor
    if tensor.device.type == "cuda":
        from . import kernels_triton

        if kernels_triton.available():
            kernels_triton.fill_cuda_(tensor, starts, length, p)
            return tensor
    direct = (tensor.device.type == "cpu" and tensor.dtype in (torch.float32, torch.float64)
              and tensor.is_contiguous())
    if direct:
        view = tensor.detach().numpy().reshape(len(starts), length)
        fill_array(view, starts, p, engine=engine, threads=threads)
        _bump_version(tensor)
        return tensor
    buf = np.empty((len(starts), length), dtype=np.float32)
    fill_array(buf, starts, p, engine=engine, threads=threads)
    tensor.copy_(torch.from_numpy(buf).view(tensor.shape))
    return tensor


def _bump_version(tensor: torch.Tensor) -> None:
    """Writes through ``numpy()`` bypass autograd's version counter: bump it as torch's own fills do, so a
    backward through a graph that saved the old values raises torch's usual "modified by an inplace
    operation" error (``increment_version``: torch's API for exactly this, ~20x cheaper than an empty op)."""
    from torch.autograd.graph import increment_version

    increment_version(tensor)


def _cut(full: torch.Tensor, local_shape: Sequence[int], glob: tuple[int, ...],
         offset: int | Sequence[int]) -> torch.Tensor:
    if isinstance(offset, (int, np.integer)):
        return full.reshape(-1)[int(offset):int(offset) + math.prod(local_shape)].view(tuple(local_shape))
    index = tuple(slice(o, o + s) for o, s in zip(offset, local_shape, strict=True))
    return full[index] if index else full


def _gaussian(shape: Sequence[int], seed: int, name: str, stream: int, engine: Engine,
              threads: int | None) -> torch.Tensor:
    out = torch.empty(tuple(shape), dtype=torch.float32)
    if out.numel():
        p = counter.plan(d.Normal(0.0, 1.0), seed, name, stream)
        fill_array(out.numpy().reshape(1, -1), np.zeros(1, dtype=np.int64), p, engine=engine, threads=threads)
    return out


def _orthogonal(g: torch.Tensor, rows: int, cols: int, gain: float) -> torch.Tensor:
    """``torch.nn.init.orthogonal_``'s construction (QR, signs of diag R) applied to a given Gaussian."""
    a = g.reshape(rows, cols)
    if rows < cols:
        a = a.t()
    with torch_backend.one_thread():  # QR's values depend on the thread count otherwise
        q, r = torch.linalg.qr(a)
    q = q * torch.sign(torch.diagonal(r))
    return (q.t() if rows < cols else q).mul_(gain)


def _structured(draw: d.Draw, shape: tuple[int, ...], seed: int, name: str, engine: Engine,
                threads: int | None) -> torch.Tensor:
    """The full float32 tensor of a non-elementwise draw, from Gaussians drawn by index."""
    if isinstance(draw, d.Orthogonal):
        if len(shape) < 2:
            raise ValueError(f"orthogonal init needs at least 2 dimensions, got shape {shape}")
        rows, cols = ((shape[0], math.prod(shape[1:])) if draw.flatten == "torch"
                      else (math.prod(shape[:-1]), shape[-1]))
        g = _gaussian(shape, seed, name, counter.VALUES, engine, threads)
        return _orthogonal(g, rows, cols, draw.gain).reshape(shape)
    if isinstance(draw, d.DeltaOrthogonal):
        out = torch.zeros(shape, dtype=torch.float32)
        if draw.channels_last:
            n_in, n_out = shape[-2], shape[-1]
            g = _gaussian((n_in, n_out), seed, name, counter.VALUES, engine, threads)
            centre: tuple[int, ...] = tuple((k - 1) // 2 for k in shape[:-2])
            out[centre] = _orthogonal(g, n_in, n_out, draw.gain)
        else:
            n_out, n_in = shape[0], shape[1]
            g = _gaussian((n_out, n_in), seed, name, counter.VALUES, engine, threads)
            index: tuple[slice | int, ...] = (slice(None), slice(None), *((k - 1) // 2 for k in shape[2:]))
            out[index] = _orthogonal(g, n_out, n_in, draw.gain)
        return out
    if isinstance(draw, d.Sparse):
        if len(shape) != 2:
            raise ValueError(f"sparse init needs a 2-D weight, got shape {shape}")
        out = _gaussian(shape, seed, name, counter.VALUES, engine, threads).mul_(draw.std)
        n_zero = math.ceil(draw.sparsity * shape[0])
        if n_zero:
            keys = _gaussian(shape, seed, name, counter.AUX, engine, threads)
            out.scatter_(0, keys.argsort(dim=0, stable=True)[:n_zero], 0.0)
        return out
    if isinstance(draw, (d.Eye, d.Dirac, d.ZerO, d.Values)):  # deterministic: no random numbers at all
        unused = torch.Generator().manual_seed(0)
        return torch_backend._structured(shape, draw, unused, torch.float32, torch.device("cpu"))
    raise TypeError(f"the counter generator has no construction for {draw!r}")

"""Fill torch tensors in place from a scheme: ``init_(tensor, "he_normal", generator=g)``.

Sampling is done in float32 (float64 for float64 tensors) and cast for half types. Meta tensors are checked
(shape against the scheme) and left alone. A truncated normal is drawn in one pass over cache-sized chunks
(the inverse CDF, or rejection within each chunk for wide intervals): no full-size redraws and no full-size
buffers. Orthogonal matrices are built from Householder reflections of Gaussian vectors (Stewart 1980): the
same Haar distribution as QR-with-sign-fix of a Gaussian matrix, at the cost of forming Q only.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch

from ..catalog import draws as d
from ..catalog import get
from ..catalog.fans import Fans, Layout
from ..catalog.gains import ActivationLike
from ..catalog.initializers import Context, Initializer
from ..errors import InitlabTypeError, InitlabValueError
from .checks import check_generator, check_seed

CHUNK = 1 << 18  # elements per pass for multi-pass transforms: stays in L2
# Truncated normal: reject from the normal (per chunk) when the interval holds at least this much mass, i.e.
# rejects are too rare to pay for a mask pass; below it, the inverse CDF (measured: +-2 std, mass 0.954, is
# 2.3x faster by inverse CDF; +-100 std 4x faster by rejection).
REJECTION_MIN_MASS = 0.99
BLOCK = 1 << 22  # elements per float32 staging buffer for half-precision and non-contiguous tensors
SchemeLike = str | Initializer | dict


def make_generator(device: torch.device | str = "cpu", seed: int | None = None) -> torch.Generator:
    """A private generator: seeded when ``seed`` is given, else from the OS. Never the global one."""
    dev = torch.device(device)
    g = torch.Generator(device=dev if dev.type != "meta" else "cpu")
    g.manual_seed(check_seed(seed) if seed is not None else secrets.randbits(63))
    return g


def _check_tensor(tensor: Any) -> None:
    if not isinstance(tensor, torch.Tensor):
        raise InitlabTypeError(f"init_ expects a torch.Tensor, got {type(tensor).__name__}")
    if not (tensor.is_floating_point() or tensor.dtype in (torch.complex64, torch.complex128)):
        raise InitlabTypeError(f"cannot initialize a tensor of dtype {tensor.dtype}: "
                               "use a floating-point (or complex64/complex128) tensor")


def _work_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def resolve(tensor_or_shape: torch.Tensor | Sequence[int], scheme: SchemeLike, *, layout: Layout = "torch",
            fans: Fans | None = None, groups: int = 1, blocks: int = 1, stride: Any = None,
            activation: ActivationLike | None = None) -> d.Draw:
    """The draw ``scheme`` means for this tensor (nothing is sampled)."""
    is_tensor = isinstance(tensor_or_shape, torch.Tensor)
    shape = tuple(tensor_or_shape.shape) if is_tensor else tuple(tensor_or_shape)  # type: ignore[union-attr]
    ctx = Context(layout, fans, groups, blocks, stride, activation)
    if is_tensor and tensor_or_shape.is_complex():  # type: ignore[union-attr]
        return get(scheme).resolve_complex(shape, ctx)  # JAX's complex forms (the catalog's mechanism)
    return get(scheme).resolve(shape, ctx)


@torch.no_grad()
def init_(tensor: torch.Tensor, scheme: SchemeLike, generator: torch.Generator | None = None, *,
          seed: int | None = None, layout: Layout = "torch", fans: Fans | None = None, groups: int = 1,
          blocks: int = 1, stride: Any = None, activation: ActivationLike | None = None) -> torch.Tensor:
    """Fill ``tensor`` in place with ``scheme`` and return it.

    ``layout``/``fans``/``groups``/``blocks``/``stride`` describe the weight (see
    :func:`initlab.catalog.compute_fans`); ``activation`` is the nonlinearity that follows it (He-family
    gains).
    Pass ``generator`` or ``seed`` for reproducibility; with neither, a fresh OS-seeded generator is used.

    >>> import torch
    >>> w = init_(torch.empty(256, 128), "he_normal", seed=0)
    >>> round(w.std().item(), 2)
    0.12
    """
    _check_tensor(tensor)
    check_generator(generator)
    if generator is not None and seed is not None:
        raise InitlabValueError("pass either generator or seed, not both")
    if seed is not None:
        check_seed(seed)
    draw = resolve(tensor, scheme, layout=layout, fans=fans, groups=groups, blocks=blocks, stride=stride,
                   activation=activation)
    check_dtype(draw, tensor.dtype)
    if tensor.device.type == "meta" or tensor.numel() == 0:
        return tensor
    if generator is None:
        generator = make_generator(tensor.device, seed)
    if tensor.is_complex():
        _fill_complex(tensor, draw, generator)
        return tensor
    fill_(tensor, draw, generator)
    return tensor


def _fill_complex(tensor: torch.Tensor, draw: d.Draw, g: torch.Generator) -> None:
    """A complex tensor from a draw of ``resolve_complex`` (numpy_backend's ``complex_array``, in torch)."""
    work = torch.complex128 if tensor.dtype == torch.complex128 else torch.complex64
    real = torch.float64 if work == torch.complex128 else torch.float32
    shape, dev = tuple(tensor.shape), tensor.device
    if isinstance(draw, d.Constant):
        tensor.fill_(draw.value)
        return
    if not isinstance(draw, d.ComplexCircular):
        tensor.copy_(_structured(shape, draw, g, work, dev))  # values, orthogonal: a Haar unitary
        return
    u = torch.rand(shape, generator=g, dtype=real, device=dev)
    if draw.radial == "normal":
        r = torch.log1p(u.neg_()).neg_().sqrt_()  # r^2 ~ Exp(1)
    elif draw.radial == "disk":
        r = u.mul_(2.0).sqrt_()
    else:
        r = torch.log1p(u.mul_(math.expm1(-4.0))).neg_().sqrt_().div_(d.COMPLEX_TRUNC2_STD)
    theta = torch.rand(shape, generator=g, dtype=real, device=dev).mul_(2 * math.pi)
    tensor.copy_(torch.polar(r.mul_(draw.std), theta))


def fill_(tensor: torch.Tensor, draw: d.Draw, generator: torch.Generator | None, *,
          finite: bool = True) -> torch.Tensor:
    """Fill ``tensor`` from a resolved draw (``generator=None``: torch's default generator, as torch.nn.init
    does -- only :mod:`initlab.compat.torch` passes None).

    A draw whose values would overflow the tensor's dtype (``normal(0, 1e300)`` in float32) raises
    :class:`~initlab.errors.InitlabValueError` before anything is written; ``finite=False`` (torch parity in
    :mod:`initlab.compat.torch`) writes the infs as torch does.

    A contiguous float32/float64 tensor is drawn in one call (bit-identical to ``torch.nn.init`` for uniform
    and normal draws). Half types and non-contiguous tensors are drawn in float32 into small buffers, block by
    block in row-major order, and cast/scattered: extra memory is one block, never the whole tensor.
    """
    if finite:
        check_dtype(draw, tensor.dtype)
    if tensor.device.type == "meta" or tensor.numel() == 0:
        return tensor
    work = _work_dtype(tensor)
    if isinstance(draw, d.Constant):
        return tensor.zero_() if draw.value == 0 else tensor.fill_(draw.value)
    if isinstance(draw, d.ELEMENTWISE):
        if tensor.dtype == work and tensor.is_contiguous():
            _elementwise(tensor.view(-1), draw, generator)
            return tensor
        for block in _blocks(tensor, BLOCK):
            if block.dtype == work and block.is_contiguous():
                _elementwise(block.view(-1), draw, generator)
            else:
                buf = torch.empty(block.numel(), dtype=work, device=block.device)
                _elementwise(buf, draw, generator)
                block.copy_(buf.view(block.shape))
        return tensor
    direct = tensor.dtype == work and tensor.is_contiguous()
    out = _structured(tuple(tensor.shape), draw, generator, work, tensor.device, tensor if direct else None)
    if out is not tensor:
        tensor.copy_(out)
    return tensor


def check_dtype(draw: d.Draw, dtype: torch.dtype) -> None:
    """Raise if ``draw``'s values would not be finite in ``dtype`` (:func:`initlab.catalog.draws.reach`)."""
    if dtype.is_floating_point:
        d.check_representable(draw, torch.finfo(dtype).max, str(dtype).removeprefix("torch."))


def _blocks(t: torch.Tensor, size: int) -> Iterator[torch.Tensor]:
    """Views of ``t`` covering it in row-major order, each of at most ``size`` elements (one row at the least
    unless a row itself is larger, then recursively)."""
    if t.numel() <= size or t.dim() == 0:
        yield t
        return
    per_row = t.numel() // t.shape[0]
    rows = size // per_row
    if rows >= 1:
        for start in range(0, t.shape[0], rows):
            yield t[start:start + rows]
    else:
        for i in range(t.shape[0]):
            yield from _blocks(t[i], size)


def _elementwise(flat: torch.Tensor, draw: d.Draw, g: torch.Generator | None) -> None:
    if isinstance(draw, d.Constant):
        flat.fill_(draw.value)
    elif isinstance(draw, d.Normal):
        flat.normal_(draw.mean, draw.std, generator=g)
    elif isinstance(draw, d.Uniform):
        flat.uniform_(draw.low, draw.high, generator=g)
    elif isinstance(draw, d.TruncatedNormal):
        _truncated_normal(flat, draw, g)
    else:  # pragma: no cover - guarded by ELEMENTWISE
        raise TypeError(draw)


def _truncated_normal(flat: torch.Tensor, draw: d.TruncatedNormal, g: torch.Generator | None) -> None:
    """One pass over cache-sized chunks, exact for any interval: rejection from the normal where the interval
    holds most of the mass (each chunk redraws only its few rejects), the inverse CDF elsewhere."""
    lo, hi = draw.low, draw.high
    lo_abs, hi_abs = draw.loc + draw.scale * lo, draw.loc + draw.scale * hi
    chunk_size = CHUNK if flat.device.type == "cpu" else max(CHUNK, 1 << 24)
    if d.normal_cdf(hi) - d.normal_cdf(lo) >= REJECTION_MIN_MASS:
        for chunk in flat.split(chunk_size):
            _rejection_chunk(chunk, draw.loc, draw.scale, lo_abs, hi_abs, g)
        return
    flip = lo > 0  # keep the interval's mass on the side where the CDF has relative precision
    if flip:
        lo, hi = -hi, -lo
    sign = -1.0 if flip else 1.0
    if max(abs(lo), abs(hi)) <= 4.0 and flat.dtype == torch.float32:
        # erfinv(2u - 1) * sqrt(2) = Phi^{-1}(u); float32 resolves u well inside +-4 std.
        ua, ub = 2 * d.normal_cdf(lo) - 1, 2 * d.normal_cdf(hi) - 1
        mul = sign * draw.scale * math.sqrt(2.0)
        for chunk in flat.split(chunk_size):
            chunk.uniform_(ua, ub, generator=g).erfinv_().mul_(mul).add_(draw.loc).clamp_(lo_abs, hi_abs)
        return
    pa, pb = d.normal_cdf(lo), d.normal_cdf(hi)
    for chunk in flat.split(chunk_size):
        u = torch.empty(chunk.shape, dtype=torch.float64, device=chunk.device).uniform_(pa, pb, generator=g)
        z = torch.special.ndtri(u)
        chunk.copy_(z.mul_(sign * draw.scale).add_(draw.loc).clamp_(lo_abs, hi_abs))


def _rejection_chunk(chunk: torch.Tensor, loc: float, scale: float, lo: float, hi: float,
                     g: torch.Generator | None) -> None:
    chunk.normal_(loc, scale, generator=g)
    bad = ((chunk < lo) | (chunk > hi)).nonzero().view(-1)
    while bad.numel():
        redo = torch.empty(bad.numel(), dtype=chunk.dtype, device=chunk.device)
        redo.normal_(loc, scale, generator=g)
        ok = (redo >= lo) & (redo <= hi)
        chunk[bad[ok]] = redo[ok]
        bad = bad[~ok]


_ONE_THREAD = threading.RLock()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch's CPU kernels on one intra-op thread inside the block, then restore the count.

    LAPACK-style factorizations (Householder products, QR) split their blocked updates by thread count, so
    the last bits of an orthogonal matrix depend on ``torch.get_num_threads()``. One thread makes them a
    function of the seed alone. The lock serializes such blocks across Python threads, so that one block's
    restore cannot end another's single-threaded section; other threads' torch work meanwhile also runs on
    one intra-op thread (a slowdown, never a change in values)."""
    with _ONE_THREAD:
        before = torch.get_num_threads()
        if before != 1:
            torch.set_num_threads(1)
        try:
            yield
        finally:
            if before != 1:
                torch.set_num_threads(before)


def haar_orthogonal(rows: int, cols: int, g: torch.Generator | None, dtype: torch.dtype = torch.float32,
                    device: torch.device | str = "cpu", out: torch.Tensor | None = None) -> torch.Tensor:
    """A Haar-distributed ``rows x cols`` matrix, the same on any thread count (see :func:`one_thread`); a
    Haar unitary for a complex ``dtype``."""
    if dtype.is_complex:
        with one_thread():
            return _haar_unitary(rows, cols, g, dtype, device)
    if torch.device(device).type != "cpu":  # GPU kernels do not depend on the CPU thread count
        return _haar_orthogonal(rows, cols, g, dtype, device, out)
    with one_thread():
        return _haar_orthogonal(rows, cols, g, dtype, device, out)


def _haar_orthogonal(rows: int, cols: int, g: torch.Generator | None, dtype: torch.dtype,
                     device: torch.device | str, out: torch.Tensor | None) -> torch.Tensor:
    """A Haar-distributed ``rows x cols`` matrix with orthonormal rows (rows <= cols) or columns.

    Stewart (1980): the Householder vectors of the QR of a Gaussian matrix are independent Gaussian vectors of
    decreasing length, so drawing them directly and forming ``Q = H_1...H_k D`` (``D`` = signs of ``diag R``)
    gives exactly the distribution of ``torch.nn.init.orthogonal_`` without computing the factorization.
    ``out``: a contiguous ``rows x cols`` tensor of ``dtype`` to write Q into (used when rows >= cols).
    """
    transpose = rows < cols
    n, k = (cols, rows) if transpose else (rows, cols)
    a = torch.randn(n, k, generator=g, dtype=dtype, device=device)
    a.tril_()  # only the lower trapezoid is used: column j's vector is a[j:, j]
    alpha = a.diagonal().clone()
    sign = torch.where(alpha >= 0, 1.0, -1.0).to(dtype)
    beta = -sign * torch.linalg.vector_norm(a, dim=0)  # diag(R)
    denom = alpha - beta
    safe = denom != 0
    a.diagonal().zero_()
    a.div_(torch.where(safe, denom, 1.0))  # v_j = x_j / (alpha_j - beta_j), with the implicit v_j[0] = 1
    tau = torch.where(safe, (beta - alpha) / torch.where(beta != 0, beta, 1.0), 0.0)
    if out is not None and not transpose:
        q = torch.linalg.householder_product(a, tau, out=out)
    else:
        q = torch.linalg.householder_product(a, tau)
    del a
    q.mul_(-sign)  # D = sign(diag R) = -sign(alpha): makes the distribution Haar
    return q.t() if transpose else q


def _haar_unitary(rows: int, cols: int, g: torch.Generator | None, dtype: torch.dtype,
                  device: torch.device | str) -> torch.Tensor:
    """QR of a circular complex Gaussian with the phases of diag R divided out (Mezzadri 2007), as JAX's
    ``random.orthogonal`` on a complex dtype; a wide matrix is the transpose of a tall one, as in JAX."""
    transpose = rows < cols
    n, k = (cols, rows) if transpose else (rows, cols)
    q, r = torch.linalg.qr(torch.randn(n, k, generator=g, dtype=dtype, device=device))
    q = q * torch.sgn(r.diagonal())
    return q.t() if transpose else q


def _structured(shape: tuple[int, ...], draw: d.Draw, g: torch.Generator | None, work: torch.dtype,
                device: torch.device, dest: torch.Tensor | None = None) -> torch.Tensor:
    """The matrix of a structured draw; written into ``dest`` (contiguous, ``work`` dtype) where the draw can
    be built in place (orthogonal with rows >= cols, sparse), so no full-size temporary is needed."""
    if isinstance(draw, d.Orthogonal):
        if draw.flatten == "torch":
            rows, cols = shape[0], math.prod(shape[1:])
        else:
            rows, cols = math.prod(shape[:-1]), shape[-1]
        target = dest.view(rows, cols) if dest is not None and rows >= cols else None
        q = haar_orthogonal(rows, cols, g, work, device, out=target).mul_(draw.gain)
        return dest if target is not None and dest is not None else q.reshape(shape)
    if isinstance(draw, d.Values):
        values = torch.tensor(draw.values, dtype=work, device=device).reshape(draw.shape)
        return values.expand(shape).clone()
    if isinstance(draw, d.Eye):
        return torch.eye(shape[0], shape[1], dtype=work, device=device).mul_(draw.gain)
    if isinstance(draw, d.Dirac):
        out = torch.zeros(shape, dtype=work, device=device)
        per = shape[0] // draw.groups
        i = torch.arange(min(per, shape[1]), device=device)
        out_idx = (torch.arange(draw.groups, device=device)[:, None] * per + i).reshape(-1)
        index: tuple[Any, ...] = (out_idx, i.repeat(draw.groups), *(k // 2 for k in shape[2:]))
        out[index] = draw.gain
        return out
    if isinstance(draw, d.DeltaOrthogonal):
        out = torch.zeros(shape, dtype=work, device=device)
        if draw.channels_last:
            n_in, n_out = shape[-2], shape[-1]
            centre = tuple((k - 1) // 2 for k in shape[:-2])
            out[centre] = haar_orthogonal(n_in, n_out, g, work, device).mul_(draw.gain)
        else:
            n_out, n_in = shape[0], shape[1]
            centre_index: tuple[Any, ...] = (slice(None), slice(None), *((k - 1) // 2 for k in shape[2:]))
            out[centre_index] = haar_orthogonal(n_out, n_in, g, work, device).mul_(draw.gain)
        return out
    if isinstance(draw, d.Sparse):
        out = dest if dest is not None else torch.empty(shape, dtype=work, device=device)
        out.normal_(0.0, draw.std, generator=g)
        rows, cols = shape
        n_zero = math.ceil(draw.sparsity * rows)
        if n_zero:
            for j in range(cols):  # a uniform n_zero-subset of rows per column (randperm is the fast way)
                out[torch.randperm(rows, generator=g, device=device)[:n_zero], j] = 0.0
        return out
    if isinstance(draw, d.ZerO):
        n_out, n_in = (shape[1], shape[0]) if draw.channels_last else shape
        w = zero_hadamard_matrix(n_out, n_in, work, device)
        return w.t().contiguous() if draw.channels_last else w
    raise TypeError(f"no sampler for {draw!r}")


def hadamard(m: int, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Sylvester Hadamard matrix of size 2^m (entries +-1)."""
    h = torch.ones(1, 1, dtype=dtype, device=device)
    for _ in range(m):
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h


def zero_hadamard_matrix(p: int, q: int, dtype: torch.dtype = torch.float32,
                         device: torch.device | str = "cpu") -> torch.Tensor:
    """ZerO (Zhao et al. 2022, Algorithm 1) for a (p out, q in) weight."""
    if p <= q:
        return torch.eye(p, q, dtype=dtype, device=device)
    m = math.ceil(math.log2(p))
    c = 2.0 ** (-(m - 1) / 2)
    return hadamard(m, dtype, device)[:p, :q].mul_(c)

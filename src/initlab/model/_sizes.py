"""Sizes the second-moment propagation needs and a dataflow node cannot carry by itself, read from the
tensors of the recording forward pass (hooks discovery): how many entries a product of two activations sums
over (``q @ k^T``: the head size), and how many keys each row of an attention's probabilities spreads over
(a causal or padding mask leaves some at exactly 0). Sizes only: the values depend on the weights the plan
is about to replace."""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import fx

from .layers import AVG_POOL_NAMES, CAT_NAMES, DIV_NAMES, TRANSPARENT_NAMES

MATMULS = frozenset({"matmul", "__matmul__", "__rmatmul__", "bmm", "mm"})
EINSUMS = frozenset({"einsum"})  # a contraction of two operands written as an equation
SOFTMAXES = frozenset({"softmax"})
AVG_POOLS = AVG_POOL_NAMES  # the calls discovery reads as average pools
MAX_POOLS = frozenset({"max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
                       "max_pool2d_with_indices", "max_pool3d_with_indices"})
MAX_REDUCES = frozenset({"amax"})  # the max over some dims (Hiera's pooled queries: ``q.amax(dim=3)``)
SDPAS = frozenset({"scaled_dot_product_attention"})
CONVS = frozenset({"conv1d", "conv2d", "conv3d"})  # with a fixed averaging filter: a weighted average pool
SUMS = frozenset({"sum"})  # over some dims (the last: what dividing attention weights renormalizes by)
L2_NORMALIZES = frozenset({"normalize"})  # F.normalize: each vector along ``dim`` to unit L2 norm
FOLDS = frozenset({"fold"})  # F.fold: overlapping patches summed back into a map
SIZED = (MATMULS | EINSUMS | SOFTMAXES | MAX_POOLS | MAX_REDUCES | AVG_POOLS | SDPAS | SUMS | CAT_NAMES
         | L2_NORMALIZES | FOLDS | CONVS)
# zero padding and the slice that crops it back (window attention on a map the windows do not tile): read when
# the example runs anyway, but no reason on their own to run it (``has_sized_calls``)
PADS = frozenset({"pad"})
CROPS = frozenset({"getitem", "__getitem__"})
LIVE_SIZED = PADS | CROPS
# max pool modules: their windows on the example's map, also read only when the example runs anyway
MAX_POOL_MODULES = (torch.nn.MaxPool1d, torch.nn.MaxPool2d, torch.nn.MaxPool3d)
# a quotient by a tensor divisor: its scale-free gain, read when the example runs anyway (as LIVE_SIZED)
QUOTIENTS = DIV_NAMES
RECORDED = SIZED | LIVE_SIZED | QUOTIENTS  # every call whose sizes discovery records when the example runs
QUANTILES = 8


def padded_conv(module: Any) -> bool:
    """A convolution some of whose kernel taps read zero padding (:func:`border_fraction`): its own, or
    TensorFlow's "same" padding computed from the input in its forward (:func:`same_padded`)."""
    return (
        isinstance(module, torch.nn.modules.conv._ConvNd)
        and not module.transposed
        and module.padding_mode == "zeros"
        and (any(module._reversed_padding_repeated_twice) or same_padded(module))
    )


def same_padded(module: Any) -> bool:
    """timm's ``Conv2dSame`` (and the standardized ``*Same`` convs with ``same_pad``): no padding of its own,
    the input zero-padded in forward as TensorFlow's "SAME" does (``pad_same``, tf_* models)."""
    name = type(module).__name__
    return (name.endswith("Same") and not any(getattr(module, "padding", (1,)))
            and bool(getattr(module, "same_pad", True)))


def _same_pads(n: int, k: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding of a dim of ``n`` (timm's ``get_same_padding``): (left, right)."""
    pad = max((-(-n // stride) - 1) * stride + (k - 1) * dilation + 1 - n, 0)
    return pad // 2, pad - pad // 2


def index_share(ids: Any) -> tuple[float, ...]:
    """``(p,)``: the chance that two positions of a sample look up the same embedding row (indices along
    the last dim): 1 for HF's all-zero ``token_type_ids``, about 1/V for random tokens, 0 for positions.
    That share of the embedding's output is the same at every position, and attention averages pass it
    whole (read as independent rows, BERT's first attention output measured 4x its plan)."""
    if not isinstance(ids, torch.Tensor) or ids.is_floating_point() or ids.dim() < 1 or ids.shape[-1] < 2:
        return ()
    with torch.no_grad():
        rows = ids.detach().reshape(-1, ids.shape[-1]).long()
        r, t = rows.shape
        lo = rows.min()
        keys = torch.arange(r, device=rows.device).unsqueeze(1) * (rows.max() - lo + 1) + (rows - lo)
        counts = keys.flatten().unique(return_counts=True)[1].double()
        return (float(counts.square().sum() - r * t) / (r * t * (t - 1)),)


def border_fraction(module: torch.nn.modules.conv._ConvNd, x: Any) -> tuple[float, ...]:
    """``(f, s)`` of a zero-padded convolution on the input ``x``, or ``()`` when every tap reads the map.
    ``f``: the mean, over output positions, of the fraction of its kernel taps that read the map rather than
    the padding; the output second moment is ``f`` times the unpadded one (on the 2x2 maps a 64x64 image
    leaves ConvNeXt's last stage, a 7x7 depthwise kernel reads 4 of its 49 taps: f = 0.08). ``s``: the share
    of its response to what every position of the input shares that stays the same at every output position
    (``sum_t f_t^2 / sum_t f_t`` for ``f_t`` the share of positions where tap ``t`` reads the map): a corner
    reads fewer taps than the centre, so a constant input no longer gives a constant output."""
    dims = len(module.kernel_size)
    if not isinstance(x, torch.Tensor) or x.dim() < dims + 1:
        return ()
    pads = module._reversed_padding_repeated_twice  # (left, right) per dim, last dim first
    f, s = 1.0, 1.0
    for i in range(dims):
        n = int(x.shape[x.dim() - dims + i])
        left, right = pads[2 * (dims - 1 - i)], pads[2 * (dims - 1 - i) + 1]
        if same_padded(module):
            left, right = _same_pads(n, module.kernel_size[i], module.stride[i], module.dilation[i])
        reads = _tap_reads(n, module.kernel_size[i], module.stride[i],
                           module.dilation[i], int(left), int(right))
        f *= sum(reads) / len(reads)
        s *= sum(r * r for r in reads) / max(sum(reads), 1e-300)
    return (f, s) if f < 1.0 else ()


def transposed_conv(module: Any) -> bool:
    """A transposed convolution: near its output's borders a position sums fewer taps than its fan-in
    counts (:func:`transposed_border_fraction`), with or without padding."""
    return isinstance(module, torch.nn.modules.conv._ConvNd) and bool(module.transposed)


def transposed_border_fraction(module: torch.nn.modules.conv._ConvNd, x: Any, out: Any) -> tuple[float, ...]:
    """``(f, s)`` of a transposed convolution from its input ``x`` to its output ``out``, as
    :func:`border_fraction` gives for a padded one. Output position ``o`` sums tap ``t`` where ``o + p - t d``
    is ``s`` times an input index, so its fan-in counts ``k / s`` taps per dim: on a small map many read
    outside it (LowFormer's last-stage upsampling, ``k = 3`` on a 2x2 map, reads 4 of 9: 0.3-0.4x its plan).
    With ``s > 1`` the output's phases sum disjoint taps, so what the input's positions share is no longer
    shared by all the output's (``s`` = 1/2 per dim for ``k = 2 s``)."""
    dims = len(module.kernel_size)
    if not (isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor)):
        return ()
    if min(x.dim(), out.dim()) < dims + 1:
        return ()
    f, shared = 1.0, 1.0
    for i in range(dims):
        n_in, n_out = int(x.shape[x.dim() - dims + i]), int(out.shape[out.dim() - dims + i])
        k, st = int(module.kernel_size[i]), int(module.stride[i])
        d, p = int(module.dilation[i]), int(cast(Any, module.padding)[i])
        reads = _transposed_tap_reads(n_in, n_out, k, st, d, p)
        f *= sum(reads) * st / k
        shared *= sum(r * r for r in reads) / max(sum(reads), 1e-300)
    return (f, shared) if f < 1.0 or shared < 1.0 else ()


def _transposed_tap_reads(n_in: int, n_out: int, k: int, stride: int, dilation: int, padding: int
                          ) -> list[float]:
    """For each of ``k`` taps, the share of ``n_out`` output positions it reaches: ``o = s i - p + t d`` for
    the inputs ``i`` in ``[0, n_in)`` that land in ``[0, n_out)`` (counted, not enumerated: an audio
    decoder's upsampling writes tens of thousands of positions)."""
    reads = []
    for t in range(k):
        lo = max(0, -((t * dilation - padding) // stride))  # ceil((p - t d) / s)
        hi = min(n_in - 1, (n_out - 1 + padding - t * dilation) // stride)
        reads.append(max(hi - lo + 1, 0) / max(n_out, 1))
    return reads


def _tap_reads(n: int, k: int, stride: int, dilation: int, left: int, right: int) -> list[float]:
    """For each of ``k`` taps (``dilation`` apart), the share of output positions where it reads inside
    ``[0, n)`` (plain integers: discovery's recording mode would see tensor arithmetic)."""
    out = (n + left + right - dilation * (k - 1) - 1) // stride + 1
    if out <= 0:
        return [1.0] * k
    return [sum(0 <= o * stride - left + t * dilation < n for o in range(out)) / out for t in range(k)]


def call_sizes(fname: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> tuple[float, ...]:
    """``(K,)`` for a product of two activations (the contraction length), ``(k,)`` for a max pool (entries
    per window, pooling modules are read from the module), ``(keep,)`` for an average (:func:`pool_keep`);
    for a softmax, quantiles of the number of keys each row of its probabilities spreads over
    (:func:`key_counts`), and for a fused attention those with its logits' scale (:func:`sdpa_sizes`);
    ``(n, last)`` for a sum of ``n`` entries into each output entry (``last`` 1.0 when it sums the last dim
    alone: a row sum); ``(n,)`` for an L2 normalization of vectors of ``n`` entries; the entries of each
    tensor a concatenation joins; for a fold, how many patch entries each output entry sums; ``()``
    otherwise."""
    if fname in MATMULS:
        return _matmul_sizes(fname, args)
    if fname in EINSUMS:
        return einsum_contraction(args)
    if fname in MAX_POOLS:
        dims, k = int(fname[len("max_pool")]), kwargs.get("kernel_size", args[1] if len(args) > 1 else None)
        if k is None:
            return ()
        named = (("stride", None), ("padding", 0), ("dilation", 1))  # F.max_pool2d's after kernel_size
        stride, padding, dilation = (kwargs.get(key, args[i] if len(args) > i else default)
                                     for i, (key, default) in enumerate(named, 2))
        return (max_window(args[0] if args else kwargs.get("input"), dims, k, stride, padding, dilation)
                or (float(pool_window(k, dims)),))
    if fname in MAX_REDUCES:  # entries each output is the max of
        x = args[0] if args else kwargs.get("input")
        if isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor) and 0 < out.numel() < x.numel():
            return (x.numel() / out.numel(),)
        return ()
    if fname in AVG_POOLS:
        x = args[0] if args else None
        return pool_keep(x, out) if fname != "mean" or not _over_batch(x, args, kwargs) else ()
    if fname in CONVS:
        w = args[1] if len(args) > 1 else kwargs.get("weight")
        ok = not isinstance(w, torch.nn.Parameter) and averaging_filter(w)
        return pool_keep(args[0] if args else kwargs.get("input"), out) if ok else ()
    if fname in SDPAS:
        return sdpa_sizes(args, kwargs)
    if fname in SUMS:
        return _summed(args, kwargs, out)
    if fname in L2_NORMALIZES:
        return _l2_length(args, kwargs)
    if fname in FOLDS:
        x = args[0] if args else kwargs.get("input")
        if isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor) and out.numel() > 0:
            return (x.numel() / out.numel(),)
        return ()
    if fname in CAT_NAMES:
        parts = args[0] if args else kwargs.get("tensors")
        return tuple(float(t.numel()) for t in parts if isinstance(t, torch.Tensor)) if isinstance(
            parts, (list, tuple)) else ()
    if fname in LIVE_SIZED:
        return _live_share(fname, args, kwargs, out)
    if fname in QUOTIENTS:
        return quotient_gain(args, out)
    if fname in SOFTMAXES and isinstance(out, torch.Tensor) and out.dim() >= 1:
        dim = kwargs.get("dim", args[1] if len(args) > 1 else -1)
        return key_counts(out, dim) if isinstance(dim, int) else ()
    return ()


def _live_share(fname: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> tuple[float, ...]:
    """``(f,)``: the share of a zero pad's output entries that are its input's, or of a slice's input
    entries that it keeps; for a pad by another constant of the last dim alone, ``(f, value, before)``, with
    the share of that dim before the input (:func:`_constant_pad`); ``()`` for any other pad (reflect) or
    slice (one that keeps all, or not of a tensor)."""
    x = args[0] if args else kwargs.get("input")
    if not (isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor)) or out.numel() == 0:
        return ()
    if fname in PADS:
        mode = kwargs.get("mode", args[2] if len(args) > 2 else "constant")
        value = kwargs.get("value", args[3] if len(args) > 3 else None)
        if mode != "constant" or out.numel() <= x.numel():
            return ()
        if value not in (None, 0, 0.0):
            return _constant_pad(x, args[1] if len(args) > 1 else kwargs.get("pad"), value)
        return (x.numel() / out.numel(),)
    if not 0 < out.numel() < x.numel():
        return ()
    start = _slice_start(x, args[1] if len(args) > 1 else None)
    return (out.numel() / x.numel(),) if start is None else (out.numel() / x.numel(), start)


def _constant_pad(x: torch.Tensor, pad: Any, value: Any) -> tuple[float, ...]:
    """``(f, value, before)`` of ``F.pad(x, (left, right), value=value)``: a constant column joined to the
    last dim (EfficientViT's ``F.pad(v, (0, 1), value=1)``, whose products with it are each query's total
    weight), so that a slice takes back either part; ``()`` for a pad of other dims or a value not a
    number."""
    if not isinstance(value, (int, float)) or not isinstance(pad, (tuple, list)) or len(pad) < 2:
        return ()
    if any(int(p) != 0 for p in pad[2:]) or x.dim() < 1:
        return ()
    left, right = int(pad[0]), int(pad[1])
    n = x.shape[-1] + left + right
    return (x.shape[-1] / n, float(value), left / n) if left >= 0 and right >= 0 and n > 0 else ()


def quotient_gain(args: tuple[Any, ...], out: Any) -> tuple[float, ...]:
    """``(rho, m)`` of ``a / b`` for a tensor divisor ``b`` of more than one entry: ``rho = E[(a/b)^2]
    E[b^2] / E[a^2]`` and the quotient's mean over its root mean square, ``m``. Both are scale-free: ``a / b``
    scales as ``a`` over ``b`` whatever the weights' scales, so ``rho q_a / q_b`` is the quotient's second
    moment for the plan's ``q_a`` and ``q_b`` (1 for a divisor that is the same everywhere; EfficientViT's
    linear attention divides by each query's own total weight). ``()`` for any other division."""
    a, b = (*args, None, None)[:2]
    if not all(isinstance(t, torch.Tensor) and t.is_floating_point() and t.numel() > 1 for t in (a, b, out)):
        return ()
    with torch.no_grad():
        qa, qb, qo = (float(t.detach().double().square().mean()) for t in (a, b, out))
        mo = float(out.detach().double().mean())
    if not all(math.isfinite(v) and v > 0 for v in (qa, qb, qo)):
        return ()
    return (qo * qb / qa, mo / math.sqrt(qo))


def _slice_start(x: torch.Tensor, index: Any) -> float | None:
    """The share of the one dim ``x[index]`` slices that lies before the slice (by a step-1 slice or an
    int; the others whole): with the slice's share, which part of a concatenation it takes back."""
    index = index if isinstance(index, tuple) else (index,)
    if sum(i is Ellipsis for i in index) == 1:  # ``out[..., :-1]``: the dims it stands for, whole
        at = index.index(Ellipsis)
        index = (*index[:at], *[slice(None)] * (x.dim() - len(index) + 1), *index[at + 1:])
    if len(index) > x.dim() or any(i is Ellipsis or i is None for i in index):
        return None
    found = None
    for d, i in enumerate(index):
        if isinstance(i, slice) and i == slice(None):
            continue
        if found is not None or isinstance(i, bool):
            return None
        if isinstance(i, int):
            start = i % x.shape[d]
        elif isinstance(i, slice) and i.step in (None, 1):
            start = i.indices(x.shape[d])[0]
        else:
            return None
        found = start / x.shape[d]
    return found


def _summed(args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> tuple[float, ...]:
    """``(n, last, keep)``: ``sum(x, dim)`` adds ``n`` entries into each output entry; ``last`` is 1.0 when
    ``dim`` is ``x``'s last dim alone (each row's sum); ``keep``, the share of the input's variance across
    samples the sum's mean (``sum / n``) keeps, as :func:`pool_keep` reads an average's (without it, when
    the example cannot show it: ``(n, last)``)."""
    x = args[0] if args else kwargs.get("input")
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    if isinstance(dim, (tuple, list)) and len(dim) == 1:
        dim = dim[0]
    if not (isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor) and x.dim() >= 1 and out.numel()):
        return ()
    last = isinstance(dim, int) and dim in (-1, x.dim() - 1)
    n = x.numel() / out.numel()
    if not (x.is_floating_point() and x.dim() >= 2 and x.shape[0] >= 2 and out.shape[:1] == x.shape[:1]):
        return (n, 1.0 if last else 0.0)
    v_in, v_out = _batch_var(x), _batch_var(out)
    if not (v_in > 0 and math.isfinite(v_in) and math.isfinite(v_out)):
        return (n, 1.0 if last else 0.0)
    return (n, 1.0 if last else 0.0, min(v_out / (n * n * v_in), 1.0))


def _l2_length(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[float, ...]:
    """``(n,)``: the length of the vectors ``F.normalize(x, p=2, dim)`` scales to unit norm."""
    x = args[0] if args else kwargs.get("input")
    p = kwargs.get("p", args[1] if len(args) > 1 else 2.0)
    dim = kwargs.get("dim", args[2] if len(args) > 2 else 1)
    if not (isinstance(x, torch.Tensor) and isinstance(dim, int) and p == 2 and -x.dim() <= dim < x.dim()):
        return ()
    return (float(x.shape[dim]),)


def _matmul_sizes(fname: str, args: tuple[Any, ...]) -> tuple[float, ...]:
    """``(K, rows, columns)`` of ``a @ b``: its contraction length and what ``b``'s rows and columns share."""
    a, b = (*args, None, None)[:2]
    if fname == "__rmatmul__":
        a, b = b, a
    if not (isinstance(a, torch.Tensor) and a.dim() >= 1):
        return ()
    return (float(a.shape[-1]), *_shared_along(b))


def einsum_contraction(args: tuple[Any, ...]) -> tuple[float, ...]:
    """``(K,)``: the number of products each entry of a two-operand ``einsum`` sums (the sizes of the
    indices its output drops); ``()`` for other forms. Read as the larger operand's second moment, Funnel's
    positional logits (position encodings contracted with a 64 x 16 kernel) looked 1000x what they are."""
    ops = list(args[1]) if len(args) == 2 and isinstance(args[1], (list, tuple)) else list(args[1:])
    if not (args and isinstance(args[0], str) and len(ops) == 2):
        return ()
    if not all(isinstance(t, torch.Tensor) for t in ops):
        return ()
    lhs, arrow, rhs = args[0].replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != 2:
        return ()
    sizes: dict[str, int] = {}
    for term, t in zip(terms, ops, strict=True):
        letters = term.removeprefix("...")
        if "." in letters or len(letters) > t.dim() or (letters == term and len(letters) != t.dim()):
            return ()  # an ellipsis not in front, or a term that does not name every dim
        sizes.update(zip(letters, t.shape[t.dim() - len(letters):], strict=True))
    kept = set(rhs) if arrow else {c for c in lhs if lhs.count(c) == 1}
    return (float(math.prod(int(n) for c, n in sizes.items() if c not in kept)),)


def _shared_along(b: Any) -> tuple[float, ...]:
    """``(rows, columns)``: the share of ``b``'s second moment that its rows (dim -2, the dim ``a @ b`` sums
    over) have in common beyond chance, and that its columns (dim -1) have: ``E[mean(b)^2] / E[b^2]`` over
    ``n`` entries is ``rho + (1 - rho) / n`` for entries independent beyond what they share; ``()`` when it
    cannot be read. What softmax weights average over is ``b``'s dim -2: the tokens of ``softmax(q k^T) v``,
    but XCiT's channels (its values are ``(B, h, d, N)``), where what the tokens share is in the columns."""
    if not (isinstance(b, torch.Tensor) and b.is_floating_point() and b.dim() >= 2 and b.shape[-2] > 1):
        return ()
    if b.device.type == "meta" or b.numel() == 0 or b.shape[-1] < 2:
        return ()
    with torch.no_grad():  # (a few of its matrices, sliced as a view: a share; HaloNet's 76 took 0.2 s whole)
        x = b.detach()[tuple(slice(0, 4) for _ in b.shape[:-2])].double()
        q = float(x.square().mean())
        if not (q > 0 and math.isfinite(q)):
            return ()
        shares = []
        for dim in (-2, -1):
            n = x.shape[dim]
            kept = float(x.mean(dim).square().mean()) / q
            shares.append(max(kept - 1.0 / n, 0.0) / (1.0 - 1.0 / n))
        return tuple(shares)


def averaging_filter(w: Any) -> bool:
    """A convolution filter of non-negative taps summing to 1 for each output channel: a blur that averages
    (timm's ``BlurPool2d``, TResNet's anti-aliasing: ``F.conv2d(x, self.filt, groups=C)`` on a buffer). It
    keeps the mean whole, as an average pool does; read as an unknown product, the mean was lost and the
    squeeze-excitation after it measured 3.6x its plan."""
    if not isinstance(w, torch.Tensor) or not w.is_floating_point() or w.dim() < 3 or w.numel() == 0:
        return False
    if w.device.type == "meta":
        return False
    with torch.no_grad():
        flat = w.detach().reshape(w.shape[0], -1).double()
        return bool((flat >= 0).all()) and bool(((flat.sum(1) - 1).abs() <= 1e-4).all())


def pool_keep(x: Any, out: Any) -> tuple[float, ...]:
    """``(keep,)``: the share of its input's variance across samples an average pool keeps (entry by entry,
    dim 0 the batch): 1/(entries averaged) for independent entries, 1 for equal ones. It depends on how the
    input's entries correlate (neighbouring pixels of an image, a conv's overlapping windows), which the
    example shows and no shape does; a ratio of variances, so the weights' scale the plan replaces drops
    out. ``()`` when the example cannot show it (one sample, a mean over the batch); ``(1/n, 0.0)``, n the
    entries averaged per output, when its input is the same for every sample (a zero-initialized norm
    before a squeeze-excitation): the propagation then takes the positions as independent beyond what they
    share, which its signal knows."""
    if not (isinstance(x, torch.Tensor) and isinstance(out, torch.Tensor) and x.is_floating_point()):
        return ()
    if x.dim() < 2 or out.dim() < 1 or x.shape[0] < 2 or out.shape[0] != x.shape[0]:
        return ()
    v_in, v_out = _batch_var(x), _batch_var(out)
    if v_in == 0.0:
        return (min(out[0].numel() / max(x[0].numel(), 1), 1.0), 0.0)
    if not (v_in > 0 and math.isfinite(v_in) and math.isfinite(v_out)):
        return ()
    return (min(v_out / v_in, 1.0),)


def _batch_var(t: torch.Tensor) -> float:
    """The variance across dim 0 (the batch), averaged over every other entry: two passes in ``t``'s dtype
    with a float64 sum (``t.double().var(0)`` reduces along the strided dim 0, 5-15x slower on a feature
    map; it made the sizes pass most of Inception-v4's first call)."""
    with torch.no_grad():
        d = t.detach() - t.detach().mean(0)
        return float(d.pow(2).sum(dtype=torch.float64)) / ((t.shape[0] - 1) * max(d[0].numel(), 1))


def _over_batch(x: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether ``x.mean(...)`` averages over dim 0 (or everything): no batch left to compare across."""
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    if dim is None or not isinstance(x, torch.Tensor):
        return True
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    return any(isinstance(d, int) and d % max(x.dim(), 1) == 0 for d in dims)


def max_window(x: Any, dims: int, kernel: Any, stride: Any = None, padding: Any = 0, dilation: Any = 1
               ) -> tuple[float, ...]:
    """``(entries,)``: how many of ``x``'s entries a ``dims``-d max pool's window covers, on average over
    its outputs: the kernel's, less the taps that fall in the padding (``-inf``: never the max). On the 2x2
    map a 64x64 image leaves CSPNeXt's last stage, its SPP's 5x5, 9x9 and 13x13 pools all take the max of
    4 entries (read as 169, the max's mean was 2.7 for 1.0: conv2 measured 0.2x its plan). ``()`` when
    ``x`` cannot show it."""
    if not isinstance(x, torch.Tensor) or x.dim() < dims + 1:
        return ()
    ks, ps, ds = (_per_dim(v, dims) for v in (kernel, padding, dilation))
    ss = _per_dim(stride, dims) if stride not in (None, (), []) else ks
    entries = 1.0
    for i in range(dims):  # the windows are a grid: the mean of a product is the product of the means
        entries *= sum(_tap_reads(int(x.shape[x.dim() - dims + i]), ks[i], ss[i], ds[i], ps[i], ps[i]))
    return (entries,)


def _per_dim(v: Any, dims: int) -> tuple[int, ...]:
    return (int(v),) * dims if isinstance(v, int) else tuple(int(u) for u in v)


def pool_window(kernel_size: Any, dims: int) -> int:
    """Entries in one window of a ``dims``-d max pool (``kernel_size`` an int, the same in every dim, or a
    tuple): a 3x3 pool written ``MaxPool2d(3)`` takes the max of 9."""
    if isinstance(kernel_size, int):
        return kernel_size**dims
    out = 1
    for k in kernel_size:
        out *= int(k)
    return out


MAX_ROWS = 1 << 14  # rows a softmax's key counts are read from


def key_counts(probs: torch.Tensor, dim: int, points: int = QUANTILES) -> tuple[float, ...]:
    """Up to ``points`` quantiles of the number of non-zero probabilities per row (a causal mask: 1..S),
    read on at most :data:`MAX_ROWS` evenly spaced rows."""
    with torch.no_grad():
        return _quantiles((_some_rows(probs.detach().movedim(dim, -1), MAX_ROWS) > 0).sum(-1), points)


def _some_rows(p: torch.Tensor, most: int) -> torch.Tensor:
    """A strided view of ``p`` keeping every k-th index of its longest leading dim, so that about ``most``
    rows (of its last dim) remain: 8 quantiles need no more, and comparing every row of HaloNet-H1's
    attention cost its auto call 0.08 s."""
    rows = p.numel() // max(p.shape[-1], 1)
    if rows <= most or p.dim() < 2:
        return p
    d = max(range(p.dim() - 1), key=lambda i: p.shape[i])
    step = min(-(-rows // most), p.shape[d])
    return p[(slice(None),) * d + (slice(None, None, step),)]


def _quantiles(counts: torch.Tensor, points: int = QUANTILES) -> tuple[float, ...]:
    n = counts.flatten().double().clamp_min(1.0)
    if n.numel() == 0:
        return ()
    q = torch.linspace(0.5 / points, 1 - 0.5 / points, points, dtype=torch.float64)
    return tuple(float(v) for v in torch.quantile(n[:1 << 20], q, interpolation="nearest"))


_SDPA_ARGS = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal", "scale")


def sdpa_sizes(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[float, ...]:
    """``(scale^2 * E, key-count quantiles...)`` of ``F.scaled_dot_product_attention``: its logits are
    ``scale`` times sums of ``E`` products, and each row's softmax spreads over the keys its mask (or
    ``is_causal``) lets through -- the sizes an explicit ``softmax(q @ k^T)`` gives discovery, which the
    fused call hides (timm's ViTs, HF's sdpa attention)."""
    bound = {**dict(zip(_SDPA_ARGS, args, strict=False)), **kwargs}
    q, k, mask = bound.get("query"), bound.get("key"), bound.get("attn_mask")
    if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor)) or q.dim() < 2 or k.dim() < 2:
        return ()
    e, rows, keys = q.shape[-1], q.shape[-2], k.shape[-2]
    scale = bound.get("scale") or 1.0 / math.sqrt(e)
    with torch.no_grad():
        if isinstance(mask, torch.Tensor):
            allowed = mask if mask.dtype == torch.bool else mask.detach() > -HUGE
            counts = allowed.expand(*allowed.shape[:-2], rows, keys).sum(-1)
        elif bound.get("is_causal"):
            counts = torch.arange(1, rows + 1).clamp(max=keys)
        else:
            counts = torch.tensor([keys])
        return (float(scale) ** 2 * e, *_quantiles(counts))


def mha_keys(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[float, ...]:
    """Key-count quantiles of an ``nn.MultiheadAttention`` call: the keys each query row averages over (its
    masks' ``True`` is "not allowed", the opposite of ``F.scaled_dot_product_attention``'s). The module hides
    its softmax from discovery as the fused call does; without them its average was taken as passing the
    values whole (torchvision's ViT: its attention measured 0.13x the plan)."""
    bound = {**dict(zip(("query", "key", "value"), args, strict=False)), **kwargs}
    q, k = bound.get("query"), bound.get("key", bound.get("query"))
    if not (isinstance(q, torch.Tensor) and isinstance(k, torch.Tensor)) or k.dim() not in (2, 3):
        return ()
    seq = 1 if k.dim() == 3 and getattr(module, "batch_first", False) else 0
    rows, keys = q.shape[seq], k.shape[seq]
    allowed = torch.ones(rows, keys, dtype=torch.bool)
    with torch.no_grad():
        for name in ("attn_mask", "key_padding_mask"):
            m = bound.get(name)
            if isinstance(m, torch.Tensor):
                ok = ~m if m.dtype == torch.bool else m.detach() > -HUGE
                ok = ok.unsqueeze(-2) if name == "key_padding_mask" else ok  # (N, S) -> (N, 1, S)
                allowed = allowed & ok
        return _quantiles(allowed.sum(-1))


HUGE = 1e30  # an additive mask's "minus infinity" (finfo.min): not a value a signal is scaled by
SAMPLE = 1 << 20


def constant_value(out: Any) -> tuple[float, ...] | None:
    """(second moment, mean, the part every position shares) of a floating tensor computed from constants and
    parameters only (rotary tables, ``-exp(A_log)`` of a state-space layer, a fixed sinusoidal position
    table), which the propagation then uses as it is; None for anything else (masks with "minus infinity"
    entries, integer or boolean tensors). The shared part of a table of two or more dims: each channel's (the
    last dim's) mean over the positions (the other dims), squared, averaged -- a sinusoidal table's
    low-frequency cosines are near 1 at every position, which every token then carries (VideoMAE's attention
    averages kept 8x the plan's share)."""
    if not isinstance(out, torch.Tensor) or not out.is_floating_point() or out.numel() == 0:
        return None
    if out.device.type == "meta":  # no values yet (a model built under ``on_meta``)
        return None
    with torch.no_grad():
        x = out.detach().flatten()[:SAMPLE].double()
        if not bool(torch.isfinite(x).all()) or float(x.abs().max()) >= HUGE:
            return None
        q, mu = float(x.square().mean()), float(x.mean())
        if out.dim() < 2 or out.numel() > SAMPLE or out.shape[-1] == out.numel():
            return q, mu, mu * mu
        per_channel = out.detach().double().reshape(-1, out.shape[-1]).mean(0)
        return q, mu, min(max(float(per_channel.square().mean()), mu * mu), q)


ModuleSize = Callable[[torch.nn.Module, tuple[Any, ...], dict[str, Any], Any], tuple[float, ...]]
# (module, args, kwargs, out)


def has_sized_calls(
    graph: Any, name_of: Callable[[Any], str], root: torch.nn.Module, sized_module: Callable[[Any], bool]
) -> bool:
    """Whether :func:`fx_sizes` runs the fx graph (it has a call or a module whose sizes matter, or a call
    of parameters and buffers alone or of none (``torch.arange(16)``), whose value it reads, or arithmetic
    on the input itself: a preprocessing whose moments it reads, :class:`InputDerived`)."""
    calls = ("call_function", "call_method")
    return any(
        (n.op in calls and name_of(n) in SIZED)
        or (n.op == "call_module" and sized_module(m := root.get_submodule(str(n.target)))
            and not isinstance(m, MAX_POOL_MODULES))
        or (n.op in calls and all(a.op == "get_attr" for a in n.all_input_nodes))
        or (n.op in calls and name_of(n) not in MOMENTS_KEPT
            and any(a.op == "placeholder" for a in n.all_input_nodes))
        for n in graph.nodes
    )


def fx_sizes(
    graph: Any,
    root: torch.nn.Module,
    example_input: Any,
    name_of: Callable[[Any], str],
    sized_module: Callable[[Any], bool],
    module_size: ModuleSize,
    fixed: Callable[[str], bool] = lambda target: True,
    literals: Mapping[str, Any] | None = None,
) -> dict[Any, Read] | None:
    """node -> (sizes, value, measured) of the calls of an fx graph, read by running it once on
    ``example_input`` (a traced model: the recording pass of hooks discovery does not run):
    :func:`call_sizes` of a call, ``module_size`` of a module ``sized_module`` picks; the value of a call
    that gives a Python number (a scale computed from a shape, ``(d // h) ** -0.5``) is ``(v^2, v)``, of one
    computed from parameters and buffers alone :func:`constant_value` (of attributes ``fixed`` accepts: not
    a table the plan redraws).
    Empty when the graph has nothing sized; None when it cannot be run on that input (the caller says so).
    ``literals``: the tensors of ``get_attr`` nodes that are no attribute of ``root`` (:class:`LeafTracer`);
    ``measured``: :class:`InputDerived`'s reading of a call computed from the float input and constants."""
    if not has_sized_calls(graph, name_of, root, sized_module):
        return {}
    inputs = _positional(root, graph, example_input)
    derived = InputDerived(graph, root, inputs, name_of)
    modules = {n: m for n in graph.nodes if n.op == "call_module"
               and sized_module(m := root.get_submodule(str(n.target)))}
    recorded = {n for n in graph.nodes if n.op in ("call_function", "call_method")}
    # the model's constants, and the calls computed from them alone
    constants = {n for n in graph.nodes if n.op == "get_attr" and fixed(str(n.target))}
    found: dict[Any, Read] = {}

    def visit(n: fx.Node, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> None:
        measured = derived.visit(n, out)
        if measured is not None:
            found[n] = ((), None, measured)
        if n in modules:
            if size := module_size(modules[n], args, kwargs, out):
                found[n] = (size, None, measured)
            return
        if n not in recorded:
            return
        name = name_of(n)
        size = call_sizes(name, args, kwargs, out) if name in RECORDED else ()
        value: tuple[float, ...] | None = (float(out) ** 2, float(out)) if type(out) in (int, float) else None
        if isinstance(out, int | torch.Size | torch.device | torch.dtype) or (
                type(out) is float and constants.issuperset(n.all_input_nodes)):
            # a size, not data, or a number of sizes (``1 / x.shape[1]``): what is computed from it is fixed
            constants.add(n)
        elif value is None and constants.issuperset(n.all_input_nodes):
            # a value of parameters, buffers and sizes alone (ConvNeXt-V2's ``self.weight.view(...)``, a
            # rotary table from ``arange``), read as hooks discovery reads it: as data a parameter is the
            # plan's zero, a shape op of it a unit signal. An integer step has no moments, but is constant.
            value = constant_value(out)
            if value is not None or isinstance(out, torch.Tensor | tuple | list):  # a tuple: its items
                constants.add(n)
        if size or value:
            found[n] = (size, value, measured)

    try:
        run_graph(graph, root, inputs, visit, literals)
    except Exception:  # an input the traced graph cannot take as given: the caller notes it
        return None
    return found


# calls on the input that keep its moments (shape ops, casts, sizes): no reason to run the example for them
MOMENTS_KEPT = TRANSPARENT_NAMES | {"getattr", "size", "dim", "float", "to", "type", "type_as", "double",
                                    "contiguous", "clone", "detach"}
Read = tuple[tuple[float, ...], tuple[float, ...] | None, tuple[float, float] | None]  # fx_sizes' per node
RANDOM_CALLS = frozenset({"bernoulli", "rand", "randn", "rand_like", "randn_like", "normal", "multinomial"})


class InputDerived:
    """The calls of an fx graph computed from the model's floating-point input and constants alone (no
    parameter, nothing random), with the (second moment, mean) each takes on the example: a preprocessing
    inside the forward, which no plan changes. Propagated, such a chain misses what its per-channel constants
    cancel: CSATv2's stem subtracts each DCT coefficient's own mean and divides by its own deviation, read as
    one signal 300x too large for its three convs (propagate uses these instead, :func:`.propagate.measured`).
    Integer inputs (token ids) and what is computed from them (masks) are not read this way; a dropout runs
    as the identity in discovery's pass, but not in training, so what follows one is not either."""

    def __init__(self, graph: Any, root: torch.nn.Module, inputs: list[Any], name_of: Callable[[Any], str]):
        params = {name for name, _ in root.named_parameters(remove_duplicate=False)}
        slots = [n for n in graph.nodes if n.op == "placeholder" and not str(n.target).startswith("*")]
        self.data = {n for n, v in zip(slots, inputs, strict=False)
                     if isinstance(v, torch.Tensor) and v.is_floating_point()}
        self.fixed = {n for n in graph.nodes if n.op == "get_attr" and str(n.target) not in params}
        self.root, self.name_of = root, name_of

    def visit(self, n: Any, out: Any) -> tuple[float, float] | None:
        ins = n.all_input_nodes
        if not all(a in self.data or a in self.fixed for a in ins) or self._random_or_weighted(n):
            return None
        if not isinstance(out, torch.Tensor) or not any(a in self.data for a in ins):
            self.fixed.add(n)  # a size of the input (``x.shape[0]``), a number, a tensor of constants alone
            return None
        found = input_moments(out)
        if found is not None:
            self.data.add(n)
        return found

    def _random_or_weighted(self, n: Any) -> bool:
        if n.op == "call_module":
            return random_or_weighted(self.root.get_submodule(str(n.target)))
        return random_call(self.name_of(n))


def input_moments(out: Any) -> tuple[float, float] | None:
    """(second moment, mean) of a float tensor of two or more finite entries (:class:`InputDerived`)."""
    if not isinstance(out, torch.Tensor) or not out.is_floating_point() or out.numel() < 2:
        return None
    if out.device.type == "meta":  # no values (an example built under ``on_meta``)
        return None
    with torch.no_grad():
        x = out.detach().double()
        q, mu = float(x.square().mean()), float(x.mean())
    return (q, mu) if math.isfinite(q) and q < HUGE else None


def random_call(name: str) -> bool:
    return "dropout" in name or name in RANDOM_CALLS


def random_or_weighted(module: torch.nn.Module) -> bool:
    """A module with parameters, or a random one (dropout, stochastic depth: ``DropPath``)."""
    return "drop" in type(module).__name__.lower() or next(module.parameters(), None) is not None


_NONE = object()


def run_graph(
    graph: Any, root: torch.nn.Module, inputs: list[Any], visit: Callable[..., None],
    literals: Mapping[str, Any] | None = None,
) -> None:
    """Run an fx graph on the model itself, calling ``visit(node, args, kwargs, out)`` after each call:
    ``fx.Interpreter``'s semantics (placeholder defaults, each value freed after its last use) without its
    per-node bookkeeping, which cost a small CNN's first call as much as its forward did. (A GraphModule
    would first generate and compile the graph's Python code.)"""
    modules = dict(root.named_modules())
    free: dict[Any, list[Any]] = {}
    last = {a: n for n in graph.nodes for a in n.all_input_nodes}
    for a, n in last.items():
        free.setdefault(n, []).append(a)
    env: dict[Any, Any] = {}
    given = iter(inputs)
    for n in graph.nodes:
        if n.op == "placeholder" and str(n.target).startswith("*"):
            env[n] = list(given)  # *args
        elif n.op == "placeholder":
            value = next(given, _NONE)
            if value is _NONE:
                if not n.args:
                    raise TypeError(f"no value for the graph's input {n.target}")
                value = n.args[0]
            env[n] = value
        elif n.op == "get_attr" and literals and str(n.target) in literals:
            env[n] = literals[str(n.target)]
        elif n.op == "get_attr":
            env[n] = functools.reduce(getattr, str(n.target).split("."), root)
        elif n.op == "output":
            return
        else:
            args = fx.node.map_arg(n.args, env.__getitem__)
            kwargs = fx.node.map_arg(n.kwargs, env.__getitem__)
            if n.op == "call_module":
                out = modules[str(n.target)](*args, **kwargs)
            elif n.op == "call_function":
                out = n.target(*args, **kwargs)
            else:
                out = getattr(args[0], n.target)(*args[1:], **kwargs)
            env[n] = out
            visit(n, tuple(args), dict(kwargs), out)
        for a in free.get(n, ()):
            del env[a]


def _positional(root: torch.nn.Module, graph: Any, example_input: Any) -> list[Any]:
    """The example input as the traced graph's placeholders, in order (a dict by name, defaults filled)."""
    if isinstance(example_input, Mapping):
        sig = inspect.signature(root.forward)
        bound = sig.bind_partial(**example_input)
        bound.apply_defaults()
        values = dict(bound.arguments)
        return [values.get(str(n.target)) for n in graph.nodes if n.op == "placeholder"]
    return list(example_input) if isinstance(example_input, tuple | list) else [example_input]

"""Sizes the second-moment propagation needs and a dataflow node cannot carry by itself, read from the
tensors of the recording forward pass (hooks discovery): how many entries a product of two activations sums
over (``q @ k^T``: the head size), and how many keys each row of an attention's probabilities spreads over
(a causal or padding mask leaves some at exactly 0). Sizes only: the values depend on the weights the plan
is about to replace."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import fx

MATMULS = frozenset({"matmul", "__matmul__", "__rmatmul__", "bmm", "mm"})
SOFTMAXES = frozenset({"softmax"})
MAX_POOLS = frozenset({"max_pool1d", "max_pool2d", "max_pool3d", "max_pool1d_with_indices",
                       "max_pool2d_with_indices", "max_pool3d_with_indices"})
SIZED = MATMULS | SOFTMAXES | MAX_POOLS  # the calls discovery asks :func:`call_sizes` about
QUANTILES = 8


def call_sizes(fname: str, args: tuple[Any, ...], kwargs: dict[str, Any], out: Any) -> tuple[float, ...]:
    """``(K,)`` for a product of two activations (the contraction length), ``(k,)`` for a max pool (entries
    per window, pooling modules are read from the module); for a softmax, quantiles of the
    number of keys each row of its probabilities spreads over (:func:`key_counts`); ``()`` otherwise."""
    if fname in MATMULS:
        a = args[0] if args else None
        if fname == "__rmatmul__" and len(args) > 1:
            a = args[1]
        if isinstance(a, torch.Tensor) and a.dim() >= 1:
            return (float(a.shape[-1]),)
        return ()
    if fname in MAX_POOLS:
        k = kwargs.get("kernel_size", args[1] if len(args) > 1 else None)
        return (float(pool_window(k)),) if k is not None else ()
    if fname in SOFTMAXES and isinstance(out, torch.Tensor) and out.dim() >= 1:
        dim = kwargs.get("dim", args[1] if len(args) > 1 else -1)
        return key_counts(out, dim) if isinstance(dim, int) else ()
    return ()


def pool_window(kernel_size: Any) -> int:
    """Entries in one max-pool window (``kernel_size`` an int or a tuple)."""
    if isinstance(kernel_size, int):
        return kernel_size
    out = 1
    for k in kernel_size:
        out *= int(k)
    return out


def key_counts(probs: torch.Tensor, dim: int, points: int = QUANTILES) -> tuple[float, ...]:
    """Up to ``points`` quantiles of the number of non-zero probabilities per row (a causal mask: 1..S)."""
    with torch.no_grad():
        n = (probs.detach() > 0).sum(dim).flatten().double().clamp_min(1.0)
        if n.numel() == 0:
            return ()
        q = torch.linspace(0.5 / points, 1 - 0.5 / points, points, dtype=torch.float64)
        picked = torch.quantile(n[:1 << 20], q, interpolation="nearest")
        return tuple(float(v) for v in picked)


HUGE = 1e30  # an additive mask's "minus infinity" (finfo.min): not a value a signal is scaled by
SAMPLE = 1 << 20


def constant_value(out: Any) -> tuple[float, float] | None:
    """(second moment, mean) of a floating tensor computed from constants and parameters only (rotary
    tables, ``-exp(A_log)`` of a state-space layer), which the propagation then uses as it is; None for
    anything else (masks with "minus infinity" entries, integer or boolean tensors)."""
    if not isinstance(out, torch.Tensor) or not out.is_floating_point() or out.numel() == 0:
        return None
    with torch.no_grad():
        x = out.detach().flatten()[:SAMPLE].double()
        if not bool(torch.isfinite(x).all()) or float(x.abs().max()) >= HUGE:
            return None
        return float(x.square().mean()), float(x.mean())


def has_sized_calls(graph: Any, name_of: Callable[[Any], str]) -> bool:
    """Whether :func:`fx_sizes` runs the fx graph (it has a call whose sizes matter)."""
    return any(n.op in ("call_function", "call_method") and name_of(n) in SIZED for n in graph.nodes)


def fx_sizes(
    graph: Any, root: torch.nn.Module, example_input: Any, name_of: Callable[[Any], str]
) -> dict[Any, tuple[tuple[float, ...], tuple[float, float] | None]] | None:
    """node -> (:func:`call_sizes`, value) of the calls of an fx graph, read by running it once on
    ``example_input`` (a traced model: the recording pass of hooks discovery does not run); the value of a
    call that gives a Python number (a scale computed from a shape, ``(d // h) ** -0.5``) is ``(v^2, v)``.
    Empty when the graph has no sized call; None when it cannot be run on that input (the caller says so)."""
    if not has_sized_calls(graph, name_of):
        return {}
    calls = [n for n in graph.nodes if n.op in ("call_function", "call_method")]
    found: dict[Any, tuple[tuple[float, ...], tuple[float, float] | None]] = {}
    recorded = set(calls)

    class Run(fx.Interpreter):
        def run_node(self, n: fx.Node) -> Any:
            if n not in recorded:
                return super().run_node(n)
            args, kwargs = self.fetch_args_kwargs_from_env(n)
            out = getattr(self, n.op)(n.target, args, kwargs)
            name = name_of(n)
            size = call_sizes(name, tuple(args), dict(kwargs), out) if name in SIZED else ()
            number = type(out) in (int, float)
            if size or number:
                found[n] = (size, (float(out) ** 2, float(out)) if number else None)
            return out

    try:
        # on the model itself: a GraphModule would generate and compile the graph's Python code first
        Run(root, graph=graph).run(*_positional(root, graph, example_input))
    except Exception:  # an input the traced graph cannot take as given: the caller notes it
        return None
    return found


def _positional(root: torch.nn.Module, graph: Any, example_input: Any) -> list[Any]:
    """The example input as the traced graph's placeholders, in order (a dict by name, defaults filled)."""
    if isinstance(example_input, Mapping):
        sig = inspect.signature(root.forward)
        bound = sig.bind_partial(**example_input)
        bound.apply_defaults()
        values = dict(bound.arguments)
        return [values.get(str(n.target)) for n in graph.nodes if n.op == "placeholder"]
    return list(example_input) if isinstance(example_input, tuple | list) else [example_input]

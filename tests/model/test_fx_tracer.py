"""initlab's fx tracer caches the bytecode it reads to decide whether a traced value is being unpacked; the
graphs it traces, and its failures, are torch.fx's own."""

import pytest
import torch
import torch.nn.functional as F
from torch import fx, nn

from initlab.model._fx_tracer import LeafTracer, _instructions


class Unpacking(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 24)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c = self.fc(x).chunk(3, dim=-1)
        d, e = x.unbind(0)
        return a * b + c + d * e


class ShapeUnpacking(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape  # an attribute proxy unpacked (timm's attention blocks)
        return x.reshape(b * n, c).sum(0)


class ManyArguments(nn.Module):
    """Every kind of argument fx stores: parameters and buffers read directly, a tensor constant, numbers,
    a dtype, tuples, lists, slices, a dict of keyword arguments, None."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(6, 6))
        self.register_buffer("shift", torch.ones(6))
        self.const = torch.arange(6.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, None) + self.shift * self.const
        y = torch.cat([y, y[:, 1:4].repeat(1, 2)], dim=1).reshape((y.shape[0], 2, -1))
        return y.to(torch.float64).sum(dim=(1, 2), keepdim=False) * 0.5


class Starred(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        first, *_rest = x.unbind(0)  # UNPACK_EX: fx iterates through tracer.iter, which refuses
        return first


class Looping(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sum(t for t in x)


def test_traced_graph_is_fx_s_own() -> None:
    model = Unpacking()
    graph = LeafTracer({id(model.fc)}).trace(model)
    assert str(graph) == str(fx.Tracer().trace(model))
    # (two instances: tracing stores a tensor constant on the module it traces)
    assert str(LeafTracer(set()).trace(ManyArguments())) == str(fx.Tracer().trace(ManyArguments()))
    assert sum(n.op == "call_function" and "getitem" in str(n.target) for n in graph.nodes) == 5


@pytest.mark.parametrize("module", [Starred, Looping])
def test_iterating_fails_as_in_fx(module: type[nn.Module]) -> None:
    with pytest.raises(fx.proxy.TraceError, match="cannot be iterated"):
        fx.Tracer().trace(module())
    with pytest.raises(fx.proxy.TraceError, match="cannot be iterated"):
        LeafTracer(set()).trace(module())


def test_bytecode_is_read_once_per_function() -> None:
    _instructions.cache_clear()
    LeafTracer(set()).trace(Unpacking())
    LeafTracer(set()).trace(Unpacking())
    info = _instructions.cache_info()
    assert info.currsize == 1 and info.hits >= 3  # four unpackings in one forward, read once


def test_attribute_unpacking_reads_bytecode_once() -> None:
    """``b, n, c = x.shape`` iterates fx's attribute proxy: the same cached rule applies, the same graph."""
    _instructions.cache_clear()
    graph = LeafTracer(set()).trace(ShapeUnpacking())
    assert str(graph) == str(fx.Tracer().trace(ShapeUnpacking()))
    LeafTracer(set()).trace(ShapeUnpacking())
    info = _instructions.cache_info()
    assert info.currsize == 1 and info.hits >= 1

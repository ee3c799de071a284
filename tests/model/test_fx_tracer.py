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


def test_nodes_are_fx_s_without_the_module_stack() -> None:
    model = nn.Sequential(nn.Sequential(Unpacking()), nn.ReLU())
    leaves = {id(model[0][0].fc)}
    ours, theirs = LeafTracer(leaves), fx.Tracer()
    theirs.is_leaf_module = lambda m, name: id(m) in leaves  # type: ignore[method-assign]
    graph, reference = ours.trace(model), theirs.trace(model)
    assert str(graph) == str(reference)
    assert ours.node_name_to_scope == theirs.node_name_to_scope  # each node's module path and type
    assert any("nn_module_stack" in n.meta for n in reference.nodes)
    assert not any("nn_module_stack" in n.meta for n in graph.nodes)
    recording = LeafTracer(leaves)
    recording.record_stack_traces = True  # fx's own create_node, where it records more
    assert any(n.stack_trace for n in recording.trace(model).nodes)


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


# ---- fx's module wrappers set on the model's classes, not on nn.Module -------------------------------------
SEEN: list[bool] = []  # while tracing: whether nn.Module's own __call__ and __getattr__ are untouched


class Probe(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        SEEN.append(nn.Module.__dict__["__call__"] is ORIGINAL[0]
                    and nn.Module.__dict__["__getattr__"] is ORIGINAL[1])
        return x * 2


ORIGINAL = (nn.Module.__dict__["__call__"], nn.Module.__dict__["__getattr__"])


class OwnGetattr(nn.Linear):
    """Defines its own ``__getattr__``: fx's patch of nn.Module's does not reach it, nor does initlab's."""

    def __getattr__(self, name: str) -> object:
        return super().__getattr__(name)


class Nested(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), Probe())
        self.own = OwnGetattr(8, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.own(self.block(x))) + self.own.bias)


def _class_attrs(model: nn.Module) -> set[tuple[type, str]]:
    return {(type(m), n) for m in model.modules() for n in ("__call__", "__getattr__")
            if n in type(m).__dict__}


@pytest.mark.parametrize("leaves", ["none", "linears"])
def test_the_wrappers_go_on_the_model_s_classes_and_the_graph_is_fx_s_own(leaves: str) -> None:
    model = Nested()
    before = _class_attrs(model)
    ids = {id(m) for m in model.modules() if isinstance(m, nn.Linear)} if leaves == "linears" else set()

    class Plain(fx.Tracer):  # fx's own patching of nn.Module, the same leaves
        def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
            return id(m) in ids

    SEEN.clear()
    graph = LeafTracer(ids).trace(model)
    assert SEEN == [True]  # nn.Module was not written while tracing
    assert str(graph) == str(Plain().trace(model))
    assert _class_attrs(model) == before  # every class inherits nn.Module's methods again
    assert nn.Module.__dict__["__call__"] is ORIGINAL[0] and nn.Module.__dict__["__getattr__"] is ORIGINAL[1]


class Failing(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if h.sum() > 0:  # a Proxy has no truth value
            h = -h
        return h


def test_a_failed_trace_leaves_every_class_and_fx_as_they_were() -> None:
    from torch.fx import _symbolic_trace

    model, new_patcher = Failing(), _symbolic_trace._new_patcher
    before = _class_attrs(model)
    with pytest.raises(fx.proxy.TraceError):
        LeafTracer(set()).trace(model)
    assert _class_attrs(model) == before and "__call__" not in nn.Linear.__dict__
    assert _symbolic_trace._new_patcher is new_patcher and _symbolic_trace.CURRENT_PATCHER is None


def test_tracing_from_two_threads_leaves_fx_s_patcher_factory_as_it_was() -> None:
    """Each trace swaps fx's patcher factory for one that patches its model's classes; concurrent traces are
    serialized, so neither restores the other's factory."""
    import threading

    from torch.fx import _symbolic_trace

    new_patcher, graphs, errors = _symbolic_trace._new_patcher, [], []

    def work() -> None:
        try:
            for _ in range(20):
                graphs.append(str(LeafTracer(set()).trace(Nested())))
        except Exception as exc:  # reported below, in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(graphs)) == 1 and len(graphs) == 80
    assert _symbolic_trace._new_patcher is new_patcher and "__call__" not in nn.Linear.__dict__

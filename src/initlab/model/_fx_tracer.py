"""The torch.fx tracer of fx discovery: initlab's leaf modules stay calls, and unpacking a traced value
(``q, k, v = qkv.unbind(0)``, or an attribute: ``B, N, C = x.shape``) reads the caller's bytecode once per
function, not once per unpacking; and fx's patch of ``nn.Module.__call__``/``__getattr__`` is set on the
model's own module classes instead (:class:`_ClassPatcher`); nodes carry no ``nn_module_stack``.

fx's ``Proxy.__iter__`` disassembles the whole calling function each time it is asked whether it is being
unpacked: ~1 ms for a large ``forward`` (timm's CoaT: 144 unpackings, 0.19 s of a 1.5 s first call). The
instructions of a code object never change, so :func:`_instructions` keeps them (a code object holds no
module or tensor: nothing of a model is kept alive).

fx routes every module call and attribute read of a trace through wrappers it sets on ``nn.Module`` itself,
and takes them off after. Setting a slot method on a class makes CPython update every subclass: 0.1 ms with
torch's own ~350 module classes, 0.4 ms once timm is imported (~1350), 3.4 ms in a process that built the
zoo's transformers (~3050), so four such writes were ~14 ms of every trace, more than a small model's whole
construction (benchmarks/fx_patch_cost.py). The same wrappers set on the model's module classes (those that
inherit the method from ``nn.Module``) reach exactly the calls fx's would: a class that defines its own
``__call__``/``__getattr__`` is not reached by fx's patch either."""

from __future__ import annotations

import bisect
import contextlib
import dis
import functools
import inspect
import sys
import threading
from collections.abc import Callable, Iterator
from types import CodeType
from typing import Any

import torch
from torch import fx, nn
from torch.fx import _symbolic_trace as _st
from torch.fx import traceback as fx_traceback


class LeafTracer(fx.Tracer):
    """Traces through every module but the given leaves (ids), with :class:`_Proxy` values."""

    def __init__(self, leaves: set[int]):
        super().__init__()
        self.leaves = leaves
        self.literals: dict[str, Any] = {}  # get_attr target -> the tensor fx would have set on the model

    def trace(self, root: Any, concrete_args: dict[str, Any] | None = None) -> fx.Graph:
        """fx's graph of ``root``; the tensors fx stows on ``root`` for its ``get_attr`` nodes
        (``_tensor_constant0``: a value the forward computed from buffers outside the graph) are taken off it
        again, into :attr:`literals`: left there, each trace added one more attribute to the user's model."""
        before = set(vars(root)) if isinstance(root, nn.Module) else None
        try:
            return self._trace(root, concrete_args)
        finally:
            if before is not None:
                self.literals.update({k: vars(root).pop(k) for k in set(vars(root)) - before})

    def _trace(self, root: Any, concrete_args: dict[str, Any] | None) -> fx.Graph:
        classes = {type(m) for m in root.modules()} if isinstance(root, nn.Module) else {nn.Module}
        if nn.Module in classes or not _PATCHER_API:
            return super().trace(root, concrete_args)
        with _SWAP:  # two threads tracing at once would each restore the other's patcher factory
            original = _st._new_patcher
            _st._new_patcher = functools.partial(_class_patcher, tuple(classes))  # read by fx's trace
            try:
                return super().trace(root, concrete_args)
            finally:
                _st._new_patcher = original

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return id(m) in self.leaves

    def create_node(self, kind: str, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                    name: str | None = None, type_expr: Any | None = None) -> fx.Node:
        """fx's own node without its ``meta["nn_module_stack"]``: a ``copy.copy`` of the module stack for
        every node, which nothing in initlab reads (a trace takes 0.64-1.05 of fx's time without it, median
        0.83, three torch models over three runs of benchmarks/fx_node_cost.py). fx's own path where it
        records more (stack traces, preserved metadata, the mutable-operation check) or its bookkeeping
        moved."""
        if (_NODE_API and not self.record_stack_traces and not fx_traceback.has_preserved_node_meta()
                and not (kind == "call_function" and self.check_mutable_operations)):
            node = self.graph.create_node(kind, target, args, kwargs, name, type_expr)
            self.node_name_to_scope[node.name] = (self.scope.module_path, self.scope.module_type)
            return node
        return super().create_node(kind, target, args, kwargs, name, type_expr)

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _Proxy(node, self)

    def create_arg(self, a: Any) -> Any:
        """fx's own result, without its checks for parameters, buffers and modules on the arguments that
        are none of them (a traced value, a number, a tuple of them): 15-20% of tracing CoaT."""
        kind = type(a)
        if kind in _PLAIN:
            return a
        if kind is _Proxy or kind is _Attribute:
            return a.node
        if kind is tuple:
            return tuple(self.create_arg(x) for x in a)
        if kind is list:
            return [self.create_arg(x) for x in a]
        return super().create_arg(a)


# fx's node bookkeeping LeafTracer.create_node reproduces (else fx's own create_node)
_NODE_API = all(hasattr(fx.Tracer(), n) for n in ("scope", "node_name_to_scope", "record_stack_traces",
                                                    "check_mutable_operations"))

# argument types fx stores as they are (a tensor is not one: fx looks it up among the model's buffers)
_PLAIN = frozenset({int, float, bool, str, complex, type(None), type(...), torch.dtype, torch.device,
                    torch.memory_format, torch.layout})


class _Proxy(fx.Proxy):
    def __getattr__(self, k: str) -> fx.proxy.Attribute:
        # ``B, N, C = x.shape`` unpacks an attribute proxy: it iterates as this class does
        return _Attribute(self, k)

    def __iter__(self) -> Iterator[Any]:
        """fx's own rule: the caller's instruction at its last offset; UNPACK_SEQUENCE unpacks n items."""
        frame = inspect.currentframe()
        caller = frame.f_back if frame is not None else None
        if caller is None:
            return super().__iter__()
        offsets, names, counts = _instructions(caller.f_code)
        if sys.version_info >= (3, 11):
            at = bisect.bisect_left(offsets, caller.f_lasti)
        else:
            at = caller.f_lasti // 2
        if names[at] == "UNPACK_SEQUENCE":
            return (self[i] for i in range(counts[at]))  # type: ignore[index]
        return self.tracer.iter(self)


class _Attribute(_Proxy, fx.proxy.Attribute):
    """fx's lazily added attribute (``x.shape``) with :class:`_Proxy`'s unpacking."""


@functools.lru_cache(maxsize=512)
def _instructions(code: CodeType) -> tuple[list[int], list[str], list[Any]]:
    insts = list(dis.get_instructions(code))
    return [i.offset for i in insts], [i.opname for i in insts], [i.argval for i in insts]


# ---- fx's module wrappers on the model's classes -------------------------------------------------------
_MODULE_SLOTS = ("__call__", "__getattr__")
_SWAP = threading.RLock()  # (reentrant: a forward may trace a submodule of its own)
_PATCHER_API = all(hasattr(_st, n) for n in ("_new_patcher", "_Patcher", "_PatchedFn", "CURRENT_PATCHER"))


def _inherited(cls: type, name: str) -> bool:
    """``cls`` takes ``name`` from ``nn.Module`` (no class before it in the MRO defines it)."""
    return next((k for k in cls.__mro__ if name in k.__dict__), None) is nn.Module


if _PATCHER_API:
    class _OnClasses(_st._PatchedFn):
        """fx's wrapper of an ``nn.Module`` method set on each class in ``frame_dict`` (a tuple of classes),
        and deleted from them again: they inherit ``nn.Module``'s as before."""

        def patch(self) -> None:
            for cls in self.frame_dict:
                setattr(cls, self.fn_name, self.new_fn)

        def revert(self) -> None:
            for cls in self.frame_dict:
                if self.fn_name in cls.__dict__:
                    delattr(cls, self.fn_name)

    class _ClassPatcher(_st._Patcher):
        def __init__(self, classes: tuple[type, ...]):
            super().__init__()
            self.classes = classes

        def patch_method(self, cls: type, name: str, new_fn: Callable[..., Any],
                         deduplicate: bool = True) -> None:
            if cls is not nn.Module or name not in _MODULE_SLOTS:
                return super().patch_method(cls, name, new_fn, deduplicate)
            new_fn.__fx_already_patched = deduplicate  # type: ignore[attr-defined]
            targets = tuple(c for c in self.classes if _inherited(c, name))
            self.patches_made.append(_OnClasses(targets, name, getattr(nn.Module, name), new_fn))
            self.patches_made[-1].patch()


@contextlib.contextmanager
def _class_patcher(classes: tuple[type, ...]) -> Iterator[Any]:
    """fx's ``_new_patcher`` with :class:`_ClassPatcher`: the current patcher while the trace runs, every
    patch reverted after."""
    prior = _st.CURRENT_PATCHER
    patcher = _ClassPatcher(classes)
    try:
        _st.CURRENT_PATCHER = patcher
        yield patcher
    finally:
        patcher.revert_all_patches()
        _st.CURRENT_PATCHER = prior

"""The torch.fx tracer of fx discovery: initlab's leaf modules stay calls, and unpacking a traced value
(``q, k, v = qkv.unbind(0)``, or an attribute: ``B, N, C = x.shape``) reads the caller's bytecode once per
function, not once per unpacking.

fx's ``Proxy.__iter__`` disassembles the whole calling function each time it is asked whether it is being
unpacked: ~1 ms for a large ``forward`` (timm's CoaT: 144 unpackings, 0.19 s of a 1.5 s first call). The
instructions of a code object never change, so :func:`_instructions` keeps them (a code object holds no
module or tensor: nothing of a model is kept alive)."""

from __future__ import annotations

import bisect
import dis
import functools
import inspect
import sys
from collections.abc import Iterator
from types import CodeType
from typing import Any

import torch
from torch import fx, nn


class LeafTracer(fx.Tracer):
    """Traces through every module but the given leaves (ids), with :class:`_Proxy` values."""

    def __init__(self, leaves: set[int]):
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return id(m) in self.leaves

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

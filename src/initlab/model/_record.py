"""The one ``TorchFunctionMode`` of initlab: it sees every torch call of a forward pass.

Module hooks see modules; functional activations (``F.gelu``, ``torch.tanh``, ``x.relu()``), in-place ops and
raw ``nn.Parameter`` s used through ``F.linear``/``@`` are only seen by a ``TorchFunctionMode``. Discovery
(building dataflow nodes, :mod:`.graph`) and :func:`.trace.trace_activations` (recording tensors) both hand
their per-call logic to :class:`OpRecorder`. ``depth`` counts the modules being run that the caller records
as one node: calls made inside them are not handed on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.overrides import TorchFunctionMode

from . import layers as L

OnCall = Callable[[str, tuple[Any, ...], dict[str, Any], Any], None]


class OpRecorder(TorchFunctionMode):
    def __init__(self, on_call: OnCall):
        super().__init__()
        self.on_call = on_call
        self.depth = 0

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if self.depth == 0:
            self.on_call(L.func_name(func), tuple(args), kwargs, out)
        return out

    def enter(self, *_: Any, **__: Any) -> None:
        """A forward pre-hook: a module recorded as one node starts."""
        self.depth += 1

    def leave(self) -> None:
        self.depth -= 1

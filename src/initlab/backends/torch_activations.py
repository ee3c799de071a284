"""torch activation modules and functions <-> catalog activations (``nn.LeakyReLU(0.2)`` ->
``leaky_relu(0.2)``, ``F.gelu(x, approximate="tanh")`` -> ``gelu_tanh``, ``gelu_tanh`` -> a torch function).

Everything here is derived from the catalog's one activation table (each entry's :class:`TorchForm`): known
modules and functions map to the catalog's exact numpy form with their parameters; any other module or
callable is wrapped so the catalog can evaluate it on float64 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..catalog import activations as acts
from ..catalog.activations import Activation


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True


_FORMS = acts.torch_forms()


def _resolve(fname: str) -> list[Any]:
    """Every torch callable spelled ``fname`` (and its in-place ``fname_``)."""
    found = []
    for space in (F, torch, torch.Tensor):
        for n in (fname, fname + "_"):
            fn = getattr(space, n, None)
            if fn is not None and fn not in found:
                found.append(fn)
    return found


# derived from the catalog's table, the only one: module class -> names, function name -> names
_MODULES: dict[type, list[str]] = {}
_BY_FUNCTION: dict[str, list[str]] = {}
for _name, _form in _FORMS.items():
    if _form.module is not None:
        _MODULES.setdefault(getattr(nn, _form.module), []).append(_name)
    for _f in _form.functions:
        for _n in (_f, _f + "_"):
            _BY_FUNCTION.setdefault(_n, []).append(_name)
_CALLABLES: dict[Any, str] = {
    fn: names[0] for fname, names in _BY_FUNCTION.items() for fn in _resolve(fname) if _hashable(fn)
}


def _match(names: list[str], value: Callable[[int, str, float | str], Any]) -> Activation | None:
    """The first catalog activation among ``names`` whose fixed torch arguments hold; ``value(index, arg,
    default)`` reads torch argument ``index`` (after the input) from a call or a module."""
    for name in names:
        form = _FORMS[name]
        args = {arg: value(i, arg, default) for i, (arg, default) in enumerate(form.args)}
        if any(args.get(arg, want) != want for arg, want in form.fixed):
            continue
        defaults = acts.activation(name).params
        params = {k: v for k, v in args.items() if k in defaults}
        if any(not isinstance(v, int | float) or isinstance(v, bool) for v in params.values()):
            continue
        if not params:
            return acts.activation(name)
        return acts.activation(name, **{k: float(v) for k, v in params.items()})
    return None


def function_activation(fname: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Activation | None:
    """The catalog activation of a functional call ``fname(x, *args[1:], **kwargs)`` seen while tracing."""
    names = _BY_FUNCTION.get(fname)
    if not names:
        return None
    return _match(
        names, lambda i, arg, default: args[i + 1] if len(args) > i + 1 else kwargs.get(arg, default)
    )


def torch_callable(act: Activation) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A torch function computing ``act`` with its parameters, or None when torch has no spelling of it."""
    form = _FORMS.get(act.name)
    if form is None:
        return None
    if form.module == "Identity":
        return lambda x: x
    fns = [fn for f in form.functions for fn in _resolve(f) if not getattr(fn, "__name__", "").endswith("_")]
    if not fns:
        return None
    fn = fns[0]
    kwargs = {arg: act.params.get(arg, default) for arg, default in form.args}
    kwargs.update(form.fixed)
    return lambda x: fn(x, **kwargs)


def torch_module(name: str) -> type[nn.Module]:
    """The ``torch.nn`` class of a catalog activation (``"relu"`` -> ``nn.ReLU``, ``"linear"`` ->
    ``nn.Identity``)."""
    act = acts.activation(name)
    module = _FORMS[act.name].module if act.name in _FORMS else None
    if module is None:
        raise ValueError(f"torch has no module for activation {name!r}")
    cls: type[nn.Module] = getattr(nn, module)
    return cls


def module_activation(obj: Any) -> Activation | None:
    """The catalog activation for a torch module or function, or None if ``obj`` is not a torch callable."""
    if isinstance(obj, nn.Module):
        names = _MODULES.get(type(obj))
        found = _match(names, lambda i, arg, default: getattr(obj, arg, default)) if names else None
        if found is not None:
            return found
        if isinstance(obj, nn.PReLU) and obj.weight.numel() == 1 and obj.weight.device.type != "meta":
            return acts.activation("leaky_relu", negative_slope=float(obj.weight.detach().reshape(())))
        return _wrap(obj, type(obj).__name__)
    if obj in _CALLABLES if _hashable(obj) else False:
        return acts.activation(_CALLABLES[obj])
    return None


def _wrap(fn: Callable[[torch.Tensor], torch.Tensor], name: str) -> Activation:
    def numpy_fn(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return fn(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))).double().numpy()

    return Activation(name, numpy_fn)


if module_activation not in acts.ADAPTERS:
    acts.ADAPTERS.append(module_activation)

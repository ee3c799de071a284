"""Parse the call form used for schemes and activations: ``"normal(0, 0.02)"``, ``"leaky_relu(0.2)"``,
``"he_normal(mode='fan_out')"``. Only literals are accepted; nothing is evaluated."""

from __future__ import annotations

import ast
from typing import Any

from ..errors import InitlabTypeError, InitlabValueError


def parse_call(text: str) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """Split ``"name(a, b, k=v)"`` into ``("name", (a, b), {"k": v})``.

    >>> parse_call("normal(0, std=0.02)")
    ('normal', (0,), {'std': 0.02})
    """
    if not isinstance(text, str):
        raise InitlabTypeError(f"expected a string such as 'normal(0, 0.02)', got {type(text).__name__}")
    text = text.strip()
    if "(" not in text:
        return text, (), {}
    if not text.endswith(")"):
        raise InitlabValueError(f"cannot parse {text!r}: expected NAME or NAME(arg, key=value)")
    name, _, rest = text.partition("(")
    try:
        call = ast.parse(f"f({rest}", mode="eval").body
    except (SyntaxError, ValueError, MemoryError, RecursionError) as exc:
        why = getattr(exc, "msg", exc)
        raise InitlabValueError(f"cannot parse the arguments of {text!r}: {why}") from None
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):  # "f(a)(b)", "f(a) + 1"
        raise InitlabValueError(f"cannot parse {text!r}: expected NAME or NAME(arg, key=value)")
    keys = [k.arg for k in call.keywords]
    if None in keys:
        raise InitlabValueError(f"cannot parse {text!r}: ** is not allowed, write key=value")
    repeated = sorted({k for k in keys if keys.count(k) > 1})  # type: ignore[type-var]
    if repeated:
        twice = ", ".join(map(str, repeated))
        raise InitlabValueError(f"cannot parse {text!r}: {twice} given twice; keep one")
    try:
        args = tuple(ast.literal_eval(a) for a in call.args)
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise InitlabValueError(
            f"arguments of {text!r} must be literals (numbers, strings, tuples)") from None
    return name.strip(), args, kwargs


def format_call(name: str, params: dict[str, Any]) -> str:
    """Inverse of :func:`parse_call` for keyword parameters."""
    if not params:
        return name
    inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{name}({inner})"

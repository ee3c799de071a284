"""Parse the call form used for schemes and activations: ``"normal(0, 0.02)"``, ``"leaky_relu(0.2)"``,
``"he_normal(mode='fan_out')"``. Only literals are accepted; nothing is evaluated."""

from __future__ import annotations

import ast
from typing import Any


def parse_call(text: str) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
    """Split ``"name(a, b, k=v)"`` into ``("name", (a, b), {"k": v})``.

    >>> parse_call("normal(0, std=0.02)")
    ('normal', (0,), {'std': 0.02})
    """
    text = text.strip()
    if "(" not in text:
        return text, (), {}
    if not text.endswith(")"):
        raise ValueError(f"cannot parse {text!r}: expected NAME or NAME(arg, key=value)")
    name, _, rest = text.partition("(")
    try:
        call = ast.parse(f"f({rest}", mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"cannot parse the arguments of {text!r}: {exc.msg}") from None
    assert isinstance(call, ast.Call)
    try:
        args = tuple(ast.literal_eval(a) for a in call.args)
        kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}
    except ValueError:
        raise ValueError(f"arguments of {text!r} must be literals (numbers, strings, tuples)") from None
    return name.strip(), args, kwargs


def format_call(name: str, params: dict[str, Any]) -> str:
    """Inverse of :func:`parse_call` for keyword parameters."""
    if not params:
        return name
    inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
    return f"{name}({inner})"

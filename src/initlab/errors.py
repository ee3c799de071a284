"""initlab's error types: a user mistake, reported in one line that names the fix.

Each also derives from the builtin it replaces (``ValueError``, ``TypeError``), so code written against
earlier releases, which raised the builtins, keeps catching them. Imports nothing from initlab.
"""

from __future__ import annotations


class InitlabError(Exception):
    """Base class: bad input to initlab (the message says what to change)."""


class InitlabValueError(InitlabError, ValueError):
    """A value that cannot work: out of range, non-finite, unknown name, wrong shape."""


class InitlabTypeError(InitlabError, TypeError):
    """An argument of the wrong type (e.g. ``generator=5``)."""


def first_line(exc: BaseException) -> str:
    """``Name: first line of the message`` of an exception from the user's code, for one-line errors (a bare
    ``assert`` in a forward has an empty message)."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


__all__ = ["InitlabError", "InitlabTypeError", "InitlabValueError", "first_line"]

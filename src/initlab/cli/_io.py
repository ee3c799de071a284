"""Files the CLI reads and writes: the user's model file (imported as a real module) and output paths
(checked before any work, written with the user's umask)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from ..errors import InitlabError, InitlabTypeError, InitlabValueError


class UserCodeError(InitlabError):
    """The user's model file or factory raised; the message says where."""


def _where(exc: BaseException, path: str) -> str:
    """``FILE.py:LINE`` of the innermost frame in the user's file (or of the error's own location)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.abspath(f.filename) == path]
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}"
    if isinstance(exc, SyntaxError) and exc.lineno:
        return f"{exc.filename}:{exc.lineno}"
    return path


def _check_file(path: str) -> None:
    from ..backends.checks import file_problem

    problem = file_problem(path, "the .py file that defines the model")
    if problem:
        raise InitlabValueError(problem)


def load_factory(target: str, call: bool = True) -> Any:
    """The model built by ``FILE.py:NAME`` (NAME a callable returning a module, or a module; with
    ``call=False`` the callable itself, e.g. a function of the width). The global
    random states (torch, numpy, Python) are put back afterwards: building modules draws torch's default
    init from them, and the CLI run in-process must not move them.

    The file is imported as a real module, registered in ``sys.modules`` under a name derived from its path,
    so that ``dataclasses`` with postponed annotations, ``pickle`` of its classes and ``get_type_hints``
    work as they do for an imported module."""
    import random

    import numpy as np
    import torch

    states = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        return _load_factory(target, call)
    finally:
        torch.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])


def _load_factory(target: str, call: bool) -> Any:
    path, sep, name = target.rpartition(":")
    if not sep or not path or not name:
        raise InitlabValueError(f"expected FILE.py:FACTORY, got {target!r}")
    _check_file(path)
    path = os.path.abspath(path)
    digest = hashlib.sha256(path.encode()).hexdigest()[:12]
    mod_name = f"_initlab_user_{Path(path).stem.replace('-', '_').replace('.', '_')}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise InitlabValueError(f"cannot import {path}: give a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    sys.path.insert(0, os.path.dirname(path))
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(mod_name, None)
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserCodeError(f"importing {_where(exc, path)} raised {type(exc).__name__}: {first}") from exc
    finally:
        sys.path.pop(0)
    if not hasattr(module, name):
        public = [n for n in vars(module) if not n.startswith("_")]
        raise InitlabValueError(f"{path} defines no {name!r}; it defines {', '.join(public[:12])}")
    obj = getattr(module, name)
    if not call:
        if not callable(obj) or _is_module(obj):
            raise InitlabTypeError(f"{target} must be a function of the width, got {type(obj).__name__}")
        return obj
    try:
        model = obj() if callable(obj) and not _is_module(obj) else obj
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [""])[0]
        raise UserCodeError(f"{name}() ({_where(exc, path)}) raised {type(exc).__name__}: {first}") from exc
    if not _is_module(model):
        raise InitlabTypeError(f"{target} returned {type(model).__name__}, expected a torch.nn.Module")
    return model


def _is_module(obj: Any) -> bool:
    from torch import nn

    return isinstance(obj, nn.Module)


def check_output(path: str, option: str) -> None:
    """Refuse, before any work, an output path that cannot be written: a directory, a missing folder, a
    folder without write permission."""
    p = Path(path)
    if p.is_dir():
        raise InitlabValueError(f"{option} {path} is a directory: give a file name, e.g. {p / 'out'}")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise InitlabValueError(f"{option} {path}: folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise InitlabValueError(f"{option} {path}: no permission to write there; choose another path")


def check_output_dir(path: str | os.PathLike[str], option: str) -> None:
    """Refuse, before any work, an output folder that is a file or lies under a folder that cannot be
    written (missing folders are created later)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InitlabValueError(f"{option} {p} is a file, not a folder: give a folder name")
    existing = next((a for a in (p, *p.parents) if a.exists()), Path("."))
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InitlabValueError(f"{option} {p}: cannot create or write in {existing}; choose another folder")


def apply_umask(path: str) -> None:
    """Give a file written by a library that creates it 0600 the mode a plain ``open()`` gives: 0666 minus
    the process umask (read without changing it where /proc allows)."""
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc: read it the only portable way, and put it back at once
    os.umask(mask)
    return mask

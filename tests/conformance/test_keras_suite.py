"""Keras 3's own initializer tests (the ``*_test.py`` files shipped in the installed keras package) run with
``keras.src.initializers`` replaced by :mod:`.keras_adapter`, i.e. every draw made by initlab's ``keras:``
dialect. One pytest test per Keras test method, all of them adapted (STFT and the array-valued Constant
included); a Keras test that Keras itself skips on this backend is skipped with Keras' reason."""

from __future__ import annotations

import importlib.util
import pathlib
import types
import unittest
from typing import Any

import pytest

from . import frameworks as fw

FILES = ("constant_initializers_test.py", "random_initializers_test.py", "initializer_test.py")


def _keras_dir() -> pathlib.Path | None:
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        return None
    return pathlib.Path(next(iter(spec.submodule_search_locations))) / "src" / "initializers"


def _load(path: pathlib.Path) -> types.ModuleType:
    from . import keras_adapter

    def skip_if_backend(backend: str, reason: str) -> Any:
        return pytest.mark.skipif(fw.need("keras").backend.backend() == backend, reason=reason)

    source = path.read_text().replace("from conftest import skip_if_backend\n", "")
    source = source.replace("from keras.src import initializers\n", "")
    module = types.ModuleType(f"keras_suite_{path.stem}")
    module.__dict__.update(initializers=keras_adapter, skip_if_backend=skip_if_backend)
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


def _methods() -> list[tuple[str, str]]:
    folder = _keras_dir()
    if folder is None:
        return []
    out = []
    for name in FILES:
        text = (folder / name).read_text() if (folder / name).exists() else ""
        out += [
            (name, line.split("def ")[1].split("(")[0])
            for line in text.splitlines()
            if line.strip().startswith("def test_")
        ]
    return out


@pytest.mark.parametrize("file, method", _methods(), ids=lambda x: x)
def test_keras_own_test(file: str, method: str) -> None:
    fw.need("keras")
    folder = _keras_dir()
    assert folder is not None
    module = _load(folder / file)
    cls = next(
        c
        for c in vars(module).values()
        if isinstance(c, type) and issubclass(c, unittest.TestCase) and hasattr(c, method)
    )
    result = unittest.TestResult()
    cls(method).run(result)
    problems = [text for _, text in result.errors + result.failures]
    if result.skipped and not problems:
        pytest.skip(result.skipped[0][1])
    assert not problems, problems[0][-2000:]

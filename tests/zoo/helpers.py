"""The zoo's CI subset imports its model list from ``benchmarks/`` (explicitly, by path): ``_zoo_models``
installs ``benchmarks/_torchvision_shim.py`` first, so that torchvision and timm import on CPU torch even
where the registry's torchvision wheel is a CUDA build. The library itself never imports the shim."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def zoo_models():
    """``benchmarks/_zoo_models.py`` (the shim installed), or a skip naming what is missing."""
    for package in ("transformers",):
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (pip install -e '.[zoo]')")
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import _zoo_models

    return _zoo_models


def vision_available() -> bool:
    """torchvision and timm import (through the shim)."""
    try:
        zoo_models()
        import timm  # noqa: F401
        import torchvision.models  # noqa: F401
    except Exception:
        return False
    return True

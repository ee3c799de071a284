"""TEST-ONLY: install ``benchmarks/_torchvision_shim.py`` (the one import shim, loaded by path under the name
the zoo's tests import it by) so that ``import timm`` works where torchvision's C extension does not load.
initlab itself never imports it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "_torchvision_shim.py"


def install() -> None:
    module = sys.modules.get("_torchvision_shim")
    if module is None:  # kept in sys.modules: its torch.library handle must stay alive
        spec = importlib.util.spec_from_file_location("_torchvision_shim", _PATH)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["_torchvision_shim"] = module
        spec.loader.exec_module(module)
    module.install()

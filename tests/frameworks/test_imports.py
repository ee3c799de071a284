"""``import initlab`` loads neither keras nor jax/flax; each framework package loads only its own."""

from __future__ import annotations

import subprocess
import sys


def _loaded(code: str) -> set[str]:
    names = "('keras', 'jax', 'flax', 'torch')"
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {names} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_initlab_does_not_import_frameworks() -> None:
    assert _loaded("import initlab") & {"keras", "jax", "flax"} == set()


def test_jax_initializers_do_not_import_torch_or_keras() -> None:
    assert _loaded("import initlab.jax") & {"keras", "torch", "flax"} == set()

"""Keras 3 on its torch backend (issue 16: "Keras 3 models ... on the jax and torch backends"). A process
picks its Keras backend once, at the first import, and this suite's is jax (conftest.py); so this folder's
Keras tests -- initializers against the catalog's formulas, save/load, model init against the torch twin's
outputs, the all-or-nothing contract, bit-identical weights across frameworks -- run again in a child process
whose ``KERAS_BACKEND`` is torch; among them ``test_keras_runs_on_the_backend_asked_for`` (selected by ``-k
keras``) checks that the child's backend is torch."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("keras", reason="keras is not installed (pip install -e '.[keras]')")
pytest.importorskip("flax.nnx", reason="flax is not installed (pip install -e '.[jax]')")

HERE = Path(__file__).resolve().parent
FILES = ("test_keras_model.py", "test_initializers.py", "test_identity.py")


def test_the_keras_tests_pass_on_the_torch_backend() -> None:
    env = {**os.environ, "KERAS_BACKEND": "torch"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
           "-W", "ignore::DeprecationWarning", "-k", "keras or identical", *(str(HERE / f) for f in FILES)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=HERE.parent.parent)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stdout[-4000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) >= 50, summary  # the Keras tests ran, not a collection of none
    assert "skipped" not in summary, summary

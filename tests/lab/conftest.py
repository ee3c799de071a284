"""Quick lab runs shared by the tests of one file (each experiment runs once per test module)."""

from __future__ import annotations

import pytest

from initlab.lab.report import Result
from initlab.lab.runner import run_experiment


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory):
    cache: dict[str, tuple[Result, object]] = {}

    def get(name: str, seeds: int = 2):
        if name not in cache:
            out = tmp_path_factory.mktemp(name)
            cache[name] = (run_experiment(name, quick=True, seeds=seeds, out=out, progress=False), out)
        return cache[name]

    return get

"""benchmarks/zoo.py's worker pool: a worker that dies (killed for memory, as two 13 GiB ViT-H/14 processes
were side by side) gives a "crashed" line that names its model, and the next model runs in a fresh worker."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

from .helpers import BENCHMARKS, zoo_models


def test_a_crashed_worker_reports_its_model_and_the_next_one_runs(monkeypatch: Any) -> None:
    zoo_models()  # benchmarks/ on the path (zoo.py imports _zoo_models); "zoo" here is this test package
    spec = importlib.util.spec_from_file_location("zoo_benchmark", BENCHMARKS / "zoo.py")
    assert spec is not None and spec.loader is not None
    zoo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo)

    def run_model(entry: str) -> dict[str, Any]:
        if entry == "dies":
            os._exit(1)  # what the kernel's OOM killer leaves the parent: a closed pipe
        return {"name": entry, "status": "ok"}

    monkeypatch.setattr(zoo, "run_model", run_model)
    monkeypatch.setattr(zoo, "_ENTRIES", {"hf:dies": "dies", "hf:lives": "lives"})
    pool = zoo.Pool(1, timeout=120)
    got: list[dict[str, Any]] = []
    try:
        pool.run(["hf:dies", "hf:lives"], got.append)
    finally:
        pool.close()
    assert [(r["source"], r["name"], r["status"]) for r in got] == [
        ("hf", "dies", "crashed"), ("hf", "lives", "ok")]

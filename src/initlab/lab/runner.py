"""The experiment registry and the runner: sizes (quick/full), seeds, worker processes, progress, outputs.

An experiment is a module under :mod:`initlab.lab.experiments` with ``NAME``, ``QUESTION``,
``run(spec) -> Result`` and ``plot(result, out) -> list[str]`` (figure file names written into ``out``).
Independent trainings go through :func:`map_runs`, which fans them out to worker processes when asked to.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from tqdm import tqdm

from .report import Result
from .train import torch_threads

EXPERIMENTS = (
    "symmetry",
    "depth-signal",
    "truncation",
    "glorot-vs-he",
    "normal-vs-uniform",
    "batchnorm",
    "methods",
    "width-transfer",
)

T = TypeVar("T")


@dataclass(frozen=True)
class Spec:
    """How to run: ``quick`` picks the small sizes; ``seeds`` are the seeds themselves."""

    quick: bool
    seeds: tuple[int, ...]
    workers: int = 1
    progress: bool = True


def experiment(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"initlab.lab.experiments.{name.replace('-', '_')}")


def default_workers() -> int:
    """Worker processes for independent runs: half the cores, and 1 (serial) on a 2-core machine."""
    cores = os.cpu_count() or 1
    return cores // 2 if cores > 2 else 1


def run_experiment(
    name: str,
    *,
    quick: bool = False,
    seeds: int | None = None,
    out: Path | str | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> Result:
    """Run ``name`` and write ``results.json``, ``section.md`` and its figures into ``out`` (if given)."""
    module = experiment(name)
    n = seeds if seeds is not None else (2 if quick else 5)
    if n < 1:
        raise ValueError(f"seeds must be at least 1, got {n}")
    spec = Spec(quick, tuple(range(n)), workers or default_workers(), progress)
    start = time.perf_counter()
    with torch_threads(1):
        result: Result = module.run(spec)
    result.quick, result.seeds = quick, list(spec.seeds)
    result.elapsed_s = time.perf_counter() - start
    if out is not None:
        out_dir = Path(out)
        out_dir.mkdir(parents=True, exist_ok=True)
        result.figures = module.plot(result, out_dir)
        result.write(out_dir)
    return result


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _call(job: tuple[Callable[..., Any], dict[str, Any]]) -> Any:
    fn, kwargs = job
    return fn(**kwargs)


def map_runs(fn: Callable[..., T], jobs: Sequence[dict[str, Any]], spec: Spec, desc: str) -> list[T]:
    """``[fn(**kw) for kw in jobs]``, in worker processes when ``spec.workers > 1``, with a progress bar."""
    bar = tqdm(total=len(jobs), desc=desc, unit="run", disable=not spec.progress, leave=False)
    try:
        if spec.workers <= 1 or len(jobs) <= 1:
            results = []
            for kw in jobs:
                results.append(fn(**kw))
                bar.update()
            return results
        ctx = multiprocessing.get_context("forkserver")  # no fork of a process whose torch threads run
        ctx.set_forkserver_preload([fn.__module__])  # import torch once in the server, not in every worker
        with ProcessPoolExecutor(spec.workers, mp_context=ctx, initializer=_init_worker) as pool:
            out = []
            for r in pool.map(_call, [(fn, kw) for kw in jobs]):
                out.append(r)
                bar.update()
            return out
    finally:
        bar.close()

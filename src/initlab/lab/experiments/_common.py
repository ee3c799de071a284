"""Helpers shared by the experiments: the dataset, accuracy cells, chance level."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from ..data import Dataset, load
from ..stats import Summary, summarize

CHANCE = 0.1  # mnist1d has 10 balanced classes


@lru_cache(maxsize=4)
def dataset(name: str = "mnist1d", seed: int = 42) -> Dataset:
    return load(name, seed=seed)


def pct(values: Sequence[float] | Summary, digits: int = 1) -> str:
    """Accuracies as ``"71.3 ± 2.1%"``."""
    s = values if isinstance(values, Summary) else summarize(values)
    return s.format(digits, percent=True)


def describe_acc(s: Summary) -> str:
    """``pct`` plus ``" (chance)"`` when the interval reaches chance level."""
    near_chance = s.mean < CHANCE + 0.03 or (s.n > 1 and s.low <= CHANCE)
    return pct(s) + (" (chance)" if near_chance else "")

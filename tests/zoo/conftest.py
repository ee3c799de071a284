"""Fixtures shared by the zoo's pattern tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture
def seeded_constructors() -> Iterator[None]:
    """torch's global generator seeded for the modules' constructors (whose draws the example pass reads),
    and restored afterwards: a test leaves no trace on the global RNG."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield

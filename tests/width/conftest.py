"""Fixtures for the μP tests (the models are in width_models.py)."""

import pytest
import torch

import initlab.width  # noqa: F401  (registers the "mup" and "spectral" init_model schemes)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.randn(64, 40, generator=g), torch.randint(0, 10, (64,), generator=g)


def pytest_configure(config):
    config.addinivalue_line("markers", "distributed: spawns torch.distributed (gloo, CPU) process groups")

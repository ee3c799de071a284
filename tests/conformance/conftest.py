"""Conformance against the real frameworks (jax, flax, keras 3, timm, transformers, torch).

Keras reads its backend once, at its first import: it is set here, before any test module imports it. A
framework that cannot be imported skips its tests with the import error as the reason; the suite itself is
installed by the ``conformance`` extra (``pip install -c constraints.txt '.[conformance]'``).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Keras' own layout tests (test_keras_suite.py) shard over 4 devices: 4 host CPU devices, as its conftest
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")

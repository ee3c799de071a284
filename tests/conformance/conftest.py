"""Conformance against the real frameworks (jax, flax, keras 3, timm, transformers, torch).

Keras reads its backend once, at its first import: it is set here, before any test module imports it. A
framework that cannot be imported skips its tests with the import error as the reason; the suite itself is
installed by the ``conformance`` extra (``pip install -c constraints.txt '.[conformance]'``).
"""

from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
XLA = (
    # Keras' own layout tests (test_keras_suite.py) shard over 4 devices: 4 host CPU devices, as its conftest
    "--xla_force_host_platform_device_count=4",
    # Half of the suite's time went into XLA compiling ~260 small programs (one per framework call with a new
    # shape), ~1 s each on a loaded 2-core machine: unoptimized compiles are ~4x faster. The values differ at
    # most in the last bit (normals 4e-8, measured), which laws compared at 5 SE cannot see.
    "--xla_backend_optimization_level=0",
    "--xla_llvm_disable_expensive_passes=true",
)
_flags = os.environ.get("XLA_FLAGS", "")
os.environ["XLA_FLAGS"] = " ".join([_flags, *(f for f in XLA if f.split("=")[0] not in _flags)]).strip()

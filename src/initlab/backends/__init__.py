"""Backends: fill arrays and tensors from the catalog's draws.

Owns sampling -- :mod:`.torch_backend` (``init_``, in place, CPU/CUDA/meta, any float dtype) and
:mod:`.numpy_backend` (``sample``). It may import the catalog, numpy, scipy and torch; nothing above it
(model-level, diagnostics, lab, cli). No function here touches a global RNG: each takes a seed or a generator.
"""

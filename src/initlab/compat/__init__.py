"""Drop-in replacements for other libraries' init APIs, built on the catalog and the backends.

Owns :mod:`initlab.compat.torch` (every function of ``torch.nn.init``, same signatures and semantics, plus
``generator=``). It may import the catalog, the backends and torch; nothing above them.
"""

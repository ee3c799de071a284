"""Framework tests: Keras runs on the jax backend (set before keras is first imported); the catalog's
independent expectations (tests/catalog/catalog_expect.py) are shared."""

import os
import sys
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "catalog"))

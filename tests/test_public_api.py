"""The public surface: one documented import path per name, every listed name real, nothing private listed.

Every initlab package's ``__all__`` (and the public modules that declare one) is collected. The packages
that import torch-only code are imported and checked object by object; the framework bridges (jax, flax,
keras), whose imports take seconds or need a configured backend, are read from their source: each listed
name must be bound at the top level of their ``__init__``.
"""

from __future__ import annotations

import ast
import importlib
import pathlib
from collections import defaultdict

import initlab

SRC = pathlib.Path(initlab.__file__).parent
IMPORTED = ["initlab", "initlab.catalog", "initlab.model", "initlab.methods", "initlab.diagnostics",
            "initlab.scale", "initlab.width", "initlab.lab", "initlab.frameworks", "initlab.errors",
            "initlab.distributed", "initlab.model.plan", "initlab.compat.torch", "initlab.cli.doctor"]
READ = ["initlab.jax", "initlab.flax", "initlab.keras"]


def _declares_all(path: pathlib.Path) -> bool:
    return any(isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                 for t in n.targets)
               for n in ast.parse(path.read_text()).body)


def test_every_module_declaring_all_is_checked():
    found = set()
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if any(p.startswith("_") and p != "__init__" for p in parts) or not _declares_all(path):
            continue
        found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    missing = sorted(found - set(IMPORTED) - set(READ))
    assert not missing, f"add to this test: {missing}"


def test_each_public_object_is_listed_once():
    where: dict[int, list[str]] = defaultdict(list)
    for name in IMPORTED:
        module = importlib.import_module(name)
        for attr in module.__all__:
            assert not attr.startswith("_"), f"{name}.__all__ lists the private name {attr}"
            assert hasattr(module, attr), f"{name}.__all__ lists {attr}, which it does not have"
            obj = getattr(module, attr)
            where[id(obj)].append(f"{name}.{attr}")
    twice = {paths[0].rsplit(".", 1)[1]: paths for paths in where.values() if len(paths) > 1}
    assert not twice, f"listed in more than one __all__ (keep one documented path): {twice}"


def test_top_level_names_are_importable_from_their_package_too():
    """Listed once, but still importable where they are defined (``from initlab.model import init_model``)."""
    from initlab.catalog import gain
    from initlab.diagnostics import diagnose
    from initlab.model import InitReport, init_model

    assert (initlab.gain, initlab.diagnose, initlab.init_model, initlab.InitReport) == (
        gain, diagnose, init_model, InitReport)


def test_no_private_module_leaks():
    """No ``__all__`` names a private module, and the top level exposes no ``_x`` submodule as public."""
    for name in IMPORTED:
        module = importlib.import_module(name)
        for attr in module.__all__:
            obj = getattr(module, attr)
            if isinstance(obj, type(initlab)):
                assert not obj.__name__.rsplit(".", 1)[-1].startswith("_"), f"{name}.{attr} is private"
    public = [n for n in dir(initlab) if not n.startswith("_")]
    leaked = [n for n in public if isinstance(getattr(initlab, n), type(initlab))
              and getattr(initlab, n).__name__.rsplit(".", 1)[-1].startswith("_")]
    assert not leaked


def test_framework_bridges_list_only_what_they_bind():
    for name in READ:
        path = SRC.joinpath(*name.split(".")[1:], "__init__.py")
        tree = ast.parse(path.read_text())
        bound: set[str] = set()
        listed: list[str] = []
        for node in tree.body:
            if isinstance(node, ast.ImportFrom | ast.Import):
                bound |= {a.asname or a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.FunctionDef | ast.ClassDef):
                bound.add(node.name)
            elif isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name) and t.id == "__all__":
                        listed = list(ast.literal_eval(node.value))
                    elif isinstance(t, ast.Name):
                        bound.add(t.id)
        assert listed, f"{name}: __all__ must be a literal list"
        assert not [n for n in listed if n.startswith("_")], name
        assert set(listed) <= bound, f"{name}.__all__ lists unbound names {set(listed) - bound}"

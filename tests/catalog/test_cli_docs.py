"""``initlab catalog`` / ``initlab describe``, the generated docs table, and the reproducible example 001."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from initlab.catalog import available
from initlab.cli.catalog import markdown_table
from initlab.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_catalog_json_lists_every_scheme(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == available()
    assert all(r["formula"] and r["origin"] and r["reference"] for r in rows)


def test_catalog_prefix_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["catalog", "--prefix", "keras:", "--json"]) == 0
    assert {r["name"] for r in json.loads(capsys.readouterr().out)} == set(available("keras:"))
    assert main(["catalog"]) == 0
    out = capsys.readouterr().out
    assert "he_normal" in out and "Glorot" in out
    assert main(["catalog", "--prefix", "nope:"]) == 2
    assert "prefixes: torch:" in capsys.readouterr().err


def test_describe_worked_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "kaiming_normal", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "he_normal" and "kaiming_normal" in info["aliases"]
    linear, conv = info["examples"].values()
    assert linear["std"] == pytest.approx(math.sqrt(2 / 128))
    assert conv["std"] == pytest.approx(math.sqrt(2 / (32 * 9)))
    assert main(["describe", "keras:glorot_uniform", "--json"]) == 0
    linear = next(iter(json.loads(capsys.readouterr().out)["examples"].values()))
    assert linear["bounds"][1] == pytest.approx(math.sqrt(6 / (256 + 128)))
    assert main(["describe", "dirac"]) == 0
    assert "not applicable" in capsys.readouterr().out  # dirac on a Linear weight


def test_describe_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["describe", "glorot_nromal"]) == 2
    assert "did you mean 'glorot_normal'" in capsys.readouterr().err


@pytest.mark.parametrize("doc", ["docs/catalog.md", "README.md"])
def test_docs_table_is_generated_from_the_registry(doc: str) -> None:
    text = (ROOT / doc).read_text()
    assert markdown_table() in text, f"{doc} is stale: regenerate the table with `initlab catalog --markdown`"


def _example_001():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("example_001", ROOT / "docs" / "examples" / "001_numpy.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_001_is_reproducible_and_shows_the_effect() -> None:
    ex = _example_001()
    state = np.random.get_state()
    a, b = ex.activation_stds("normal(0, 1)", depth=6), ex.activation_stds("normal(0, 1)", depth=6)
    assert a == b, "same seed must give the same numbers"
    assert ex.activation_stds("normal(0, 1)", depth=6, seed=2) != a
    assert all(np.array_equal(x, y) for x, y in zip(np.random.get_state(), state, strict=True))
    # std grows like sqrt(fan_in)^depth with N(0, 1): within 10% at every layer (256 x 512 samples)
    assert all(abs(s / 16 ** (layer + 1) - 1) < 0.1 for layer, s in enumerate(a))
    scaled = ex.activation_stds("lecun_normal", depth=6)
    assert all(abs(s - 1) < 0.1 for s in scaled)

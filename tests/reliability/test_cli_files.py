"""CLI files and texts (issue 14 items 10, 11, and item 4's import side effect): model files imported as
real modules, unwritable outputs refused in one line, --input-dtype for doctor, the umask, a self-consistent
doctor summary, lab reports that embed only their own figures."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from initlab.cli.main import main

MODEL = '''
from __future__ import annotations

import pickle
from dataclasses import dataclass

from torch import nn


@dataclass
class Config:
    width: int = 16
    depth: int = 3


def build() -> nn.Module:
    cfg = pickle.loads(pickle.dumps(Config()))  # the file's own class must pickle
    layers: list[nn.Module] = [nn.Linear(8, cfg.width), nn.Tanh()]
    for _ in range(cfg.depth):
        layers += [nn.Linear(cfg.width, cfg.width), nn.Tanh()]
    return nn.Sequential(*layers, nn.Linear(cfg.width, 2))


def tokens() -> nn.Module:
    return nn.Sequential(nn.Embedding(10, 8), nn.Flatten(), nn.Linear(32, 2))


def broken() -> nn.Module:
    raise RuntimeError("factory failed")
'''


@pytest.fixture
def model_file(tmp_path: Path) -> str:
    path = tmp_path / "my_model.py"
    path.write_text(textwrap.dedent(MODEL))
    return str(path)


def _one_line_error(capsys: pytest.CaptureFixture[str], rc: int, *needles: str) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_dataclass_and_pickle_in_model_file(model_file, capsys):  # type: ignore[no-untyped-def]
    assert main(["init", f"{model_file}:build", "--scheme", "he_normal", "--seed", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]


def test_factory_error_is_one_line(model_file, capsys):  # type: ignore[no-untyped-def]
    _one_line_error(capsys, main(["init", f"{model_file}:broken"]), "RuntimeError", "factory failed",
                    "my_model.py:")


@pytest.mark.parametrize("kind", ["directory", "missing folder"])
@pytest.mark.parametrize("command", ["init", "doctor"])
def test_unwritable_output(model_file, tmp_path, capsys, kind, command):  # type: ignore[no-untyped-def]
    out = str(tmp_path) if kind == "directory" else str(tmp_path / "nope" / "w.safetensors")
    argv = (["init", f"{model_file}:build", "--out", out] if command == "init"
            else ["doctor", f"{model_file}:build", "--input-shape", "4,8", "--html", out])
    _one_line_error(capsys, main(argv), "directory" if kind == "directory" else "does not exist")


def test_model_path_is_a_directory(tmp_path, capsys):  # type: ignore[no-untyped-def]
    _one_line_error(capsys, main(["init", f"{tmp_path}:build"]), "is a directory")


def test_out_respects_umask(model_file, tmp_path, capsys):  # type: ignore[no-untyped-def]
    out = tmp_path / "w.safetensors"
    old = os.umask(0o022)
    try:
        assert main(["init", f"{model_file}:build", "--scheme", "he_normal", "--seed", "0", "--out",
                     str(out)]) == 0
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644


def test_doctor_token_model(model_file, capsys):  # type: ignore[no-untyped-def]
    rc = main(["doctor", f"{model_file}:tokens", "--input-shape", "4,4", "--input-dtype", "long",
               "--vocab", "10"])
    assert rc == 0, capsys.readouterr().err


def test_doctor_summary_is_self_consistent(model_file, capsys):  # type: ignore[no-untyped-def]
    assert main(["doctor", f"{model_file}:build", "--input-shape", "32,8"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    m = re.search(r"input RMS ([\d.e+-]+) -> last layer ([\d.e+-]+) \(×([\d.e+-]+) overall, median ×", text)
    assert m, text
    a, b, overall = map(float, m.groups())
    assert overall == pytest.approx(b / a, rel=1.5e-2)  # three significant digits each


def test_import_diagnostics_keeps_python_random():  # type: ignore[no-untyped-def]
    code = ("import random; random.seed(5); import initlab.diagnostics, rich.console; "
            "print(random.random())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    import random

    assert float(out.stdout) == random.Random(5).random()


def _lab_run(folder: Path, figures: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps({
        "name": "symmetry", "question": "q", "setup": "s", "headers": ["a"], "rows": [["1"]],
        "answer": "x", "data": {}, "figures": figures}))


@pytest.mark.parametrize("figure", ["../secret.txt", "ABSOLUTE", "link.png"])
def test_lab_report_embeds_only_its_own_files(tmp_path, capsys, figure):  # type: ignore[no-untyped-def]
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    run = tmp_path / "runs" / "symmetry"
    run.mkdir(parents=True)
    if figure == "ABSOLUTE":
        figure = str(secret)
    if figure == "link.png":
        (run / "link.png").symlink_to(secret)
    _lab_run(run, [figure])
    out = tmp_path / "report.html"
    _one_line_error(capsys, main(["lab", "report", str(tmp_path / "runs"), "--out", str(out)]),
                    "outside its folder")
    assert not out.exists()


def test_lab_report_inlines_its_figures(tmp_path, capsys):  # type: ignore[no-untyped-def]
    run = tmp_path / "symmetry"
    _lab_run(run, ["fig.png"])
    (run / "fig.png").write_bytes(b"\x89PNG fake")
    assert main(["lab", "report", str(tmp_path)]) == 0
    assert "base64" in (tmp_path / "index.html").read_text()

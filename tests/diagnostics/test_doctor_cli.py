"""`initlab doctor`: the 100-layer linear example, side by side, with JSON and HTML written."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from initlab.cli.main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "deep_linear.py"


def test_doctor_deep_linear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_html = tmp_path / "d.json", tmp_path / "d.html"
    code = main(
        [
            "doctor",
            f"{EXAMPLE}:standard_normal",
            f"{EXAMPLE}:scaled",
            "--input-shape",
            "64,64",
            "--json",
            str(out_json),
            "--html",
            str(out_html),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "standard_normal" in printed and "scaled" in printed and "Forward signal explodes" in printed
    data = json.loads(out_json.read_text())
    exploding, scaled = data["diagnoses"]
    stds = [la["output"]["std"] for la in exploding["layers"]]
    # each layer multiplies the std by about sqrt(fan_in) = 8: log10 grows by ~0.9 per layer to ~1e90
    slope = (math.log10(stds[-1]) - math.log10(stds[0])) / (len(stds) - 1)
    assert 0.85 < slope < 0.95 and stds[-1] > 1e85
    scaled_stds = [la["output"]["std"] for la in scaled["layers"]]
    assert all(0.2 < s < 5 for s in scaled_stds)
    assert scaled["verdicts"] == []
    assert "<svg" in out_html.read_text()


def test_doctor_bad_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", f"{EXAMPLE}:nope", "--input-shape", "4,64"]) == 2
    assert "defines no 'nope'" in capsys.readouterr().err
    assert main(["doctor", "missing.py:f", "--input-shape", "4,64"]) == 2


FACTORY = '''
import torch
from torch import nn


def tanh_n01():
    g = torch.Generator().manual_seed(0)
    net = nn.Sequential(*[m for _ in range(12) for m in (nn.Linear(32, 32), nn.Tanh())], nn.Linear(32, 4))
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Linear):
                m.weight.normal_(0.0, 1.0, generator=g)
    return net
'''


def test_doctor_schemes_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    factory = tmp_path / "nets.py"
    factory.write_text(FACTORY)
    out = tmp_path / "d.json"
    code = main(["doctor", f"{factory}:tanh_n01", "--input-shape", "32,32", "--scheme", "auto",
                 "--scheme", "lecun_normal", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["labels"] == ["as built", "auto", "lecun_normal"]
    built, auto, _ = data["diagnoses"]
    assert "saturation" in {v["code"] for v in built["verdicts"]}
    assert auto["verdicts"] == []
    assert "as built" in capsys.readouterr().out


def test_doctor_rejects_bad_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["doctor", f"{EXAMPLE}:scaled", "--input-shape", "4,a"])
    assert "comma-separated integers" in capsys.readouterr().err
    assert main(["doctor", f"{EXAMPLE}:scaled", "--input-shape", "4,63"]) == 2  # wrong width: clear error
    assert "failed on a batch of shape [4, 63]" in capsys.readouterr().err

"""``initlab doctor FILE.py:FACTORY --widths ...``: SP and μP verdicts; user mistakes are one line."""

from initlab.cli.main import main

FACTORY = """
from torch import nn

def make(w):
    return nn.Sequential(nn.Linear(12, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(), nn.Linear(w, 4))

model = make(8)
"""


def test_doctor_widths(tmp_path, capsys):
    path = tmp_path / "f.py"
    path.write_text(FACTORY)
    assert main(["doctor", f"{path}:make", "--widths", "32,64,128", "--input-shape", "8,12",
                 "--plot", str(tmp_path / "cc.png")]) == 0
    out = capsys.readouterr().out
    assert "coord check (sp" in out and "coord check (mup" in out and "verdict (mup)" in out
    assert (tmp_path / "cc_mup.png").exists() and (tmp_path / "cc_sp.png").exists()


def test_doctor_widths_needs_a_function_of_width(tmp_path, capsys):
    path = tmp_path / "f.py"
    path.write_text(FACTORY)
    assert main(["doctor", f"{path}:model", "--widths", "32,64", "--input-shape", "8,12"]) == 2
    err = capsys.readouterr().err.strip()
    assert "function of the width" in err and len(err.splitlines()) == 1

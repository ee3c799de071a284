"""The HTML report, determinism (also across worker processes), the CLI and the demo."""

import base64
import json
import random

import numpy as np
import torch

from initlab.cli.main import main
from initlab.lab.report import find_runs, html_page
from initlab.lab.runner import run_experiment


def test_same_seed_same_numbers_and_global_rng_untouched(tmp_path):
    state = torch.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate()
    a = run_experiment("depth-signal", quick=True, seeds=1, progress=False)
    b = run_experiment("depth-signal", quick=True, seeds=1, progress=False)
    assert json.dumps(a.data, sort_keys=True) == json.dumps(b.data, sort_keys=True)
    assert torch.equal(torch.get_rng_state(), state[0]) and np.array_equal(np.random.get_state()[1], state[1])
    assert random.getstate() == state[2]


def test_cli_run_then_report_is_self_contained(tmp_path, capsys):
    assert (
        main(
            ["lab", "run", "depth-signal", "--quick", "--seeds", "1", "--out", str(tmp_path), "--no-progress"]
        )
        == 0
    )
    assert "measured answer" in capsys.readouterr().out
    folder = tmp_path / "depth-signal"
    saved = json.loads((folder / "results.json").read_text())
    assert saved["quick"] and saved["seeds"] == [0] and saved["figures"] == ["depth_signal_std.png"]
    assert (folder / "section.md").read_text().startswith("## depth-signal")
    assert main(["lab", "report", str(tmp_path)]) == 0
    page = (tmp_path / "index.html").read_text()
    png = base64.b64encode((folder / "depth_signal_std.png").read_bytes()).decode()
    assert png in page and "http" not in page.replace("http-equiv", "")
    assert find_runs(tmp_path) == [folder] and html_page([folder]).count("<h2") == 1


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["lab", "run", "nonsense", "--quick"]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert main(["lab", "report", str(tmp_path)]) == 2
    assert main(["lab", "list"]) == 0
    assert "glorot-vs-he" in capsys.readouterr().out


def test_demo_prints_answers_and_writes_the_page(tmp_path):
    from rich.console import Console

    from initlab.lab.demo import run_demo

    console = Console(record=True, width=100)
    run_demo(tmp_path, seeds=1, console=console, progress=False, experiments=("depth-signal",))
    text = console.export_text()
    assert "Q:" in text and "measured answer" in text and (tmp_path / "index.html").exists()


def test_worker_processes_give_the_same_numbers():
    serial = run_experiment("depth-signal", quick=True, seeds=2, progress=False, workers=1)
    parallel = run_experiment("depth-signal", quick=True, seeds=2, progress=False, workers=2)
    assert json.dumps(parallel.data, sort_keys=True) == json.dumps(serial.data, sort_keys=True)  # NaN-safe


def test_report_skips_results_that_are_not_lab_runs(tmp_path):
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.json").write_text('{"args": {}, "results": {}}')
    run_experiment("depth-signal", quick=True, seeds=1, out=tmp_path / "depth-signal", progress=False)
    assert find_runs(tmp_path) == [tmp_path / "depth-signal"]

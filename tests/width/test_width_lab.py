"""The width-transfer experiment, quick variant: every parametrization and model runs, the table, answer and
plot are written; initlab μP and the mup package (same parametrization) give the same losses."""

import importlib.util
import math

import pytest

from initlab.lab.experiments.width_transfer import analyse
from initlab.lab.runner import run_experiment


def test_quick_run(tmp_path):
    result = run_experiment("width-transfer", quick=True, seeds=1, out=tmp_path, progress=False)
    assert (tmp_path / "width_transfer.png").exists() and (tmp_path / "section.md").exists()
    assert len(result.rows) == 2 * len(result.data["params"])
    assert "grid step" in result.answer
    if importlib.util.find_spec("mup") is not None:
        for arch, by_param in result.data["loss"].items():
            for w, cells in by_param["mup package"].items():  # the peer may stop at a narrower width
                for lr, peer in cells.items():
                    assert by_param["initlab μP"][w][lr] == pytest.approx(peer, rel=1e-3), (arch, w, lr)


def test_analyse_finds_the_argmin_and_the_shift():
    loss = {"64": {"-3": [1.0], "-2": [0.5], "-1": [2.0]},
            "128": {"-3": [0.4], "-2": [0.45], "-1": [math.nan]}}
    s = analyse(loss, [64, 128], [-3, -2, -1])
    assert s["best_log2_lr"] == [-2, -3] and s["shift"] == -1
    assert s["loss_at_base_best"] == [0.5, 0.45] and s["wider_not_worse"]
    assert s["best_loss"] == [0.5, 0.4]

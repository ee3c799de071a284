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
    assert len(result.rows) == 3 * len(result.data["params"])
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


def test_analyse_reports_the_loss_se_and_the_paired_wider_step():
    # at the base width's best LR (-2) width 128 is worse than 64 by 0.01 on average, but the per-seed paired
    # differences (+0.04, -0.02, +0.01) have SE 0.0173: strictly "worse", not beyond 2 SE
    loss = {"64": {"-3": [1.0, 1.1, 1.2], "-2": [0.50, 0.60, 0.70]},
            "128": {"-3": [0.9, 0.9, 0.9], "-2": [0.54, 0.58, 0.71]}}
    s = analyse(loss, [64, 128], [-3, -2])
    assert s["best_log2_lr"] == [-2, -2]
    assert s["best_loss_se"][0] == pytest.approx(0.1 / 3**0.5)
    assert not s["wider_not_worse"] and s["wider_not_worse_2se"]
    assert s["worst_step_widths"] == "64->128"
    assert s["worst_step"] == pytest.approx(0.01) and s["worst_step_se"] == pytest.approx(0.03 / 3**0.5)
    loss["128"]["-2"] = [0.60, 0.70, 0.80]  # +0.1 on every seed: worse beyond any noise
    s = analyse(loss, [64, 128], [-3, -2])
    assert not s["wider_not_worse"] and not s["wider_not_worse_2se"]

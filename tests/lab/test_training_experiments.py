"""glorot-vs-he, normal-vs-uniform, batchnorm: the property each one demonstrates, on its quick run."""

import pytest

from initlab.lab.experiments._common import CHANCE


def test_glorot_stalls_and_he_trains_a_30_layer_relu_net(quick_run):
    result, _ = quick_run("glorot-vs-he", seeds=1)
    runs = result.data["runs"]["relu"]
    glorot = [r["test_acc"][-1] for r in runs["Glorot"]["30"]]
    he = [r["test_acc"][-1] for r in runs["He"]["30"]]
    assert max(glorot) < CHANCE + 0.03 and min(he) > CHANCE + 0.1
    # the signal ordering that explains it: Glorot's logits are 2^-15 of He's after 30 ReLU layers
    g_std = max(r["logit_std_init"] for r in runs["Glorot"]["30"])
    h_std = min(r["logit_std_init"] for r in runs["He"]["30"])
    assert g_std < 1e-3 * h_std
    assert "He et al." in result.answer


def test_normal_vs_uniform_reports_paired_differences(quick_run):
    result, _ = quick_run("normal-vs-uniform")
    for key, entry in result.data["summary"].items():
        d = entry["difference"]["difference"]
        assert d["mean"] == pytest.approx(entry["normal"]["mean"] - entry["uniform"]["mean"]), key
        assert d["ci95"] > 0 and 0 <= entry["difference"]["p_value"] <= 1
    assert set(result.data["summary"]) == {"Glorot", "Glorot + BatchNorm", "He", "He + BatchNorm"}


def test_batchnorm_rescues_bad_scales(quick_run):
    result, _ = quick_run("batchnorm")
    s = result.data["summary"]
    plain, bn = s["without BatchNorm"], s["with BatchNorm"]
    assert plain["1.0"]["mean"] > plain["0.1"]["mean"] + 0.1  # without BN the scale matters
    assert plain["10.0"]["mean"] < CHANCE + 0.03  # x10 at depth 6: explodes
    assert bn["0.1"]["mean"] > plain["0.1"]["mean"] + 0.1  # BN rescues the small scale

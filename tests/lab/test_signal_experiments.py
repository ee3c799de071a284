"""symmetry, depth-signal, truncation: the property each one demonstrates, checked on its quick run."""

import json
import math

from initlab.lab.experiments.symmetry import distinct_units
from initlab.lab.train import mlp


def test_symmetry_constant_init_never_breaks_and_random_does(quick_run):
    result, out = quick_run("symmetry")
    width = result.data["config"]["width"]
    runs = result.data["runs"]
    for label in ("all-zero", "all-0.5"):
        for r in runs[label]:
            assert r["before"] == [1, 1] and r["after"] == [1, 1], label
    for r in runs["random (Glorot normal)"]:
        assert r["before"] == [width, width] and r["after"] == [width, width]
    random_acc = min(r["test_acc"][-1] for r in runs["random (Glorot normal)"])
    assert random_acc > max(r["test_acc"][-1] for r in runs["all-zero"])
    assert "1 distinct unit per layer" in result.answer
    assert json.loads((out / "results.json").read_text())["name"] == "symmetry"
    assert (out / "symmetry_curves.png").stat().st_size > 1000


def test_distinct_units_counts_groups():
    layer = mlp(4, 6, 1, 2)[0]
    layer.weight.data.zero_()
    layer.bias.data.zero_()
    layer.weight.data[:3] = 1.0
    assert distinct_units(layer) == 2
    layer.weight.data[0, 0] += 1e-3
    assert distinct_units(layer) == 3


def test_depth_signal_explodes_with_unit_variance_and_stays_order_one_when_scaled(quick_run):
    result, _ = quick_run("depth-signal")
    s = result.data["summary"]
    width = result.data["config"]["width"]

    def final(key):
        return s[key]["log10_std_final"]["mean"]

    # 100 linear layers of N(0,1): std multiplies by about sqrt(width) per layer: 1e90 at width 64
    assert final("linear/N(0,1)") > 85 and math.isfinite(final("linear/N(0,1)"))
    assert abs(final("linear/N(0,1)") - s["linear/N(0,1)"]["predicted_rms_log10"]) < 5
    assert 0.5 * math.log10(width) * 99 > 85
    assert abs(final("linear/N(0,1/fan_in)")) < 1.5  # order 1, not 1e±10
    assert abs(final("relu/He")) < 2 and final("relu/Glorot") < -10  # ReLU halves: Glorot vanishes
    assert s["tanh/N(0,1)"]["tanh_saturated"]["mean"] > 0.5  # bounded, but saturated
    assert s["tanh/N(0,1/fan_in)"]["tanh_saturated"]["mean"] < 0.05
    assert "1e" in result.answer


def test_truncation_removes_the_tails_at_equal_variance(quick_run):
    result, _ = quick_run("truncation")
    n, t = result.data["summary"]["normal"], result.data["summary"]["truncated normal"]
    # N(0,1) puts 2.33% beyond 2.27σ; the weights per seed number ~12k, so 5 SE ≈ 0.7 points
    assert abs(n["beyond_cut"]["mean"] - 0.0233) < 0.007
    assert t["beyond_cut"]["mean"] < 0.002 and t["max_abs_sd"]["mean"] < 2.4 < n["max_abs_sd"]["mean"]
    diff = result.data["summary"]["accuracy_difference"]
    assert 0 <= diff["p_value"] <= 1 and "paired t-test" in result.answer

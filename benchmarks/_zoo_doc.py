"""Writes docs/zoo.md: the summary against issue 13's targets, then the per-model table of benchmarks/zoo.py.

    python benchmarks/_zoo_doc.py benchmarks/results/zoo_baseline.json "Baseline"
    python benchmarks/_zoo_doc.py --compare benchmarks/results/zoo_baseline.json benchmarks/results/zoo.json \
        [BASE_LABEL AFTER_LABEL]
"""

from __future__ import annotations

import collections
import json
import sys

PLANNED = 234  # 38 HF + 86 torchvision + 110 timm


def summary_table(path: str, label: str) -> str:
    with open(path) as f:
        d = json.load(f)
    s, models = d["summary"], d["models"]
    by_source = collections.Counter(r.get("source", "") for r in models)
    per = ", ".join(f"{n} {k}" for k, n in sorted(by_source.items()))
    unpredicted = s["layers_measured"] - s["layers_predicted"]
    return "\n".join([
        f"{label}: {s['models']} of the {PLANNED} planned models ({per}); {s['built']} built and measured, "
        f"{s['timeouts']} over the per-model time limit, {s['harness_errors']} harness errors.", "",
        "| target (issue 13) | result |", "|---|---|",
        f"| finite output after auto: 100% | {s['finite_auto']}/{s['built']} |",
        "| every weight layer's E[y²] within 3× of the plan and in [1e-2, 1e2] | "
        f"{s['moments_pass']}/{s['built']} models; layers: {s['layers_within_3x']}/{s['layers_predicted']} "
        "predicted ones within 3×, "
        f"{s['layers_in_range']}/{s['layers_measured']} in range, {unpredicted} without a prediction |",
        f"| LM step-0 loss within 15% of ln V | {s['lm_within_15pct']}/{s['lm_models']} |",
        f"| LSUV succeeds, or names a reason per skipped layer: 100% | {s['lsuv_ok']}/{s['built']} run; "
        f"{s['lsuv_ok_no_silent']}/{s['built']} with every weight layer calibrated or named with a reason |",
        f"| auto's first call ≤ 1.5× construction (median), ≤ 4× (worst) | median "
        f"{s['auto_ratio_median']:.2f}×, worst {s['auto_ratio_max']:.1f}× |",
        f"| diagnose ≤ 3× one forward+backward (median) | median {s['diagnose_ratio_median']:.1f}×, worst "
        f"{s['diagnose_ratio_max']:.1f}× |", ""])




def compare(base_path: str, after_path: str,
            labels: tuple[str, str] = ("original code", "this branch")) -> str:
    """The targets on the models both runs measured: the original code against this branch."""
    import zoo

    runs = []
    for path in (base_path, after_path):
        with open(path) as f:
            runs.append({r["name"]: r for r in json.load(f)["models"]})
    common = sorted(set(runs[0]) & set(runs[1]))
    s0, s1 = (zoo.summary([run[n] for n in common]) for run in runs)
    rows = [("finite output after auto", "finite_auto"),
            ("finite output after he_normal", "finite_he_normal"),
            ("models with every weight layer's E[y²] within 3× and in range", "moments_pass"),
            ("LM step-0 loss within 15% of ln V", "lm_within_15pct"), ("LSUV runs", "lsuv_ok"),
            ("LSUV: every weight layer calibrated or named with a reason", "lsuv_ok_no_silent")]
    lines = [f"On the {len(common)} models both runs measured:", "",
             f"| target | {labels[0]} | {labels[1]} |", "|---|---|---|"]
    ran = {k: any(k in r and r[k].get("status") not in (None, "–") for run in runs for r in run.values())
           for k in ("lsuv", "diagnose")}
    for label, key in rows:
        of = "lm_models" if key == "lm_within_15pct" else "built"
        if key.startswith("lsuv") and not ran["lsuv"]:
            lines.append(f"| {label} | not run | not run |")
            continue
        lines.append(f"| {label} | {s0[key]}/{s0[of]} | {s1[key]}/{s1[of]} |")
    for label, key, of in (("weight layers within 3× of the plan (of those measured)", "layers_within_3x",
                            "layers_measured"),
                           ("weight layers with a prediction", "layers_predicted", "layers_measured"),
                           ("weight layers with E[y²] in [1e-2, 1e2]", "layers_in_range", "layers_measured")):
        lines.append(f"| {label} | {s0[key]}/{s0[of]} | {s1[key]}/{s1[of]} |")
    lines.append(f"| over the time limit | {s0['timeouts']} | {s1['timeouts']} |")
    for label, key in (("auto first call / construction, median", "auto_ratio_median"),
                       ("auto first call / construction, worst", "auto_ratio_max"),
                       ("diagnose / forward+backward, median", "diagnose_ratio_median"),
                       ("diagnose / forward+backward, worst", "diagnose_ratio_max")):
        lines.append(f"| {label} | {_times(s0[key])} | {_times(s1[key])} |")
    return "\n".join(lines) + "\n"


def _times(ratio: float | None) -> str:
    return "not run" if ratio is None else f"{ratio:.2f}×"


if __name__ == "__main__":
    if sys.argv[1] == "--compare":
        names = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else ("original code", "this branch")
        print(compare(sys.argv[2], sys.argv[3], names))
    else:
        print(summary_table(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "Models"))

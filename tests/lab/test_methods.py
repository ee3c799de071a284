"""methods: what exists runs, what is missing is reported; plain inits diverge, depth-aware ones train."""

from initlab.lab.experiments._common import CHANCE
from initlab.lab.experiments.methods import METHODS, availability


def test_methods_runs_what_exists_and_reports_the_rest(quick_run):
    result, _ = quick_run("methods", seeds=1)
    available = availability()
    assert set(result.data["runs"]) == {m for m in METHODS if available[m] is None}
    for m, reason in available.items():
        if reason:
            assert result.data["summary"][m] == {"unavailable": reason}
            assert m in result.answer.split("Not run")[1]
    runs = result.data["runs"]
    assert max(r["test_acc"][-1] for r in runs["zero"]) < CHANCE + 0.03  # zero never learns
    # 16 residual blocks without normalization: plain He/Glorot blow the residual sum up and diverge ...
    for m in ("Kaiming", "Xavier"):
        assert all(r["diverged"] and r["logit_std_init"] > 5 for r in runs[m]), m
    # ... while the depth-aware methods keep the logits near unit scale (Fixup: exactly 0) and train
    for m in ("Fixup", "LSUV", "initlab auto", "transfer"):
        if m in runs:
            assert all(not r["diverged"] and r["logit_std_init"] < 2 for r in runs[m]), m
            assert min(r["test_acc"][-1] for r in runs[m]) > CHANCE + 0.1, m


def test_a_missing_api_is_reported_not_faked(monkeypatch):
    from initlab.lab.experiments import methods
    from initlab.lab.runner import run_experiment

    monkeypatch.setattr(methods, "METHODS", {"zero": "all zero", "Fixup": "initlab.fixup(model)"})
    monkeypatch.setattr(methods, "API", {"Fixup": "no_such_api"})
    result = run_experiment("methods", quick=True, seeds=1, progress=False)
    assert set(result.data["runs"]) == {"zero"}
    assert "no_such_api" in result.data["summary"]["Fixup"]["unavailable"]
    assert ["Fixup", "unavailable", "–", "–", "–"] in result.rows
    assert "Not run (API missing in this installation): Fixup" in result.answer

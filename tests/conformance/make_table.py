"""Write the "fidelity" table of docs/catalog.md from a conformance run.

    PYTHONPATH=src python -m tests.conformance.make_table   # from the repository root (-n: print only)

Runs every profile x module case of test_profiles.py and every dialect case of test_dialects.py and replaces
the text between the FIDELITY markers of docs/catalog.md with: per profile and module, "matches" or "differs"
and the largest deviation of a parameter's std from the framework's (initlab / real), and per dialect family
the number of names that match. Frameworks that cannot be imported are listed as not run."""

from __future__ import annotations

import os
import pathlib
import sys

import numpy as np

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import tests.conformance.conftest  # noqa: F401  (the suite's XLA flags)

ROOT = pathlib.Path(__file__).resolve().parents[2]
BEGIN, END = "<!-- FIDELITY:BEGIN -->", "<!-- FIDELITY:END -->"


def _std_ratio(case: object) -> float:
    from tests.conformance.test_profiles import _value, ours

    ref, mine = case.ref(1000), ours(case, 2000)  # type: ignore[attr-defined]
    worst = 1.0
    for key, theirs in ref.items():
        t, m = np.std(theirs), np.std(np.asarray(_value(mine, key)))
        if t > 0 and np.isfinite(m) and abs(m / t - 1) > abs(worst - 1):
            worst = float(m / t)
        elif t == 0 and (m != 0 or not np.allclose(_value(mine, key), np.mean(theirs))):
            worst = float("nan")
    return worst


def profile_rows() -> list[str]:
    import pytest
    from tests.conformance.modules import CASES
    from tests.conformance.test_profiles import compare

    rows = ["| profile | module | result | worst std ratio (initlab / real) |", "|---|---|---|---|"]
    for case in CASES:
        try:
            found = {k: v for k, v in compare(case, reps=3).items() if v}
            ratio = _std_ratio(case)
        except pytest.skip.Exception as exc:
            rows.append(f"| `{case.profile}` | {case.name} | not run | {exc.msg} |")
            continue
        result = "matches" if not found else "differs: " + "; ".join(f"{k}: {v}" for k, v in found.items())
        rows.append(f"| `{case.profile}` | {case.name} | {result} | {ratio:.3f} |")
    return rows


def dialect_rows() -> list[str]:
    import pytest
    from tests.conformance.test_dialects import CASES, run_case

    counts: dict[str, list[int]] = {}
    for case in CASES:
        c = counts.setdefault(case.family, [0, 0, 0])
        try:
            c[0 if not any(run_case(case).values()) else 1] += 1
        except pytest.skip.Exception:
            c[2] += 1
    rows = ["| dialect | cases | match | differ | not run |", "|---|---|---|---|---|"]
    rows += [f"| `{f}:` | {sum(c)} | {c[0]} | {c[1]} | {c[2]} |" for f, c in counts.items()]
    return [*rows, complex_row()]


def complex_row() -> str:
    import pytest
    from tests.conformance.test_complex import CASES, test_complex_draw_matches_jax

    c = [0, 0, 0]
    for case in CASES:
        for path in ("jax", "torch"):
            try:
                test_complex_draw_matches_jax(case, path)
                c[0] += 1
            except pytest.skip.Exception:
                c[2] += 1
            except AssertionError:
                c[1] += 1
    return f"| `jax:` complex64 (JAX callback and torch paths) | {sum(c)} | {c[0]} | {c[1]} | {c[2]} |"


def main(argv: list[str]) -> int:
    text = "\n".join([BEGIN, "", *dialect_rows(), "", *profile_rows(), "", END])
    if "-n" in argv:
        print(text)
        return 0
    doc = ROOT / "docs" / "catalog.md"
    current = doc.read_text()
    start, end = current.index(BEGIN), current.index(END) + len(END)
    doc.write_text(current[:start] + text + current[end:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

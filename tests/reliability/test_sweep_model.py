"""The bad-input sweep (see test_sweep.py) over the model-level public functions: init_model, lsuv, fixup,
diagnose, materialize, init_sharded and the μP helpers. Each bad call raises an initlab error (or a
ValueError/TypeError raised by initlab's own code) with a one-line message, leaves the model bit-identical
and leaves torch's, numpy's and Python's global RNGs where they were."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from test_sweep import NAN, X
from test_sweep import test_api_bad_input as _check_bad_call
from torch import nn

import initlab
from initlab.distributed import init_sharded

Case = tuple[str, Callable[[nn.Module], Any], str]


def _init_model_cases() -> list[Case]:
    cases: list[Case] = []
    for s in ("nope", "normal(0, 1e300)", "he_normal(gain=nan)", 5, "", "keras:he_normal(_s=100.0)"):
        cases.append((f"init_model scheme={s!r}", lambda m, s=s: initlab.init_model(m, s, seed=0), "mlp"))
    for k, kw in {"rules=5": {"rules": 5}, "rules unmatched": {"rules": {"nothing.*": "zeros"}},
                  "rules bad scheme": {"rules": {"0.*": "nope"}}, "example_input=str": {"example_input": "x"},
                  "example_input nan": {"example_input": torch.full((4, 4), NAN)},
                  "example_input wrong": {"example_input": torch.randn(4, 5)},
                  "option unknown": {"bogus": 1}, "q_saturating=-1": {"q_saturating": -1.0},
                  "graph=str": {"graph": "str"}, "seed=-1": {"seed": -1},
                  "generator=5": {"generator": 5}}.items():
        cases.append((f"init_model {k}", lambda m, kw=kw: initlab.init_model(m, "auto", **kw), "mlp"))
    for kind in ("no-params",):
        cases.append((f"init_model model={kind}", lambda m: initlab.init_model(m, "auto", seed=0), kind))
    cases.append(("init_model model=str", lambda m: initlab.init_model("model"), "mlp"))
    for s in ("fixup", "t_fixup", "deepnorm", "gpt2"):  # no residual branch / no attention in an MLP
        cases.append((f"init_model {s} on an MLP", lambda m, s=s: initlab.init_model(m, s, seed=0), "mlp"))
    cases.append(("init_model mup without base", lambda m: initlab.init_model(m, "mup", seed=0), "mlp"))
    return cases


def _other_cases() -> list[Case]:
    cases: list[Case] = []
    for k, b in {"nan": torch.full((16, 4), NAN), "wrong-shape": torch.randn(16, 5), "str": "x",
                 "int": torch.randint(0, 3, (16, 4))}.items():
        cases.append((f"lsuv batch={k}", lambda m, b=b: initlab.lsuv(m, b, seed=0), "mlp"))
        cases.append((f"diagnose batch={k}", lambda m, b=b: initlab.diagnose(m, b), "mlp"))
        cases.append((f"fixup example_input={k}", lambda m, b=b: initlab.fixup(m, b), "mlp"))
    for k, kw in {"tol=-1": {"tol": -1.0}, "max_iter=0": {"max_iter": 0}, "seed=1.5": {"seed": 1.5}}.items():
        cases.append((f"lsuv {k}", lambda m, kw=kw: initlab.lsuv(m, X, **kw), "mlp"))
    cases.append(("diagnose loss_fn=5", lambda m: initlab.diagnose(m, X, loss_fn=5), "mlp"))
    cases.append(("diagnose model=str", lambda m: initlab.diagnose("model", X), "mlp"))
    for k, kw in {"device=bogus": {"seed": 0, "device": "bogus"}, "seed=-1": {"seed": -1}}.items():
        cases.append((f"materialize {k}", lambda m, kw=kw: initlab.materialize(m, **kw), "mlp"))
        cases.append((f"init_sharded {k}", lambda m, kw=kw: init_sharded(m, "auto", **kw), "mlp"))
    cases.append(("materialize not on meta", lambda m: initlab.materialize(m, seed=0), "mlp"))
    for k, kw in {"optimizer=lion": {"optimizer": "lion"}, "lr=-1": {"lr": -1.0}}.items():
        cases.append((f"mup_param_groups {k}",
                      lambda m, kw=kw: initlab.mup_param_groups(m, **{"lr": 1e-3, "base": m, **kw}), "mlp"))
    cases.append(("coord_check one width", lambda m: initlab.coord_check(lambda w: m, [8], X), "mlp"))
    return cases


CASES = _init_model_cases() + _other_cases()


@pytest.mark.parametrize("label, call, kind", CASES, ids=[c[0] for c in CASES])
def test_model_level_bad_input(label: str, call: Callable[[nn.Module], Any], kind: str) -> None:
    _check_bad_call(label, call, kind)

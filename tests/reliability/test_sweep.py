"""Bad-input sweep (issue 14, "must show"): the public functions of the catalog, the backends, the data-driven
and transfer methods, the lab report and every CLI subcommand, each fed wrong types, unknown and malformed
names, absurd/NaN/inf parameters, wrong shapes and dtypes, NaN and empty inputs, models without parameters or
with a raising forward. Every case must end in a clear error raised by initlab itself (a ValueError/TypeError
subclass with a one-line message; the CLI: exit status 2 and one line, no traceback), leave the model bit
for bit as it was and leave torch's, numpy's and Python's global random state untouched.

Counts are recorded in docs/reliability.md."""

from __future__ import annotations

import json
import random
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from initlab.backends.counter.fill import counter_fill_
from initlab.backends.numpy_backend import sample
from initlab.backends.torch_backend import init_
from initlab.catalog import draws as d
from initlab.catalog import get
from initlab.cli.main import main
from initlab.errors import InitlabError
from initlab.lab.report import figure_path, find_runs
from initlab.methods.datadep import data_dependent_init, weight_norm_init
from initlab.methods.transfer import transfer

NAN, INF = float("nan"), float("inf")


class Raising(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("forward is broken")


def mlp() -> nn.Module:
    g = torch.Generator().manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return m


MODELS: dict[str, Callable[[], nn.Module]] = {"mlp": mlp, "no-params": lambda: nn.Sequential(nn.ReLU()),
                                              "raising": Raising}
X = torch.randn(16, 4, generator=torch.Generator().manual_seed(1))

BAD_SCHEMES: list[Any] = [
    "nope", "", "   ", "he_normal(", "he_normal)", "normal(0, std=)", "normal(x)", "normal(0, 1, 2)",
    "normal(mean=0, mean=1)", "normal(0)(1)", "normal(**{'std': 1})", "normal(__import__('os'))",
    "normal(0, -1)", "normal(0, nan)", "normal(0, float('inf'))", "normal(0, 1e400)",
    "uniform(1, 0)", "truncated_normal(0, 1, 2, -2)",
    "truncated_normal(0, 1, 50, 60)", "constant('a')", "orthogonal(flatten='x')",
    "variance_scaling(mode='fan_x')", "variance_scaling(scale=-1)",
    "variance_scaling(distribution='cauchy')", "keras:he_normal(_s=100.0)", "jax:lecun_normal(_m='fan_out')",
    "keras:he_normal('fan_out')", "sparse(2.0)", "sparse(0.5, -1)", "gpt2_residual(0)", "normal(0, [1])",
    "normal(0, 1" + "0" * 400 + ")", None, 5, 1.5, b"normal", ["normal"], {"name": "nope"}, {"params": {}},
    {"name": "normal", "params": {"std": -1.0}}, {"name": 5},
]

# Valid schemes whose values float32 cannot hold (float64 can): errors when drawn into float32.
TOO_LARGE = ["normal(0, 1e300)", "uniform(0, 1e39)", "uniform(-3e38, 3e38)", "constant(1e39)",
             "orthogonal(gain=1e39)", "truncated_normal(0, 1e38, -5, 5)"]

# ------------------------------------------------------------------------------------------- API cases
Case = tuple[str, Callable[[nn.Module], Any], str]  # (label, call on a fresh model, model kind)


def _api_cases() -> list[Case]:
    cases: list[Case] = []
    for s in BAD_SCHEMES:
        cases.append((f"get[{s!r:.40}]", lambda m, s=s: get(s).resolve((8, 4)), "mlp"))
        cases.append((f"init_[{s!r:.40}]", lambda m, s=s: init_(m[0].weight, s, seed=0), "mlp"))
        cases.append((f"sample[{s!r:.40}]", lambda m, s=s: sample(s, (8, 4), 0), "mlp"))
    for s in TOO_LARGE:
        cases.append((f"init_[{s}]", lambda m, s=s: init_(m[0].weight, s, seed=0), "mlp"))
        cases.append((f"sample[{s}]", lambda m, s=s: sample(s, (8, 4), 0), "mlp"))
        cases.append((f"counter_fill_[{s}]", lambda m, s=s: counter_fill_(
            m[0].weight.detach(), get(s).resolve((8, 4)), seed=0, name="w"), "mlp"))
    tensors = {"int64": torch.zeros(4, 4, dtype=torch.int64), "bool": torch.zeros(4, 4, dtype=torch.bool),
               "list": [[0.0] * 4] * 4, "ndarray": np.zeros((4, 4)), "None": None}
    for k, t in tensors.items():
        cases.append((f"init_ tensor={k}", lambda m, t=t: init_(t, "he_normal", seed=0), "mlp"))
        cases.append((f"counter_fill_ tensor={k}",
                      lambda m, t=t: counter_fill_(t, d.Normal(0.0, 1.0), seed=0, name="w"), "mlp"))
    shapes = {"1-D orthogonal": ((4,), "orthogonal"), "3-D identity": ((2, 2, 2), "identity"),
              "2-D dirac": ((4, 4), "dirac"), "1-D he": ((4,), "he_normal"),
              "groups": ((3, 4, 3), "dirac(2)")}
    for k, (shape, s) in shapes.items():
        cases.append((f"init_ shape {k}", lambda m, sh=shape, s=s: init_(torch.empty(sh), s, seed=0), "mlp"))
    kwargs: dict[str, dict[str, Any]] = {
        "seed=-1": {"seed": -1}, "seed=1.5": {"seed": 1.5}, "seed=2**64": {"seed": 2**64},
        "seed=nan": {"seed": NAN}, "seed='0'": {"seed": "0"}, "seed=True": {"seed": True},
        "generator=5": {"generator": 5}, "generator=np": {"generator": np.random.default_rng(0)},
        "generator='mt'": {"generator": "mt"}, "seed+generator": {"seed": 0, "generator": torch.Generator()},
        "layout=bogus": {"layout": "bogus"}, "groups=0": {"groups": 0},
        "activation=nope": {"activation": "nope"}, "activation=5": {"activation": 5},
    }
    for k, kw in kwargs.items():
        cases.append((f"init_ {k}", lambda m, kw=kw: init_(m[0].weight, "he_normal", **kw), "mlp"))
    for k, kw in {"dtype=int": {"dtype": np.int32}, "shape=-1": {"shape": (-1, 4)},
                  "shape=str": {"shape": ("a", 4)}, "rng=1.5": {"rng": 1.5}, "rng=-1": {"rng": -1},
                  "rng=str": {"rng": "x"}}.items():
        base: dict[str, Any] = {"shape": (4, 4), "rng": 0}
        cases.append((f"sample {k}", lambda m, kw={**base, **kw}: sample("he_normal", **kw), "mlp"))
    for k, draw in {"inf std": d.Normal(0.0, INF), "nan mean": d.Normal(NAN, 1.0),
                    "reversed": d.Uniform(1.0, 0.0), "huge": d.Uniform(0.0, 1e39)}.items():
        cases.append((f"counter_fill_ {k}",
                      lambda m, dr=draw: counter_fill_(m[0].weight.detach(), dr, seed=0, name="w"), "mlp"))
    for seed in (-1, 1.5, 2**64, "0"):
        cases.append((f"counter_fill_ seed={seed!r}",
                      lambda m, s=seed: counter_fill_(torch.empty(2, 2), d.Normal(0.0, 1.0), seed=s,
                                                      name="w"), "mlp"))
    return cases + _method_cases()


def _method_cases() -> list[Case]:
    cases: list[Case] = []
    batches = {"nan": torch.full((16, 4), NAN), "empty": torch.empty(0, 4), "wrong-shape": torch.randn(16, 5),
               "int": torch.randint(0, 3, (16, 4)), "one-sample": torch.randn(1, 4), "str": "x", "None": None,
               "constant": torch.ones(16, 4), "inf": torch.full((16, 4), INF)}
    for fn in (data_dependent_init, weight_norm_init):
        for k, b in batches.items():
            cases.append((f"{fn.__name__} batch={k}", lambda m, fn=fn, b=b: fn(m, b), "mlp"))
        for kind in ("no-params", "raising"):
            cases.append((f"{fn.__name__} model={kind}", lambda m, fn=fn: fn(m, X), kind))
        cases.append((f"{fn.__name__} model=str", lambda m, fn=fn: fn("model", X), "mlp"))
        for k, kw in {"seed=-1": {"seed": -1}, "generator=5": {"generator": 5},
                      "seed+generator": {"seed": 0, "generator": torch.Generator()}}.items():
            cases.append((f"{fn.__name__} {k}", lambda m, fn=fn, kw=kw: fn(m, X, **kw), "mlp"))
    for k, kw in {"layers=['nope']": {"layers": ["nope"]}, "layers=[5]": {"layers": [5]},
                  "layers=[]": {"layers": []}, "pre_init=nope": {"pre_init": "nope"},
                  "pre_init=inf": {"pre_init": "normal(0, 1e300)"}}.items():
        cases.append((f"data_dependent_init {k}", lambda m, kw=kw: data_dependent_init(m, X, **kw), "mlp"))
    for v in (-1.0, 0.0, NAN, INF, "a"):
        cases.append((f"weight_norm_init v_std={v!r}", lambda m, v=v: weight_norm_init(m, X, v_std=v), "mlp"))
    sources: dict[str, Any] = {"int": 5, "None": None, "list": [1], "missing": "/nonexistent/w.pt",
                               "empty-dict": {}, "no-match": {"zzz": torch.ones(2)}}
    for k, src in sources.items():
        cases.append((f"transfer source={k}", lambda m, s=src: transfer(m, s), "mlp"))
    good = {"0.weight": torch.ones(8, 4)}
    for k, kw in {"reinit=nope": {"reinit": "nope"}, "reinit=inf": {"reinit": "normal(0, 1e300)"},
                  "reinit=5": {"reinit": 5}, "strict": {"strict": True},
                  "key_map=bad-regex": {"key_map": {"(": "x"}},
                  "key_map=5": {"key_map": 5}, "seed=-1": {"seed": -1}, "generator=5": {"generator": 5},
                  "seed+generator": {"seed": 0, "generator": torch.Generator()}}.items():
        cases.append((f"transfer {k}", lambda m, kw=kw: transfer(m, good, **kw), "mlp"))
    for k in ("no-params", "raising"):
        cases.append((f"transfer model={k}", lambda m: transfer(m, good), k))
    cases.append(("find_runs missing", lambda m: find_runs(Path("/nonexistent/runs")), "mlp"))
    for fig in ("../x.png", "/etc/passwd", "", 5, None):
        cases.append((f"figure_path {fig!r}", lambda m, f=fig: figure_path(Path("/tmp"), f), "mlp"))
    return cases


API_CASES = _api_cases()


def _rng_state() -> tuple[Any, ...]:
    np_state = np.random.get_state()
    return torch.get_rng_state(), np_state[1].copy(), np_state[2:], random.getstate()


def _same_rng(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    return bool(torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2] and a[3] == b[3])


def _raised_by_initlab(exc: BaseException) -> bool:
    """Raised deliberately by initlab's own code (or a subclass of its errors), not by torch/numpy/Python."""
    if isinstance(exc, InitlabError):
        return True
    frames = traceback.extract_tb(exc.__traceback__)
    return bool(frames) and "/initlab/" in frames[-1].filename.replace("\\", "/")


@pytest.mark.parametrize("label, call, kind", API_CASES, ids=[c[0] for c in API_CASES])
def test_api_bad_input(label: str, call: Callable[[nn.Module], Any], kind: str) -> None:
    model = MODELS[kind]()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = _rng_state()
    with pytest.raises(Exception) as info:
        call(model)
    exc = info.value
    assert isinstance(exc, (ValueError, TypeError, OSError)), f"{type(exc).__name__}: {exc}"
    where = traceback.extract_tb(exc.__traceback__)[-1]
    assert _raised_by_initlab(exc), f"raw {type(exc).__name__} from {where}"
    message = str(exc).strip()
    assert message and len(message) < 2000, message
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the model changed"
    assert _same_rng(rng, _rng_state()), "a global RNG moved"


EMPTY = [(shape, scheme) for shape in [(0, 4), (4, 0), (0,)]
         for scheme in ["he_normal", "normal(0, 0.02)", "zeros", "uniform(-1, 1)"]
         if not (len(shape) == 1 and scheme == "he_normal")]  # 1-D: no fans, an error (see above)


@pytest.mark.parametrize("shape, scheme", EMPTY)
def test_empty_tensors_are_a_no_op(shape: tuple[int, ...], scheme: str) -> None:
    rng = _rng_state()
    t = torch.empty(shape)
    assert init_(t, scheme, seed=0) is t
    assert _same_rng(rng, _rng_state())


# ------------------------------------------------------------------------------------------- CLI cases
MODEL_FILE = '''
import torch
from torch import nn


def build():
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def empty():
    return nn.Sequential(nn.ReLU())


class Raising(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        raise RuntimeError("forward is broken")


def raising():
    return Raising()


def not_a_model():
    return 5


def fails():
    raise KeyError("cannot build")


value = 3
'''


def _cli_cases() -> list[tuple[str, list[str]]]:
    m = "{dir}/model.py"
    out: list[tuple[str, list[str]]] = [
        ("no such command", ["frobnicate"]),
        ("catalog bad flag", ["catalog", "--bogus"]),
        ("describe unknown", ["describe", "nope"]),
        ("describe malformed", ["describe", "normal(0,"]),
        ("describe non-finite", ["describe", "normal(0, 1e400)"]),
        ("describe hidden", ["describe", "keras:he_normal(_s=100.0)"]),
        ("describe duplicate", ["describe", "normal(mean=0, mean=1)"]),
        ("lab run unknown", ["lab", "run", "nope"]),
        ("lab run seeds=0", ["lab", "run", "symmetry", "--seeds", "0", "--out", "{dir}/lab"]),
        ("lab run workers=0", ["lab", "run", "symmetry", "--workers", "0"]),
        ("lab run out=file", ["lab", "run", "symmetry", "--out", m]),
        ("lab report missing", ["lab", "report", "{dir}/none"]),
        ("lab report bad figure", ["lab", "report", "{dir}/runs"]),
        ("lab report out=dir", ["lab", "report", "{dir}/okruns", "--out", "{dir}"]),
        ("demo seeds=0", ["demo", "--seeds", "0"]),
        ("demo out=file", ["demo", "--out", m]),
    ]
    targets = {"missing file": "{dir}/none.py:build", "directory": "{dir}:build", "no colon": m,
               "unknown factory": m + ":nope", "not a model": m + ":not_a_model", "value": m + ":value",
               "factory raises": m + ":fails", "syntax error": "{dir}/bad.py:build"}
    for k, target in targets.items():
        out.append((f"init target {k}", ["init", target]))
        out.append((f"doctor target {k}", ["doctor", target, "--input-shape", "4,4"]))
    init_args = {"scheme unknown": ["--scheme", "nope"],
                 "scheme non-finite": ["--scheme", "normal(0, 1e300)"],
                 "scheme malformed": ["--scheme", "normal(0,"], "seed=-1": ["--seed", "-1"],
                 "seed=2**64": ["--seed", str(2**64)], "seed=1.5": ["--seed", "1.5"],
                 "input-shape bad": ["--input-shape", "a,b"], "input-shape 0": ["--input-shape", "0,4"],
                 "input-shape wrong": ["--input-shape", "4,5"], "out=dir": ["--out", "{dir}"],
                 "out=missing folder": ["--out", "{dir}/no/w.safetensors"],
                 "input-dtype bad": ["--input-dtype", "int8"]}
    for k, extra in init_args.items():
        out.append((f"init {k}", ["init", m + ":build", *extra]))
    out.append(("init empty model", ["init", m + ":empty"]))
    out.append(("init raising model", ["init", m + ":raising", "--input-shape", "4,4"]))
    doctor_args = {"no input-shape": [], "scheme unknown": ["--input-shape", "4,4", "--scheme", "nope"],
                   "input-shape wrong": ["--input-shape", "4,5"],
                   "html=dir": ["--input-shape", "4,4", "--html", "{dir}"],
                   "json=missing folder": ["--input-shape", "4,4", "--json", "{dir}/no/x.json"],
                   "vocab=0": ["--input-shape", "4,4", "--input-dtype", "long", "--vocab", "0"]}
    for k, extra in doctor_args.items():
        out.append((f"doctor {k}", ["doctor", m + ":build", *extra]))
    out.append(("doctor empty model", ["doctor", m + ":empty", "--input-shape", "4,4"]))
    out.append(("doctor raising model", ["doctor", m + ":raising", "--input-shape", "4,4"]))
    return out


CLI_CASES = _cli_cases()


@pytest.fixture(scope="module")
def cli_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    (root / "model.py").write_text(MODEL_FILE)
    (root / "bad.py").write_text("def build(:\n")
    run = root / "runs" / "symmetry"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"name": "symmetry", "question": "q", "setup": "s",
                                                  "headers": [], "rows": [], "answer": "a", "data": {},
                                                  "figures": ["../../model.py"]}))
    ok = root / "okruns" / "symmetry"
    ok.mkdir(parents=True)
    (ok / "results.json").write_text((run / "results.json").read_text().replace('"../../model.py"', ""))
    return root


@pytest.mark.parametrize("label, argv", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input(label: str, argv: list[str], cli_dir: Path,
                       capsys: pytest.CaptureFixture[str]) -> None:
    rng = _rng_state()
    argv = [a.replace("{dir}", str(cli_dir)) for a in argv]
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse: usage line + one error line, status 2
        rc = exc.code  # type: ignore[assignment]
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert rc == 2, f"exit {rc}; stdout {captured.out[-300:]!r}; stderr {err[-500:]!r}"
    assert "Traceback" not in err and "Traceback" not in captured.out, err
    last = err.splitlines()[-1]
    assert "error:" in last and last.startswith("initlab"), err
    non_usage = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
    assert len(non_usage) == 1, err
    assert _same_rng(rng, _rng_state())

"""Every dialect name against the framework it names: ~1e5 draws per side in the framework's native layout.

A ``keras:``/``jax:``/``flax:`` name is drawn twice on initlab's side: on the native kernel ``(*k, in, out)``
with ``layout="keras"``, and on the same weight stored the torch way ``(out, in, *k)`` (then transposed back):
both must have the framework's law. ``torch:``/``timm:``/``hf:`` names are native in torch's layout."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pytest
import torch

import initlab
from initlab.catalog.initializers import LayoutWarning

from . import frameworks as fw
from ._stats import law_mismatch, structure_mismatch

D = (256, 384)  # dense kernel (in, out)
C = (3, 3, 96, 128)  # conv kernel (kh, kw, in, out)
SEED = 1234


@dataclass(frozen=True)
class Case:
    spec: str
    make: fw.Maker
    shape: tuple[int, ...]
    check: str = "law"  # law | ortho | exact | close | delta | sparse
    twin: bool = True  # also drawn on the torch-layout twin of the shape (not: embeddings, explicit axes)

    @property
    def family(self) -> str:
        return self.spec.split(":")[0]

    @property
    def native(self) -> str:
        return "keras" if self.family in ("keras", "jax", "flax") else "torch"


def _vs(mode: str, dist: str) -> dict[str, str]:
    return {"mode": mode, "distribution": dist}


JAX = [
    Case("jax:uniform(scale=0.3)", fw.jax_init("uniform", 0.3), D),
    Case("jax:normal(stddev=0.2)", fw.jax_init("normal", 0.2), D),
    Case(
        "jax:truncated_normal(stddev=0.5, lower=-1.5, upper=2.5)",
        fw.jax_init("truncated_normal", 0.5, lower=-1.5, upper=2.5),
        D,
    ),
    Case("jax:zeros", fw.jax_init("zeros"), D),
    Case("jax:ones", fw.jax_init("ones"), D),
    Case("jax:constant(value=0.7)", fw.jax_init("constant", 0.7), D),
    Case(
        "jax:constant(value=[[0.5], [-1.0], [2.0]])",
        fw.jax_init("constant", np.array([[0.5], [-1.0], [2.0]])),
        (3, 7),
        "exact",
        twin=False,  # an array broadcasts to the shape as given
    ),
    Case(
        "jax:variance_scaling(2.0, 'fan_out', 'normal')",
        fw.jax_init("variance_scaling", 2.0, **_vs("fan_out", "normal")),
        C,
    ),
    Case(
        "jax:variance_scaling(1.0, 'fan_geo_avg', 'uniform')",
        fw.jax_init("variance_scaling", 1.0, **_vs("fan_geo_avg", "uniform")),
        C,
    ),
    Case(
        "jax:variance_scaling(1.0, 'fan_avg', 'truncated_normal')",
        fw.jax_init("variance_scaling", 1.0, **_vs("fan_avg", "truncated_normal")),
        C,
    ),
    Case(
        "jax:variance_scaling(1.0, 'fan_in', 'truncated_normal', in_axis=0, out_axis=(1, 2))",
        fw.jax_init("variance_scaling", 1.0, "fan_in", "truncated_normal", in_axis=0, out_axis=(1, 2)),
        (64, 16, 96),
        twin=False,
    ),
    Case(
        "jax:variance_scaling(3.0, 'fan_avg', 'uniform', in_axis=1, out_axis=2, batch_axis=(0,))",
        fw.jax_init("variance_scaling", 3.0, "fan_avg", "uniform", in_axis=1, out_axis=2, batch_axis=(0,)),
        (8, 96, 128),
        twin=False,
    ),
    *[
        Case(f"jax:{fam}_{dist}", fw.jax_init(f"{fam}_{dist}"), C)
        for fam in ("glorot", "he", "lecun")
        for dist in ("normal", "uniform")
    ],
    *[
        Case(f"jax:{fam}_{dist}", fw.jax_init(f"{fam}_{dist}"), D)
        for fam in ("xavier", "kaiming")
        for dist in ("normal", "uniform")
    ],
    Case(
        "jax:glorot_normal(in_axis=0, out_axis=1)",
        fw.jax_init("glorot_normal", in_axis=0, out_axis=1),
        (96, 128, 9),
        twin=False,
    ),
    Case("jax:orthogonal(scale=1.5)", fw.jax_init("orthogonal", 1.5), D, "ortho"),
    Case("jax:orthogonal", fw.jax_init("orthogonal"), C, "ortho"),
    Case("jax:orthogonal(column_axis=0)", fw.jax_init("orthogonal", column_axis=0), D, "ortho"),
    Case("jax:delta_orthogonal(scale=1.0)", fw.jax_init("delta_orthogonal", 1.0), (3, 3, 64, 96), "delta"),
    Case("flax:default", fw.flax_init("lecun_normal"), C),
    Case("flax:embed", fw.flax_init("default_embed_init"), (1000, 128), twin=False),
]
KERAS = [
    Case("keras:random_normal(mean=0.1, stddev=0.3)", fw.keras_init("RandomNormal", mean=0.1, stddev=0.3), D),
    Case(
        "keras:random_uniform(minval=-0.2, maxval=0.4)",
        fw.keras_init("RandomUniform", minval=-0.2, maxval=0.4),
        D,
    ),
    Case(
        "keras:truncated_normal(mean=0.1, stddev=0.3)",
        fw.keras_init("TruncatedNormal", mean=0.1, stddev=0.3),
        D,
    ),
    Case("keras:zeros", fw.keras_init("Zeros", False), D),
    Case("keras:ones", fw.keras_init("Ones", False), D),
    Case("keras:constant(value=0.3)", fw.keras_init("Constant", False, value=0.3), D),
    Case(
        "keras:constant(value=[0.25, -0.5, 1.5, 3.0])",
        fw.keras_init("Constant", False, value=np.array([0.25, -0.5, 1.5, 3.0])),
        (5, 2, 4),
        "exact",
        twin=False,
    ),
    # Keras computes the STFT phase in float32: within 1e-4 of the exact kernel (Keras' own test tolerance)
    Case("keras:stft", fw.keras_init("STFT", False), (64, 1, 33), "close"),
    Case(
        "keras:stft(side='imag', window='hamming', scaling='spectrum', periodic=True)",
        fw.keras_init("STFT", False, side="imag", window="hamming", scaling="spectrum", periodic=True),
        (128, 1, 65),
        "close",
    ),
    Case("keras:stft(window=None, scaling=None)", fw.keras_init("STFT", False, window=None, scaling=None),
         (32, 1, 17), "close"),
    Case("keras:identity(gain=2.0)", fw.keras_init("Identity", False, gain=2.0), (96, 128), "exact"),
    Case("keras:orthogonal(gain=1.5)", fw.keras_init("Orthogonal", gain=1.5), D, "ortho"),
    Case("keras:orthogonal", fw.keras_init("Orthogonal"), C, "ortho"),
    *[
        Case(
            f"keras:variance_scaling(2.0, '{m}', '{dist}')",
            fw.keras_init("VarianceScaling", scale=2.0, **_vs(m, dist)),
            C,
        )
        for m, dist in (
            ("fan_in", "normal"),
            ("fan_out", "untruncated_normal"),
            ("fan_avg", "uniform"),
            ("fan_in", "truncated_normal"),
        )
    ],
    Case(
        "keras:variance_scaling(1.0, 'fan_avg', 'truncated_normal', input_axes=[0], output_axes=[1, 2])",
        fw.keras_init("VarianceScaling", scale=1.0, mode="fan_avg", input_axes=[0], output_axes=[1, 2]),
        (64, 8, 96),
        twin=False,
    ),
    *[
        Case(f"keras:{fam}_{dist}", fw.keras_init(f"{fam.capitalize()}{dist.capitalize()}"), C)
        for fam in ("glorot", "he", "lecun")
        for dist in ("normal", "uniform")
    ],
    Case("keras:default", fw.keras_init("GlorotUniform"), C),
]
TORCH = [
    Case("torch:uniform(a=-0.3, b=0.5)", fw.torch_init(torch.nn.init.uniform_, -0.3, 0.5), D),
    Case("torch:normal(mean=0.1, std=0.3)", fw.torch_init(torch.nn.init.normal_, 0.1, 0.3), D),
    Case(
        "torch:trunc_normal(mean=0.1, std=0.3, a=-0.2, b=0.5)",
        fw.torch_init(torch.nn.init.trunc_normal_, 0.1, 0.3, -0.2, 0.5),
        D,
    ),
    Case("torch:constant(val=0.3)", fw.torch_init(torch.nn.init.constant_, 0.3), D),
    Case("torch:zeros", fw.torch_init(torch.nn.init.zeros_), D),
    Case("torch:ones", fw.torch_init(torch.nn.init.ones_), D),
    Case("torch:eye", fw.torch_init(torch.nn.init.eye_), (96, 128), "exact"),
    Case("torch:dirac(groups=2)", fw.torch_init(torch.nn.init.dirac_, 2), (64, 32, 3, 3), "exact"),
    Case("torch:xavier_uniform(gain=1.5)", fw.torch_init(torch.nn.init.xavier_uniform_, 1.5), C[::-1]),
    Case("torch:xavier_normal(gain=0.5)", fw.torch_init(torch.nn.init.xavier_normal_, 0.5), C[::-1]),
    Case(
        "torch:kaiming_uniform(a=0.1, mode='fan_out', nonlinearity='leaky_relu')",
        fw.torch_init(torch.nn.init.kaiming_uniform_, 0.1, "fan_out", "leaky_relu"),
        C[::-1],
    ),
    Case(
        "torch:kaiming_normal(nonlinearity='tanh')",
        fw.torch_init(torch.nn.init.kaiming_normal_, nonlinearity="tanh"),
        C[::-1],
    ),
    Case("torch:orthogonal(gain=2.0)", fw.torch_init(torch.nn.init.orthogonal_, 2.0), (96, 128, 3), "ortho"),
    Case(
        "torch:sparse(sparsity=0.3, std=0.05)",
        fw.torch_init(torch.nn.init.sparse_, 0.3, 0.05),
        (300, 200),
        "sparse",
    ),
    Case("torch:default", fw.torch_default_linear, (384, 256)),
]
TIMM = [
    Case(
        "timm:trunc_normal_(mean=0.1, std=0.3, a=-0.2, b=0.5)",
        fw.timm_init("trunc_normal_", mean=0.1, std=0.3, a=-0.2, b=0.5),
        D,
    ),
    Case(
        "timm:trunc_normal_tf_(mean=0.1, std=0.3, a=-1.0, b=1.5)",
        fw.timm_init("trunc_normal_tf_", mean=0.1, std=0.3, a=-1.0, b=1.5),
        D,
    ),
    Case("timm:lecun_normal", fw.timm_init("lecun_normal_"), C[::-1]),
    *[
        Case(
            f"timm:variance_scaling(2.0, '{m}', '{dist}')",
            fw.timm_init("variance_scaling_", scale=2.0, **_vs(m, dist)),
            C[::-1],
        )
        for m, dist in (("fan_in", "normal"), ("fan_out", "truncated_normal"), ("fan_avg", "uniform"))
    ],
]
HF = [
    Case("hf:normal(initializer_range=0.05)", fw.hf_init("normal_", std=0.05), D),
    Case("hf:lecun_normal", fw.hf_init("lecun_normal_"), C[::-1]),
]
CASES = JAX + KERAS + TORCH + TIMM + HF
NEEDS = {
    "jax": "jax",
    "flax": "flax",
    "keras": "keras",
    "timm": "torch",
    "hf": "transformers",
    "torch": "torch",
}


def _native_to_torch(x: np.ndarray) -> np.ndarray:
    """(*k, in, out) -> (out, in, *k)."""
    return np.ascontiguousarray(np.moveaxis(x, (-1, -2), (0, 1)))


def _torch_to_native(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(x, (0, 1), (-1, -2)))


def ours(case: Case, layout: str, seed: int = SEED + 1) -> np.ndarray:
    shape = case.shape if layout == case.native else _native_to_torch(np.empty(case.shape)).shape
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LayoutWarning)
        w = initlab.init_(torch.empty(shape), case.spec, seed=seed, layout=layout)  # type: ignore[arg-type]
    x = w.numpy()
    return x if layout == case.native else _torch_to_native(x)


def _flat(x: np.ndarray, native: str) -> np.ndarray:
    return x.reshape(-1, x.shape[-1]) if native == "keras" else x.reshape(x.shape[0], -1)


def mismatch(case: Case, mine: np.ndarray, theirs: np.ndarray) -> str:
    if mine.shape != theirs.shape:
        return f"shape {mine.shape} vs {theirs.shape}"
    if case.check == "exact":
        return "" if np.allclose(mine, theirs, rtol=1e-6, atol=1e-7) else "values differ"
    if case.check == "close":
        err = float(np.abs(mine - theirs).max())
        return "" if err <= 1e-4 else f"values differ by up to {err:.2g}"
    if case.check == "delta":
        if not np.array_equal(mine != 0, theirs != 0):
            return (
                f"non-zero taps differ: {np.argwhere(mine.any(axis=(-1, -2)))} vs "
                f"{np.argwhere(theirs.any(axis=(-1, -2)))}"
            )
        centre = tuple((k - 1) // 2 for k in case.shape[:-2])
        return structure_mismatch(mine[centre], theirs[centre])
    if case.check == "ortho":
        found = structure_mismatch(_flat(mine, case.native), _flat(theirs, case.native))
        if found:
            return found
    if case.check == "sparse":
        zeros_m, zeros_t = (mine == 0).sum(0), (theirs == 0).sum(0)
        if not np.array_equal(zeros_m, zeros_t):
            return f"zeros per column {np.unique(zeros_m)} vs {np.unique(zeros_t)}"
        return law_mismatch(mine[mine != 0], theirs[theirs != 0])
    return law_mismatch(mine, theirs)


def run_case(case: Case) -> dict[str, str]:
    """{layout: mismatch} for initlab's draws against the framework's (empty strings: conforms)."""
    theirs = case.make(case.shape, SEED)
    layouts = ("keras", "torch") if case.native == "keras" and case.twin else (case.native,)
    return {layout: mismatch(case, ours(case, layout), theirs) for layout in layouts}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.spec)
def test_dialect_matches_framework(case: Case) -> None:
    fw.need(NEEDS[case.family])
    if case.spec.startswith("flax:"):
        fw.need("flax.linen")
    found = {layout: why for layout, why in run_case(case).items() if why}
    assert not found, f"{case.spec}: {found}"


def test_every_dialect_name_has_a_case() -> None:
    covered = {initlab.catalog.registry.canonical(c.spec.split("(")[0]) for c in CASES}
    names = [n for p in ("jax:", "flax:", "keras:", "timm:", "hf:", "torch:") for n in initlab.available(p)]
    missing = sorted(set(names) - covered)
    assert not missing, f"dialect names without a conformance case: {missing}"


@pytest.mark.parametrize("kw", [{"scale": 0.0}, {"mode": "fan_geo_avg"}, {"distribution": "bogus"}])
def test_keras_rejects_what_keras_rejects(kw: dict[str, object]) -> None:
    keras = fw.need("keras")
    with pytest.raises(ValueError):
        keras.initializers.VarianceScaling(**kw)
    with pytest.raises(ValueError):
        initlab.catalog.get("keras:variance_scaling", **kw)


def test_bare_tensor_says_which_layout_it_assumed() -> None:
    with pytest.warns(LayoutWarning, match="layout='keras'"):
        initlab.init_(torch.empty(128, 96, 3, 3), "keras:glorot_uniform", seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", LayoutWarning)  # an explicit native layout says nothing
        initlab.init_(torch.empty(3, 3, 96, 128), "keras:glorot_uniform", seed=0, layout="keras")


def test_integer_tensors_are_refused_clearly() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        initlab.init_(torch.empty(8, 8, dtype=torch.int32), "jax:lecun_normal", seed=0)


def test_array_constant_that_does_not_broadcast_names_the_fix() -> None:
    with pytest.raises(ValueError, match=r"does not broadcast.*transpose"):
        initlab.init_(torch.empty(4, 3), initlab.catalog.get("keras:constant", value=[1.0, 2.0, 3.0, 4.0]))
    with pytest.raises(ValueError, match="number or an array"):
        initlab.catalog.get("keras:constant", value=[[1.0], "a"])
    assert math.isclose(float(ours(KERAS[5], "keras").mean()), 0.3, rel_tol=1e-6)


def test_array_constant_config_round_trips_through_initlab_keras() -> None:
    keras = fw.need("keras")
    import initlab.keras as ikeras

    value = np.arange(12.0).reshape(3, 4) / 7
    init = ikeras.get("keras:constant", value=value)
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(init))
    want = np.broadcast_to(value, (2, 3, 4))
    for i in (init, again):
        np.testing.assert_allclose(np.asarray(i((2, 3, 4))), want, rtol=1e-6)
    cfg = initlab.catalog.to_config(initlab.catalog.get("jax:constant", value=value))
    assert cfg["params"]["value"] == value.tolist()  # JSON-ready


def test_array_constant_on_every_backend() -> None:
    """torch, numpy and the counter-based generator (init_model's default path) write the same array."""
    from initlab.backends.counter.fill import counter_fill_
    from initlab.backends.numpy_backend import sample

    scheme = initlab.catalog.get("keras:constant", value=[[1.0, -2.0, 0.5]])
    want = np.broadcast_to(np.array([[1.0, -2.0, 0.5]]), (4, 3))
    draw = initlab.backends.torch_backend.resolve((4, 3), scheme)
    np.testing.assert_array_equal(initlab.init_(torch.empty(4, 3), scheme).numpy(), want)
    np.testing.assert_array_equal(sample(scheme, (4, 3), 0), want)
    np.testing.assert_array_equal(counter_fill_(torch.empty(4, 3), draw, seed=0, name="w").numpy(), want)
    m = torch.nn.Linear(3, 4)
    initlab.init_model(m, "zeros", rules={"weight": scheme}, seed=0)
    np.testing.assert_array_equal(m.weight.detach().numpy(), want)


def test_stft_in_torch_layout_is_the_transposed_keras_kernel() -> None:
    scheme = initlab.catalog.get("keras:stft(side='imag')")
    native = initlab.init_(torch.empty(16, 1, 9), scheme, layout="keras").numpy()
    with pytest.warns(LayoutWarning):
        stored = initlab.init_(torch.empty(9, 1, 16), scheme).numpy()
    np.testing.assert_array_equal(np.moveaxis(stored, (0, 2), (2, 0)), native)

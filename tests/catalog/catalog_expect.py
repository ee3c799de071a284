"""Independent expectations for the catalog tests: weight layouts with their fans worked out by hand, and each
elementwise scheme's distribution written from its published formula (not from the catalog's code)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

TRUNC2 = 0.87962566103423978  # std of N(0, 1) cut at +-2 (Keras/JAX constant)


@dataclass(frozen=True)
class Layout:
    """A layer's weight: shape, the context initlab needs, and its fans computed by hand."""

    name: str
    shape: tuple[int, ...]
    fan_in: float
    fan_out: float
    ctx: dict[str, Any] = field(default_factory=dict)

    @property
    def torch_fans(self) -> tuple[int, int]:
        """What torch.nn.init._calculate_fan_in_and_fan_out says for the stored shape."""
        k = math.prod(self.shape[2:])
        return self.shape[1] * k, self.shape[0] * k


LAYOUTS = [
    Layout("linear", (96, 80), 80, 96),
    Layout("conv1d", (32, 16, 5), 16 * 5, 32 * 5),
    Layout("conv2d", (32, 16, 3, 3), 16 * 9, 32 * 9),
    Layout("conv3d", (16, 8, 3, 3, 3), 8 * 27, 16 * 27),
    # Conv2d(16, 32, 3, groups=4): each output sees 4 inputs x 9; each input reaches 32/4 outputs x 9
    Layout("grouped", (32, 4, 3, 3), 4 * 9, 8 * 9, {"groups": 4}),
    # Conv2d(32, 64, 5, groups=32) (depthwise, multiplier 2)
    Layout("depthwise", (64, 1, 5, 5), 25, 2 * 25, {"groups": 32}),
    # ConvTranspose2d(16, 32, 4, stride=2): weight (in, out, k, k); each output sees 16 x 16 / 4 inputs
    Layout("conv_transpose", (16, 32, 4, 4), 16 * 16 / 4, 32 * 16,
           {"layout": "torch_transposed", "stride": 2}),
    # LSTM(48, 64).weight_ih: 4 stacked gate blocks of (64, 48)
    Layout("lstm_ih", (256, 48), 48, 64, {"blocks": 4}),
]


def norm(std: float, mean: float = 0.0) -> Any:
    return stats.norm(mean, std)


def unif(low: float, high: float) -> Any:
    return stats.uniform(low, high - low)


def trunc(scale: float, lo: float = -2.0, hi: float = 2.0, loc: float = 0.0) -> Any:
    """loc + scale * Z, Z ~ N(0, 1) cut to [lo, hi]."""
    return stats.truncnorm(lo, hi, loc=loc, scale=scale)


def trunc_abs(mean: float, std: float, a: float, b: float) -> Any:
    return stats.truncnorm((a - mean) / std, (b - mean) / std, loc=mean, scale=std)


Expect = Callable[[float, float, float, float, tuple[int, ...]], Any]


def _vs(var_of: Callable[[float, float], float], dist: str, torch_fans: bool = False) -> Expect:
    def expect(fi: float, fo: float, tfi: float, tfo: float, shape: tuple[int, ...]) -> Any:
        var = var_of(tfi, tfo) if torch_fans else var_of(fi, fo)
        if dist == "normal":
            return norm(math.sqrt(var))
        if dist == "uniform":
            b = math.sqrt(3 * var)
            return unif(-b, b)
        return trunc(math.sqrt(var) / TRUNC2)
    return expect


def _fixed(dist: Any) -> Expect:
    return lambda *_: dist


def _families() -> dict[str, Expect]:
    out: dict[str, Expect] = {}
    rules = {"lecun": lambda fi, fo: 1 / fi, "glorot": lambda fi, fo: 2 / (fi + fo),
             "he": lambda fi, fo: 2 / fi}
    for fam, var in rules.items():
        out[f"{fam}_normal"] = _vs(var, "normal")
        out[f"{fam}_uniform"] = _vs(var, "uniform")
        out[f"{fam}_truncated_normal"] = _vs(var, "truncated_normal")
        for fw in ("keras", "jax"):
            out[f"{fw}:{fam}_normal"] = _vs(var, "truncated_normal")
            out[f"{fw}:{fam}_uniform"] = _vs(var, "uniform")
    return out


EXPECT: dict[str, Expect] = {
    **_families(),
    "zeros": _fixed(0.0), "ones": _fixed(1.0), "constant": _fixed(0.0),
    "normal": _fixed(norm(1.0)), "uniform": _fixed(unif(0, 1)),
    "truncated_normal": _fixed(trunc(1.0)), "truncated_normal_abs": _fixed(trunc_abs(0, 1, -2, 2)),
    "variance_scaling": _vs(lambda fi, fo: 1 / fi, "truncated_normal"),
    "selu": _vs(lambda fi, fo: 1 / fi, "normal"),
    "gpt2_normal": _fixed(norm(0.02)), "gpt2_residual": _fixed(norm(0.02 / math.sqrt(24))),
    "bert_trunc_normal": _fixed(trunc(0.02)), "vit_trunc_normal": _fixed(trunc_abs(0, 0.02, -2, 2)),
    # torch.nn.init, with torch's fans of the stored shape
    "torch:uniform": _fixed(unif(0, 1)), "torch:normal": _fixed(norm(1.0)),
    "torch:trunc_normal": _fixed(trunc_abs(0, 1, -2, 2)),
    "torch:constant": _fixed(0.0), "torch:zeros": _fixed(0.0), "torch:ones": _fixed(1.0),
    "torch:xavier_uniform": _vs(lambda fi, fo: 2 / (fi + fo), "uniform", torch_fans=True),
    "torch:xavier_normal": _vs(lambda fi, fo: 2 / (fi + fo), "normal", torch_fans=True),
    "torch:kaiming_uniform": _vs(lambda fi, fo: 2 / fi, "uniform", torch_fans=True),  # leaky_relu, a=0
    "torch:kaiming_normal": _vs(lambda fi, fo: 2 / fi, "normal", torch_fans=True),
    "torch:default": lambda fi, fo, tfi, tfo, s: unif(-1 / math.sqrt(tfi), 1 / math.sqrt(tfi)),
    # keras
    "keras:random_normal": _fixed(norm(0.05)), "keras:random_uniform": _fixed(unif(-0.05, 0.05)),
    "keras:truncated_normal": _fixed(trunc(0.05)), "keras:zeros": _fixed(0.0), "keras:ones": _fixed(1.0),
    "keras:constant": _fixed(0.0), "keras:variance_scaling": _vs(lambda fi, fo: 1 / fi, "truncated_normal"),
    "keras:default": _vs(lambda fi, fo: 2 / (fi + fo), "uniform"),
    # jax / flax
    "jax:uniform": _fixed(unif(0, 0.01)), "jax:normal": _fixed(norm(0.01)),
    "jax:truncated_normal": _fixed(trunc(0.01)),
    "jax:zeros": _fixed(0.0), "jax:ones": _fixed(1.0), "jax:constant": _fixed(0.0),
    "jax:variance_scaling": _vs(lambda fi, fo: 1 / fi, "truncated_normal"),
    "flax:default": _vs(lambda fi, fo: 1 / fi, "truncated_normal"),
    # Embed: variance_scaling(1, fan_in, normal, out_axis=0): fan_in = numel / shape[0]
    "flax:embed": lambda fi, fo, tfi, tfo, s: norm(math.sqrt(s[0] / math.prod(s))),
    # timm / HF
    "timm:trunc_normal_": _fixed(trunc_abs(0, 1, -2, 2)), "timm:trunc_normal_tf_": _fixed(trunc(1.0)),
    "timm:lecun_normal": _vs(lambda fi, fo: 1 / fi, "truncated_normal", torch_fans=True),
    "timm:variance_scaling": _vs(lambda fi, fo: 1 / fi, "normal", torch_fans=True),
    "hf:normal": _fixed(norm(0.02)),
    # transformers' lecun_normal_: std/0.8796 with absolute +-2 bounds -> practically untruncated
    "hf:lecun_normal": lambda fi, fo, tfi, tfo, s: trunc_abs(0, math.sqrt(1 / tfi) / TRUNC2, -2, 2),
}

# Schemes whose value is a structured matrix, not iid entries: tested for their algebra instead.
STRUCTURED = {"orthogonal", "torch:orthogonal", "keras:orthogonal", "jax:orthogonal", "identity", "torch:eye",
              "keras:identity", "dirac", "torch:dirac", "delta_orthogonal", "jax:delta_orthogonal", "sparse",
              "torch:sparse", "zero_hadamard", "keras:stft"}


def expected(name: str, layout: Layout) -> Any:
    tfi, tfo = layout.torch_fans
    return EXPECT[name](layout.fan_in, layout.fan_out, tfi, tfo, layout.shape)


def moment_tolerances(dist: Any, n: int, z: float = 5.0) -> tuple[float, float]:
    """``z`` standard errors of the sample mean and of the sample std of ``n`` draws from ``dist``."""
    _, var, _, kurt = (float(x) for x in dist.stats(moments="mvsk"))
    sd = math.sqrt(var)
    mu4 = (kurt + 3.0) * var * var
    se_std = math.sqrt(max(mu4 - var * var, 0.0) / n) / (2 * sd) if sd > 0 else 0.0
    return z * sd / math.sqrt(n), z * se_std


def check_sample(x: np.ndarray, dist: Any, *, ulp: float = 0.0, ks_p: float = 1e-4) -> None:
    """Mean and std within 5 standard errors, support respected, and a KS test against ``dist``.

    ``ulp``: relative rounding of the storage dtype (bounds and moments then get that much slack).
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if not hasattr(dist, "cdf"):
        assert np.all(x == dist), f"expected the constant {dist}, got values in [{x.min()}, {x.max()}]"
        return
    n = x.size
    tol_mean, tol_std = moment_tolerances(dist, n)
    mean, sd = float(dist.mean()), float(dist.std())
    slack = ulp * (abs(mean) + sd)
    assert abs(x.mean() - mean) <= tol_mean + slack, f"mean {x.mean():.6g} vs {mean:.6g} (tol {tol_mean:.3g})"
    assert abs(x.std() - sd) <= tol_std + ulp * sd, f"std {x.std():.6g} vs {sd:.6g} (tol {tol_std:.3g})"
    lo, hi = dist.support()
    span = ulp * max(abs(lo) if math.isfinite(lo) else 0, abs(hi) if math.isfinite(hi) else 0)
    assert x.min() >= lo - span and x.max() <= hi + span, \
        f"values in [{x.min()}, {x.max()}] outside [{lo}, {hi}]"
    p = stats.kstest(x, dist.cdf).pvalue
    assert p > ks_p, f"KS test rejects the distribution (p = {p:.2e}, n = {n})"

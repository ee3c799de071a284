"""The catalog: every named scheme, its formula, origin and reference, and ``get(name)``.

Names are snake_case (``he_normal``); framework dialects carry a prefix because the same name means different
things (``torch:kaiming_normal`` is a plain normal, ``keras:he_normal`` a corrected truncated normal).
Parameters
come as keywords or in call form: ``get("normal", std=0.02)`` == ``get("normal(0, 0.02)")``.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InitlabTypeError, InitlabValueError
from . import initializers as I
from .fans import Axes
from .parse import format_call, parse_call

Factory = Callable[..., I.Initializer]


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Factory
    formula: str
    origin: str
    reference: str
    summary: str = ""
    aliases: tuple[str, ...] = ()

    def signature(self) -> str:
        sig = inspect.signature(self.factory)
        shown = [p for name, p in sig.parameters.items() if not name.startswith("_")]
        return f"{self.name}{sig.replace(parameters=shown)}"


@dataclass(frozen=True)
class Scheme(I.Initializer):
    """A named scheme with its parameters; resolves like the initializer it names."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    initializer: I.Initializer = field(default_factory=I.ConstantInit, compare=False, repr=False)

    def resolve(self, shape: Any, ctx: I.Context | None = None) -> Any:
        return self.initializer.resolve(shape, ctx)

    def resolve_complex(self, shape: Any, ctx: I.Context | None = None) -> Any:
        return self.initializer.resolve_complex(shape, ctx)

    def uses_fans(self) -> bool:
        return self.initializer.uses_fans()

    def get_config(self) -> dict[str, Any]:
        return dict(self.params)

    def to_config(self) -> dict[str, Any]:
        """``{"name": ..., "params": {...}}`` with JSON-ready values (``Axes`` as a dict)."""
        params = {k: asdict(v) if isinstance(v, Axes) else v for k, v in self.params.items()}
        return {"name": self.name, "params": params}

    def __str__(self) -> str:
        return format_call(self.name, dict(self.params))

    @property
    def entry(self) -> Entry:
        return _REGISTRY[self.name]


_REGISTRY: dict[str, Entry] = {}
_ALIASES: dict[str, str] = {}


def register(name: str, formula: str, origin: str, reference: str, summary: str = "",
             aliases: tuple[str, ...] = ()) -> Callable[[Factory], Factory]:
    def deco(factory: Factory) -> Factory:
        if name in _REGISTRY:
            raise InitlabValueError(f"scheme {name!r} registered twice")
        _REGISTRY[name] = Entry(name, factory, formula, origin, reference, summary, aliases)
        for a in aliases:
            _ALIASES[a] = name
        return factory
    return deco


def available(prefix: str | None = None) -> list[str]:
    """Every canonical scheme name (``prefix="keras:"`` for one dialect)."""
    names = sorted(_REGISTRY)
    return [n for n in names if n.startswith(prefix)] if prefix else names


def entries() -> list[Entry]:
    return [_REGISTRY[n] for n in available()]


def canonical(name: str) -> str:
    """The canonical name of ``name`` or of an alias; raises with "did you mean" suggestions."""
    key = name.strip()
    if key in _REGISTRY:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    low = key.lower()
    if low in _REGISTRY:
        return low
    if low in _ALIASES:
        return _ALIASES[low]
    close = difflib.get_close_matches(low, list(_REGISTRY) + list(_ALIASES), n=4, cutoff=0.6)
    hint = f"did you mean {', '.join(repr(c) for c in close)}?" if close else "see initlab.available()"
    raise InitlabValueError(f"unknown scheme {name!r}: {hint}")


def describe(name: str) -> Entry:
    return _REGISTRY[canonical(parse_call(name)[0])]


def get(spec: str | Mapping[str, Any] | I.Initializer, *args: Any, **params: Any) -> I.Initializer:
    """An initializer from a name, a call form, a config dict, or an initializer (returned as is).

    >>> get("normal(0, 0.02)").resolve((3, 4))
    Normal(mean=0.0, std=0.02)
    """
    if isinstance(spec, I.Initializer):
        if args or params:
            raise InitlabValueError("parameters can only be given with a scheme name")
        return spec
    if isinstance(spec, Mapping):
        return from_config(spec)
    if not isinstance(spec, str):
        raise InitlabTypeError(
            f"a scheme is a name, a config dict or an Initializer, not {type(spec).__name__}")
    raw, cargs, ckw = parse_call(spec)
    name = canonical(raw)
    entry = _REGISTRY[name]
    sig = inspect.signature(entry.factory)
    twice = sorted(set(ckw) & set(params))
    if twice:
        raise InitlabValueError(f"{', '.join(twice)} given both in {spec!r} and as keyword: keep one")
    all_args = cargs + args
    if len(all_args) > len(_public(sig)):  # positionals would reach the hidden parameters
        raise InitlabValueError(f"bad parameters for {name}: it takes at most {len(_public(sig))} positional "
                                f"parameter(s), got "
                         f"{len(all_args)}; signature: {entry.signature()}")
    hidden = sorted(k for k in {**ckw, **params} if k.startswith("_"))
    if hidden:
        raise InitlabValueError(
            f"{name} has no parameter {', '.join(hidden)}; signature: {entry.signature()}")
    try:
        bound = sig.bind(*all_args, **{**ckw, **params})
    except TypeError as exc:
        raise InitlabValueError(f"bad parameters for {name}: {exc}; signature: {entry.signature()}") from None
    # arrays (an array-valued constant) as nested lists: JSON-ready configs, comparable Schemes
    given = {k: v.tolist() if hasattr(v, "tolist") and getattr(v, "ndim", 0) != 0 else v
             for k, v in bound.arguments.items()}
    try:
        return Scheme(name, given, entry.factory(**given))
    except (TypeError, ValueError, ArithmeticError) as exc:  # float(10**400), float("a"), float([1])
        raw_conversion = isinstance(exc, (TypeError, ArithmeticError)) or str(exc).startswith(
            ("could not convert", "invalid literal"))
        if not raw_conversion:
            raise  # the factories' own messages already name the fix
        raise InitlabValueError(f"bad parameters for {name}: {exc}; signature: {entry.signature()}") from None


def _public(sig: inspect.Signature) -> list[str]:
    """Parameters a user may set: the dialect families bind their mode and scale as hidden ``_m``/``_s``."""
    return [p for p in sig.parameters if not p.startswith("_")]


def to_config(init: I.Initializer) -> dict[str, Any]:
    return init.to_config()


def from_config(config: Mapping[str, Any]) -> I.Initializer:
    """Inverse of ``to_config``: ``{"name": ..., "params": {...}}``."""
    if "name" not in config:
        raise InitlabValueError(f"a scheme config needs a 'name' key, got {dict(config)}")
    params = dict(config.get("params") or {})
    if isinstance(params.get("axes"), Mapping):
        axes = params["axes"].items()
        params["axes"] = Axes(**{k: tuple(v) if isinstance(v, list) else v for k, v in axes})
    return get(str(config["name"]), **params)


# ------------------------------------------------------------------------------------------------------------
# Canonical schemes
# ------------------------------------------------------------------------------------------------------------
TORCH_INIT = "torch/nn/init.py"
KERAS_INIT = "keras/src/initializers/random_initializers.py"
JAX_INIT = "jax/_src/nn/initializers.py"
TIMM_INIT = "timm/layers/weight_init.py"

register("zeros", "w = 0", "all", "-", "All zeros: never breaks symmetry for hidden weights.")(
    lambda: I.ConstantInit(0.0))
register("ones", "w = 1", "all", "-", "All ones (norm-layer scales).")(lambda: I.ConstantInit(1.0))


@register("constant", "w = value", "all", "-", "A constant; with 0.5 for every weight, units stay identical.")
def _constant(value: float = 0.0) -> I.Initializer:
    return I.ConstantInit(float(value))


@register("normal", "w ~ N(mean, std^2)", "all", TORCH_INIT, "Plain normal.")
def _normal(mean: float = 0.0, std: float = 1.0) -> I.Initializer:
    return I.NormalInit(float(mean), float(std))


@register("uniform", "w ~ U(low, high)", "all", TORCH_INIT, "Plain uniform.")
def _uniform(low: float = 0.0, high: float = 1.0) -> I.Initializer:
    return I.UniformInit(float(low), float(high))


@register("truncated_normal", "w ~ N(mean, std^2) | a <= (w - mean)/std <= b", "jax/tf", JAX_INIT,
          "Truncated normal, bounds in standard deviations; std is the parent's (no correction).")
def _truncated_normal(mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0) -> I.Initializer:
    return I.TruncatedNormalInit(float(mean), float(std), float(a), float(b), absolute=False)


@register("truncated_normal_abs", "w ~ N(mean, std^2) | a <= w <= b (absolute bounds)", "torch", TORCH_INIT,
          "torch.nn.init.trunc_normal_ semantics: a, b are values, not std units.")
def _truncated_normal_abs(mean: float = 0.0, std: float = 1.0, a: float = -2.0,
                          b: float = 2.0) -> I.Initializer:
    return I.TruncatedNormalInit(float(mean), float(std), float(a), float(b), absolute=True)


@register("variance_scaling", "Var[w] = scale * gain^2 / n, n = fan by mode", "jax/keras", JAX_INIT,
          "The general mechanism; distribution normal | truncated_normal (corrected) | uniform.")
def _variance_scaling(scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal",
                      truncation: float = 2.0, correct: bool = True, gain: float | str = 1.0,
                      axes: Axes | None = None, default_activation: str = "relu",
                      gain_table: str = "classic") -> I.Initializer:
    return I.VarianceScaling(float(scale), mode, distribution, float(truncation), bool(correct),
                             gain if isinstance(gain, str) else float(gain), default_activation,
                             gain_table, axes=axes)  # type: ignore[arg-type]


def _family_factory(default_mode: str, dist: str, he: bool) -> Factory:
    def make(mode: str = default_mode, gain: float | None = None,
             nonlinearity: str | None = None) -> I.Initializer:
        """``gain`` wins; else the gain of ``nonlinearity``; else He takes the activation's, others 1."""
        g: float | str = ("activation" if he else 1.0) if gain is None else float(gain)
        if gain is None and nonlinearity is not None:
            g = I.VarianceScaling(gain="activation").gain_for(nonlinearity)
        return I.VarianceScaling(1.0, mode, dist, gain=g)
    return make


def _family(prefix: str, mode: str, formula: str, paper: str, summary: str, *, he: bool,
            aliases: str | None = None) -> None:
    for dist in ("normal", "uniform", "truncated_normal"):
        f = formula.replace("DIST", {"normal": "N(0, s^2)", "uniform": "U(-sqrt(3) s, sqrt(3) s)",
                                     "truncated_normal": "N(0, s^2/0.8796^2) cut at +-2 std"}[dist])
        al = (f"{aliases}_{dist}",) if aliases else ()
        register(f"{prefix}_{dist}", f, "paper", paper, summary, aliases=al)(_family_factory(mode, dist, he))


_family("lecun", "fan_in", "DIST, s^2 = gain^2 / fan_in", "LeCun et al. 1998, Efficient BackProp",
        "Variance 1/fan_in: keeps unit variance through linear/SELU layers.", he=False)
_family("glorot", "fan_avg", "DIST, s^2 = gain^2 * 2 / (fan_in + fan_out)", "Glorot & Bengio 2010",
        "Balances forward and backward variance; for tanh/sigmoid/linear.", he=False, aliases="xavier")
_family("he", "fan_in", "DIST, s^2 = gain(phi)^2 / fan, gain from the following activation (ReLU: 2)",
        "He et al. 2015, arXiv:1502.01852", "Variance 2/fan_in for ReLU; uses the activation's gain.",
        he=True, aliases="kaiming")
register("selu", "N(0, 1/fan_in) (LeCun normal)", "paper", "Klambauer et al. 2017",
         "Self-normalizing nets: LeCun normal, not torch's empirical SELU gain 3/4.")(
    lambda: I.VarianceScaling(1.0, "fan_in", "normal"))


@register("orthogonal", "W = gain * Q, Q Haar-orthogonal (QR of Gaussian, sign-fixed)", "paper",
          "Saxe et al. 2014, arXiv:1312.6120", "Orthogonal rows or columns; flatten 'torch' (dim0 x rest) or "
          "'keras' (rest x last dim).")
def _orthogonal(gain: float = 1.0, flatten: str = "torch") -> I.Initializer:
    return I.OrthogonalInit(float(gain), flatten)  # type: ignore[arg-type]


register("identity", "W = gain * I", "keras/torch", TORCH_INIT, "Identity matrix (2-D).", aliases=("eye",))(
    lambda gain=1.0: I.IdentityInit(float(gain)))
register("dirac", "delta at centre k//2 mapping channel i -> i", "torch", TORCH_INIT,
         "Identity-preserving conv kernel.")(lambda groups=1, gain=1.0: I.DiracInit(int(groups), float(gain)))
register("delta_orthogonal", "orthogonal (out x in) at spatial centre (k-1)//2, zeros elsewhere", "paper",
         "Xiao et al. 2018, arXiv:1806.05393", "Dynamical isometry for deep CNNs.")(
    lambda gain=1.0: I.DeltaOrthogonalInit(float(gain)))
register("sparse", "ceil(sparsity*rows) zeros per column, others N(0, std^2)", "paper",
         "Martens 2010, Deep learning via Hessian-free optimization", "Sparse init.")(
    lambda sparsity=0.1, std=0.01: I.SparseInit(float(sparsity), float(std)))
register("zero_hadamard", "identity (square), identity + Hadamard/sqrt(2^m) (expanding), truncated identity",
         "paper", "Zhao et al. 2022, ZerO, arXiv:2110.12661", "Deterministic zeros-and-ones init.",
         aliases=("zero_init", "ZerO", "zer_o"))(lambda: I.ZerOInit())
register("gpt2_normal", "N(0, 0.02^2)", "hf", "transformers/models/gpt2/modeling_gpt2.py",
         "GPT-2 weights and embeddings.")(lambda std=0.02: I.NormalInit(0.0, float(std)))


@register("gpt2_residual", "N(0, (std / sqrt(2 * n_layer))^2)", "hf",
          "Radford et al. 2019; transformers modeling_gpt2.py", "GPT-2 residual projections (c_proj).")
def _gpt2_residual(n_layer: int = 12, std: float = 0.02) -> I.Initializer:
    if int(n_layer) < 1:
        raise InitlabValueError(f"n_layer must be >= 1, got {n_layer}")
    return I.NormalInit(0.0, float(std) / math.sqrt(2 * int(n_layer)))


register("bert_trunc_normal", "N(0, 0.02^2) cut at +-2 std (TF original, no correction)", "tf",
         "Devlin et al. 2019, google-research/bert", "BERT's TF truncated normal 0.02.")(
    lambda std=0.02: I.TruncatedNormalInit(0.0, float(std), -2.0, 2.0))
register("vit_trunc_normal", "N(0, 0.02^2) cut at absolute +-2 (timm: effectively untruncated)", "timm",
         "timm models/vision_transformer.py init_weights_vit_timm", "ViT Linear weights.")(
    lambda std=0.02: I.TruncatedNormalInit(0.0, float(std), -2.0, 2.0, absolute=True))

from . import dialects as _dialects  # noqa: E402,F401  (registers the framework dialects)

"""Framework dialects: the same name as each framework means it, value for value.

``torch:`` follows ``torch.nn.init`` (plain normals, absolute ``trunc_normal_`` bounds, torch's gain table,
and
torch's fans of the stored shape -- no layout, groups or gate-block corrections -- as do ``timm:`` and
``hf:``);
``keras:`` and ``jax:`` truncate their normals at +-2 std with the 0.8796 correction; ``jax:uniform`` samples
U[0, scale); ``keras:``/``jax:`` orthogonal flatten to (rest x last dim); ``*:default`` is the weight rule of
that framework's Dense/Linear/Conv layers (see :mod:`.profiles` for whole-module defaults).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Literal

from . import initializers as I
from .draws import Draw
from .fans import Axes
from .fixed import ArrayConstantInit, STFTInit
from .registry import JAX_INIT, KERAS_INIT, TIMM_INIT, TORCH_INIT, register

# ---- torch -------------------------------------------------------------------------------------------------
register("torch:uniform", "U(a, b)", "torch", TORCH_INIT)(
    lambda a=0.0, b=1.0: I.UniformInit(float(a), float(b)))
register("torch:normal", "N(mean, std^2)", "torch", TORCH_INIT)(
    lambda mean=0.0, std=1.0: I.NormalInit(float(mean), float(std)))
register("torch:trunc_normal", "N(mean, std^2) cut at absolute [a, b], no variance correction", "torch",
         TORCH_INIT, aliases=("torch:trunc_normal_",))(
    lambda mean=0.0, std=1.0, a=-2.0, b=2.0:
    I.TruncatedNormalInit(float(mean), float(std), float(a), float(b), absolute=True))
register("torch:constant", "w = val", "torch", TORCH_INIT)(lambda val=0.0: I.ConstantInit(float(val)))
register("torch:zeros", "w = 0", "torch", TORCH_INIT)(lambda: I.ConstantInit(0.0))
register("torch:ones", "w = 1", "torch", TORCH_INIT)(lambda: I.ConstantInit(1.0))
register("torch:eye", "I", "torch", TORCH_INIT)(lambda: I.IdentityInit(1.0))
register("torch:dirac", "delta at k//2", "torch", TORCH_INIT)(lambda groups=1: I.DiracInit(int(groups)))
register("torch:xavier_uniform", "U(+-gain sqrt(6/(fan_in+fan_out))), torch fans", "torch", TORCH_INIT,
         aliases=("torch:xavier_uniform_",))(
    lambda gain=1.0: I.XavierTorch(float(gain), "uniform"))
register("torch:xavier_normal", "N(0, gain^2 2/(fan_in+fan_out)), untruncated", "torch", TORCH_INIT,
         aliases=("torch:xavier_normal_",))(
    lambda gain=1.0: I.XavierTorch(float(gain), "normal"))
register("torch:kaiming_uniform", "U(+-gain sqrt(3/fan)), gain = calculate_gain(nonlinearity, a)", "torch",
         TORCH_INIT, aliases=("torch:kaiming_uniform_",))(
    lambda a=0.0, mode="fan_in", nonlinearity="leaky_relu":
    I.KaimingTorch(float(a), mode, nonlinearity, "uniform"))
register("torch:kaiming_normal", "N(0, gain^2/fan), untruncated", "torch", TORCH_INIT,
         aliases=("torch:kaiming_normal_",))(
    lambda a=0.0, mode="fan_in", nonlinearity="leaky_relu":
    I.KaimingTorch(float(a), mode, nonlinearity, "normal"))
register("torch:orthogonal", "gain * Q, rows = dim 0", "torch", TORCH_INIT)(
    lambda gain=1.0: I.OrthogonalInit(float(gain), "torch"))
register("torch:sparse", "N(0, std^2), ceil(sparsity*rows) zeros per column", "torch", TORCH_INIT)(
    lambda sparsity=0.1, std=0.01: I.SparseInit(float(sparsity), float(std)))
register("torch:default", "U(+-1/sqrt(fan_in)) = kaiming_uniform_(a=sqrt(5)); biases the same bound",
         "torch", "torch/nn/modules/linear.py reset_parameters (pytorch#57109)",
         "Linear/Conv default: std 1/sqrt(3 fan_in), a third of the LeCun variance.")(
    lambda: I.TorchFans(I.VarianceScaling(1.0 / 3.0, "fan_in", "uniform")))

# ---- keras -------------------------------------------------------------------------------------------------
register("keras:random_normal", "N(mean, stddev^2)", "keras", KERAS_INIT)(
    lambda mean=0.0, stddev=0.05: I.NormalInit(float(mean), float(stddev)))
register("keras:random_uniform", "U(minval, maxval)", "keras", KERAS_INIT)(
    lambda minval=-0.05, maxval=0.05: I.UniformInit(float(minval), float(maxval)))
register("keras:truncated_normal", "N(mean, stddev^2) cut at +-2 stddev, no correction", "keras", KERAS_INIT)(
    lambda mean=0.0, stddev=0.05: I.TruncatedNormalInit(float(mean), float(stddev), -2.0, 2.0))
register("keras:zeros", "0", "keras", KERAS_INIT)(lambda: I.ConstantInit(0.0))
register("keras:ones", "1", "keras", KERAS_INIT)(lambda: I.ConstantInit(1.0))
register("keras:constant", "value: a number, or an array broadcast to the weight's shape", "keras",
         "keras/src/initializers/constant_initializers.py")(lambda value=0.0: _constant(value))
register("keras:stft", "cos/sin(-2 pi t f / fft_length) x window / its L2 (density) or L1 (spectrum) norm: "
         "Conv1D kernel (T, C, F)", "keras", "keras/src/initializers/constant_initializers.py",
         "Keras' STFT kernel for STFTSpectrogram (side 'real' or 'imag').",
         aliases=("keras:stft_initializer",))(
    lambda side="real", window="hann", scaling="density", periodic=False:
    _stft(side, window, scaling, periodic))
register("keras:identity", "gain * I", "keras", KERAS_INIT)(lambda gain=1.0: I.IdentityInit(float(gain)))
register("keras:orthogonal", "gain * Q, flattened (prod(shape[:-1]), shape[-1])", "keras", KERAS_INIT)(
    lambda gain=1.0: I.OrthogonalInit(float(gain), "keras", "keras:orthogonal"))
register("keras:variance_scaling", "Keras VarianceScaling: normal = truncated_normal (corrected by 0.8796), "
         "untruncated_normal, uniform; input_axes/output_axes", "keras", KERAS_INIT)(
    lambda scale=1.0, mode="fan_in", distribution="truncated_normal", input_axes=None, output_axes=None:
    _keras_vs(scale, mode, distribution, input_axes, output_axes))

# ---- jax / flax --------------------------------------------------------------------------------------------
register("jax:uniform", "U[0, scale) -- not symmetric", "jax", JAX_INIT)(
    lambda scale=1e-2: I.UniformInit(0.0, float(scale)))
register("jax:normal", "N(0, stddev^2)", "jax", JAX_INIT)(
    lambda stddev=1e-2: I.NormalInit(0.0, float(stddev)))
register("jax:truncated_normal", "stddev * Z, Z ~ N(0,1) cut at [lower, upper], no correction", "jax",
         JAX_INIT)(lambda stddev=1e-2, lower=-2.0, upper=2.0:
                   I.TruncatedNormalInit(0.0, float(stddev), float(lower), float(upper)))
register("jax:zeros", "0", "jax", JAX_INIT)(lambda: I.ConstantInit(0.0))
register("jax:ones", "1", "jax", JAX_INIT)(lambda: I.ConstantInit(1.0))
register("jax:constant", "value: a number, or an array broadcast to the shape (jnp.full)", "jax", JAX_INIT)(
    lambda value=0.0: _constant(value))
register("jax:variance_scaling", "JAX variance_scaling: normal untruncated, truncated corrected by 0.8796; "
         "in_axis/out_axis/batch_axis", "jax", JAX_INIT)(
    lambda scale=1.0, mode="fan_in", distribution="truncated_normal", in_axis=-2, out_axis=-1, batch_axis=():
    _jax_vs(scale, mode, distribution, in_axis, out_axis, batch_axis))
register("jax:orthogonal", "scale * Q, column_axis=-1 (rest x last dim) or 0 (dim 0 x rest)", "jax",
         JAX_INIT)(
    lambda scale=1.0, column_axis=-1:
    I.OrthogonalInit(float(scale), _column_flatten(column_axis), "jax:orthogonal"))
register("jax:delta_orthogonal", "orthogonal at (k-1)//2", "jax", JAX_INIT)(
    lambda scale=1.0, column_axis=-1: _delta(scale, column_axis))
register("flax:embed", "N(0, 1/features): variance_scaling(1, fan_in, normal, out_axis=0)", "flax",
         "flax/linen/linear.py Embed")(
    lambda: I.VarianceScaling(1.0, "fan_in", "normal", axes=Axes(in_axis=0, out_axis=0)))


def _axes_arg(axes: object) -> tuple[int, ...] | None:
    if axes is None:
        return None
    if isinstance(axes, int):
        return (axes,)
    return tuple(int(a) for a in axes)  # type: ignore[attr-defined]


def _keras_vs(scale: float, mode: str, distribution: str, input_axes: object = None,
              output_axes: object = None,
              name: str = "keras:variance_scaling") -> I.Initializer:
    return I.KerasVarianceScaling(float(scale), mode, str(distribution).lower(), _axes_arg(input_axes),
                                  _axes_arg(output_axes), name)


def _jax_axis(axis: object) -> int | tuple[int, ...]:
    return int(axis) if isinstance(axis, int) else tuple(int(a) for a in axis)  # type: ignore[attr-defined]


def _jax_vs(scale: float, mode: str, distribution: str, in_axis: object = -2, out_axis: object = -1,
            batch_axis: object = (), name: str = "jax:variance_scaling") -> I.Initializer:
    batch = (batch_axis,) if isinstance(batch_axis, int) else tuple(int(a) for a in batch_axis)  # type: ignore
    return I.JaxVarianceScaling(float(scale), mode, distribution, _jax_axis(in_axis), _jax_axis(out_axis),
                                batch, name)


def _column_flatten(column_axis: int) -> Literal["torch", "keras"]:
    # JAX moves column_axis last and flattens the rest; for axis 0 that is the transpose of torch's
    # (dim 0 x rest) flattening, and the transpose of a Haar matrix is Haar: the same law.
    if column_axis == -1:
        return "keras"
    if column_axis == 0:
        return "torch"
    raise ValueError(f"column_axis={column_axis} is not supported: use -1 (JAX's default, columns last) or 0")


def _delta(scale: float, column_axis: int) -> I.Initializer:
    if column_axis != -1:
        raise ValueError(f"delta_orthogonal: column_axis={column_axis} is not supported, use -1")
    return I.DeltaOrthogonalInit(float(scale))


def _constant(value: object) -> I.Initializer:
    if isinstance(value, bool):
        raise ValueError("constant: value must be a number or an array of numbers, got a bool")
    if isinstance(value, int | float):
        return I.ConstantInit(float(value))
    arr = ArrayConstantInit.of(value)
    return I.ConstantInit(arr.values[0]) if arr.shape == () else arr


def _stft(side: str, window: object, scaling: str | None, periodic: bool) -> I.Initializer:
    win = window if window is None or isinstance(window, str) else tuple(float(w) for w in window)  # type: ignore
    return STFTInit(side, win, scaling, bool(periodic))


def _keras_family(mode: str, scale: float, dist: str, name: str) -> Callable[[], I.Initializer]:
    def make() -> I.Initializer:
        return _keras_vs(scale, mode, "truncated_normal" if dist == "normal" else dist, name=name)
    return make


def _jax_family(mode: str, scale: float, dist: str, name: str) -> Callable[..., I.Initializer]:
    def make(in_axis: object = -2, out_axis: object = -1, batch_axis: object = ()) -> I.Initializer:
        return _jax_vs(scale, mode, "truncated_normal" if dist == "normal" else dist, in_axis, out_axis,
                       batch_axis, name)
    return make


_FAMILIES = (("glorot", "fan_avg", 1.0, "xavier"), ("he", "fan_in", 2.0, "kaiming"),
             ("lecun", "fan_in", 1.0, ""))
for _fam, _mode, _scale, _alias in _FAMILIES:
    for _dist in ("normal", "uniform"):
        _formula = (f"truncated normal, Var = {_scale:g}/{_mode}, corrected by 0.8796" if _dist == "normal"
                    else f"U(+-sqrt(3 * {_scale:g}/{_mode}))")
        register(f"keras:{_fam}_{_dist}", _formula, "keras", KERAS_INIT)(
            _keras_family(_mode, _scale, _dist, f"keras:{_fam}_{_dist}"))
        register(f"jax:{_fam}_{_dist}", _formula, "jax", JAX_INIT,
                 aliases=(f"jax:{_alias}_{_dist}",) if _alias else ())(
            _jax_family(_mode, _scale, _dist, f"jax:{_fam}_{_dist}"))

register("keras:default", "glorot_uniform kernel, zero bias", "keras", KERAS_INIT)(
    lambda: _keras_vs(1.0, "fan_avg", "uniform", name="keras:default"))
register("flax:default", "lecun_normal kernel (truncated, corrected), zero bias", "flax",
         "flax/linen/linear.py default_kernel_init")(
    lambda: _jax_vs(1.0, "fan_in", "truncated_normal", name="flax:default"))

# ---- timm --------------------------------------------------------------------------------------------------
register("timm:trunc_normal_", "torch semantics: absolute [a, b]", "timm", TIMM_INIT,
         aliases=("timm:trunc_normal",))(
    lambda mean=0.0, std=1.0, a=-2.0, b=2.0:
    I.TruncatedNormalInit(float(mean), float(std), float(a), float(b), absolute=True))
register("timm:trunc_normal_tf_", "TF semantics: std * Z cut at [a, b] std units, then + mean", "timm",
         TIMM_INIT, aliases=("timm:trunc_normal_tf",))(lambda mean=0.0, std=1.0, a=-2.0, b=2.0:
                    I.TruncatedNormalInit(float(mean), float(std), float(a), float(b)))
register("timm:lecun_normal", "variance_scaling(1, fan_in, truncated_normal), torch fans", "timm", TIMM_INIT,
         aliases=("timm:lecun_normal_",))(
    lambda: I.TorchFans(I.VarianceScaling(1.0, "fan_in", "truncated_normal")))
register("timm:variance_scaling", "variance_scaling_(scale, mode, distribution), torch fans", "timm",
         TIMM_INIT, aliases=("timm:variance_scaling_",))(
    lambda scale=1.0, mode="fan_in", distribution="normal":
    I.TorchFans(I.VarianceScaling(float(scale), mode, distribution)))

# ---- HuggingFace -------------------------------------------------------------------------------------------
register("hf:normal", "N(0, initializer_range^2), initializer_range = 0.02", "hf",
         "transformers/modeling_utils.py PreTrainedModel._init_weights")(
    lambda initializer_range=0.02: I.NormalInit(0.0, float(initializer_range)))
register("hf:lecun_normal", "trunc_normal_(std=sqrt(1/fan_in)/0.8796, a=-2, b=2) with ABSOLUTE bounds: no "
         "truncation, std 13.8% too large (reproduced on purpose)", "hf", "transformers/initialization.py")(
    lambda: _hf_lecun())


def _hf_lecun() -> I.Initializer:
    return _HFLecun()


class _HFLecun(I.Initializer):
    config_name = "hf:lecun_normal"

    def uses_fans(self) -> bool:
        return True

    def resolve(self, shape: Sequence[int], ctx: I.Context | None = None) -> Draw:
        ctx = ctx or I.Context()
        std = math.sqrt(1.0 / max(1.0, ctx.torch_fans_of(shape).fan_in)) / 0.87962566103423978
        return I.TruncatedNormalInit(0.0, std, -2.0, 2.0, absolute=True).resolve(shape, ctx)

"""The built-in layer types of torch (and HF ``Conv1D``, torchvision-style frozen norms), registered in lookup
order: most specific first (a transposed conv before a conv, every class before the predicates)."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ._registry import Kind, LayerType, ParamSpec, add, tensor_of


def _bias_of(weight: str) -> ParamSpec:
    return ParamSpec("bias", fans_of=weight)


def _linear(module: nn.Module) -> dict[str, ParamSpec]:
    return {"weight": ParamSpec("weight"), "bias": _bias_of("weight")}


def _hf_conv1d(module: nn.Module) -> dict[str, ParamSpec]:
    return {"weight": ParamSpec("weight", "in_out"), "bias": _bias_of("weight")}


def _conv(module: nn.Module) -> dict[str, ParamSpec]:
    groups = int(getattr(module, "groups", 1))
    return {"weight": ParamSpec("weight", groups=groups), "bias": _bias_of("weight")}


def standardized_w2(module: nn.Module) -> float | None:
    """``E[w^2]`` of the weight a weight-standardized conv uses (timm's ``StdConv2d``, ``ScaledStdConv2d``
    and their ``Same`` variants): each filter is standardized in forward (zero mean, unit variance) and, for
    the scaled ones, multiplied by ``gain * gamma / sqrt(fan_in)`` -- so the stored weight's scale drops out
    and the output is set by the gain (kept at its constructor value) and ``scale``. None for other layers.
    A gain on the meta device has no value yet: timm constructs it as ones (``gain_init=1``)."""
    weight = getattr(module, "weight", None)
    if "StdConv" not in type(module).__name__ or not isinstance(weight, torch.Tensor):
        return None
    gain = getattr(module, "gain", None)
    g2 = 1.0
    if isinstance(gain, torch.Tensor) and gain.device.type != "meta":
        g2 = float(gain.detach().double().square().mean())
    scale = getattr(module, "scale", 1.0)
    return g2 * float(scale) ** 2 if isinstance(scale, int | float) else None


def _conv_transpose(module: nn.Module) -> dict[str, ParamSpec]:
    groups = int(getattr(module, "groups", 1))
    stride = tuple(int(s) for s in getattr(module, "stride", (1,)))
    return {
        "weight": ParamSpec("weight", "torch_transposed", groups=groups, stride=stride),
        "bias": _bias_of("weight"),
    }


def _embedding(module: nn.Module) -> dict[str, ParamSpec]:
    return {"weight": ParamSpec("embedding")}


def _norm(module: nn.Module) -> dict[str, ParamSpec]:
    return {"weight": ParamSpec("norm_weight"), "bias": ParamSpec("norm_bias")}


def _attention(module: nn.Module) -> dict[str, ParamSpec]:
    specs = {n: ParamSpec("attention_in") for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight")}
    specs["in_proj_weight"] = ParamSpec("attention_in", blocks=3)
    specs["in_proj_bias"] = ParamSpec("bias", blocks=3, fans_of="in_proj_weight")
    specs["bias_k"] = ParamSpec("bias")
    specs["bias_v"] = ParamSpec("bias")
    specs["out_proj.weight"] = ParamSpec("attention_out")
    specs["out_proj.bias"] = _bias_of("out_proj.weight")
    return specs


def gates(module: nn.Module) -> int:
    """Gate blocks stacked along dim 0 of a recurrent weight (LSTM 4, GRU 3, RNN 1)."""
    mode = getattr(module, "mode", None) or type(module).__name__
    return 4 if "LSTM" in mode else 3 if "GRU" in mode else 1


def _rnn(module: nn.Module) -> dict[str, ParamSpec]:
    g = gates(module)
    specs: dict[str, ParamSpec] = {}
    for name, _ in module.named_parameters(recurse=False):
        if name.startswith("weight_ih"):
            specs[name] = ParamSpec("rnn_input", blocks=g)
        elif name.startswith("weight_hh"):
            specs[name] = ParamSpec("rnn_recurrent", blocks=g)
        elif name.startswith("weight_hr"):
            specs[name] = ParamSpec("rnn_input")
        elif name.startswith("bias"):
            specs[name] = ParamSpec("rnn_bias", blocks=g, fans_of=name.replace("bias", "weight"))
    return specs


def is_hf_conv1d(module: nn.Module) -> bool:
    """HuggingFace ``Conv1D``: a Linear whose weight is stored ``(in, out)``."""
    if type(module).__name__ != "Conv1D":  # cheap test first: predicates run for every unknown module
        return False
    w = getattr(module, "weight", None)
    return (
        isinstance(w, torch.Tensor)
        and w.dim() == 2
        and getattr(module, "nf", None) == w.shape[1]
    )


_FROZEN_BUFFERS = ("weight", "bias", "running_mean", "running_var")


def is_frozen_norm(module: nn.Module) -> bool:
    """A norm whose affine parameters are buffers (torchvision ``FrozenBatchNorm2d``, HF DETR's copy): no
    parameters, and the four buffers of a batch norm."""
    buffers = module._buffers
    if buffers.get("running_var") is None or any(p is not None for p in module._parameters.values()):
        return False
    return all(isinstance(buffers.get(b), torch.Tensor) for b in _FROZEN_BUFFERS)


def frozen_norm_gain(module: nn.Module | None) -> float:
    """``E_c[(w_c / sqrt(var_c + eps))^2]`` of a frozen norm: it multiplies a centred input's second
    moment by this (identity stats: 1). Nothing to initialize: its buffers are the model's statistics."""
    if module is None:
        return 1.0
    w, var = tensor_of(module, "weight"), tensor_of(module, "running_var")
    if w is None or var is None or w.device.type == "meta":
        return 1.0
    eps = float(getattr(module, "eps", 1e-5))
    g = float((w.detach().double() ** 2 / (var.detach().double() + eps)).mean())
    return g if math.isfinite(g) else 1.0


def _has_child_params(module: nn.Module) -> bool:
    """Whether a submodule holds parameters: a norm's parameter-free children are its activation and
    dropout (timm's ``RmsNormAct2d``: ``act``, ``drop``), which discovery reads as such."""
    return any(True for child in module.children() for _ in child.parameters())


def is_named_norm(module: nn.Module) -> bool:
    """A norm written by hand (HF ``LlamaRMSNorm``, ``T5LayerNorm``, timm ``RmsNormAct2d``...): a module
    whose class name says Norm and whose only parameters are its own 1-D ``weight``/``bias`` (HF's own init
    treats these classes as norms, 1/0), unless its weight is an offset from one (:func:`is_offset_norm`)."""
    return _hand_written_norm(module) and not is_offset_norm(module) and not is_response_norm(module)


def is_response_norm(module: nn.Module) -> bool:
    """A hand-written "norm" whose output scales with its input: ConvNeXt-V2's global response norm, ``x +
    w * (x * N(x)) + b`` with ``N`` each channel's norm over the positions relative to the channels' mean
    (timm's ``GlobalResponseNorm``). It does not normalize: with its ``w`` and ``b`` at zero, as its authors
    start them, it is the identity (planned as a norm with unit output, the layer after it measured 0.41x).
    Read by running a copy with its parameters zeroed on an input and on twice that input, once per class."""
    if type(module).forward in _STOCK_FORWARDS or not _hand_written_norm(module):
        return False
    w = getattr(module, "weight", None)
    if not isinstance(w, nn.Parameter) or w.device.type == "meta":
        return False
    probe = _zero_probe(module)
    return probe is not None and probe[1]


def _hand_written_norm(module: nn.Module) -> bool:
    if "Norm" not in type(module).__name__ or _has_child_params(module):
        return False
    params = dict(module.named_parameters(recurse=False))
    return bool(params) and not set(params) - {"weight", "bias"} and all(p.dim() == 1
                                                                         for p in params.values())


def is_offset_norm(module: nn.Module) -> bool:
    """A norm whose weight is an offset from one, ``x * (1 + weight)``: HF Gemma's ``GemmaRMSNorm``,
    Nemotron's ``LayerNorm1P`` (an ``nn.LayerNorm`` whose forward adds 1). Read by running a copy of the
    module with its parameters zeroed (:func:`_zero_probe`), once per class; where that cannot
    run, a weight that starts at zero is taken for the offset convention. Planned as ones, Nemotron's norms
    doubled every output (its step-0 loss 9.6 for ln V = 6.9). Its weight is planned like a bias (0)."""
    if type(module).forward in _STOCK_FORWARDS:  # torch's own norms: the weight is the gain (asked first:
        return False  # discovery asks this of every module instance, and most norms are torch's)
    w = getattr(module, "weight", None)
    if not _hand_written_norm(module) or not isinstance(w, nn.Parameter) or w.device.type == "meta":
        return False
    probe = _zero_probe(module)
    if probe is not None:
        return probe[0] and not probe[1]
    # no answer: a torch norm's subclass keeps torch's convention (timm's BatchNormAct2d, started at zero as
    # the last norm of a residual branch, is a zero gain); a hand-written norm started at zero is Gemma's
    return not isinstance(module, _TORCH_NORMS) and not bool(w.detach().ne(0).any())


_STOCK_FORWARDS = {c.forward for c in (nn.LayerNorm, nn.RMSNorm, nn.GroupNorm, nn.LocalResponseNorm,
                                       nn.modules.batchnorm._BatchNorm, nn.SyncBatchNorm,
                                       nn.modules.instancenorm._InstanceNorm)}
_ZERO_PROBES: dict[type, tuple[bool, bool] | None] = {}
_TORCH_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.RMSNorm, nn.LocalResponseNorm)


def _zero_probe(module: nn.Module) -> tuple[bool, bool] | None:
    """Of a copy of ``module`` with every parameter zero (once per class): whether it still passes a signal
    (its weight is then an offset from one) and whether its output doubles with its input (it does not
    normalize: :func:`is_response_norm`). None when the copy runs on none of a ``(2, *normalized_shape)``
    batch, a channels-last and a channels-first map."""
    cls = type(module)
    if cls not in _ZERO_PROBES:
        _ZERO_PROBES[cls] = _run_zero_probe(module)
    return _ZERO_PROBES[cls]


def _run_zero_probe(module: nn.Module) -> tuple[bool, bool] | None:
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    shape = tuple(getattr(module, "normalized_shape", ()) or weight.shape)
    probe = copy.deepcopy(module).float()
    for p in probe.parameters(recurse=False):
        p.requires_grad_(False).zero_()
    c = weight.shape[0]
    for layout in ((2, *shape), (2, 4, 4, c), (2, c, 4, 4)):
        x = torch.randn(layout, generator=torch.Generator().manual_seed(0))
        try:
            with torch.no_grad(), torch.random.fork_rng(devices=[]):  # (user code: the global generator
                y, y2 = probe(x), probe(2.0 * x)  # is left as it was)
        except Exception:  # user code on a shape it may not take (timm's BatchNormAct2d asserts 4-D)
            continue
        if isinstance(y, torch.Tensor) and isinstance(y2, torch.Tensor) and y.shape == y2.shape == x.shape:
            passes = bool(y.abs().max() > 1e-3)
            return passes, passes and bool(torch.allclose(y2, 2.0 * y, rtol=1e-3, atol=1e-6))
    return None


def _offset_norm(module: nn.Module) -> dict[str, ParamSpec]:
    specs = {"weight": ParamSpec("norm_bias")}
    if isinstance(getattr(module, "bias", None), nn.Parameter):
        specs["bias"] = ParamSpec("norm_bias")
    return specs


def centres_channels(module: nn.Module | None) -> bool:
    """A norm that subtracts each channel's mean over the positions (and the batch): BatchNorm in training
    mode (or without running statistics), InstanceNorm. What is the same at every position of every sample
    (a conv's response to the mean of a ReLU before it) leaves with it."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        return module.training or not module.track_running_stats
    return isinstance(module, nn.modules.instancenorm._InstanceNorm)


def centres_features(module: nn.Module | None) -> bool:
    """A norm that subtracts each position's mean over its features: LayerNorm (timm's and HF's channels-
    first ones subclass it). What every channel has alike (the mean of a max pool before it) leaves with it;
    an RMS norm keeps it."""
    return isinstance(module, nn.LayerNorm)


def per_position(kind: Kind, module: nn.Module | None) -> bool:
    """A layer that maps each position on its own: a linear map, a 1x1 conv of stride 1, a norm over each
    position's features (LayerNorm, RMSNorm; not BatchNorm, GroupNorm or InstanceNorm, which normalize
    over the positions). Positions that a zero pad added stay apart from the rest through it."""
    if kind in (Kind.LINEAR, Kind.BILINEAR, Kind.HF_CONV1D):
        return True
    if kind is Kind.NORM:
        return not isinstance(module, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LocalResponseNorm))
    if kind is Kind.CONV and isinstance(module, nn.modules.conv._ConvNd):
        return (all(k == 1 for k in module.kernel_size) and all(s == 1 for s in module.stride)
                and not any(module._reversed_padding_repeated_twice))
    return False


def eps_kept(module: nn.Module | None, q: float) -> float:
    """The share of a unit output a norm keeps when its input's second moment ``q`` is near its ``eps``:
    ``x / sqrt(q + eps)`` has ``q / (q + eps)`` (MobileNetV5's 1e-5 layer scale feeds an RMS norm 4e-10
    against eps 1e-6: it outputs 4e-4, not 1). A zero input stays planned as unit (the walker predicts
    zero for constants it did not read); BatchNorm normalizes by statistics the batch or its buffers set."""
    eps = getattr(module, "eps", None)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) or not (isinstance(eps, float) and eps > 0 < q):
        return 1.0
    return q / (q + eps) if q < 1e3 * eps else 1.0


def centres_one_entry(module: nn.Module | None) -> bool:
    """A LayerNorm over a single entry: ``x - mean(x)`` is 0, so its output is its bias, whatever comes in
    (timm's CSATv2 has such norms in its attention over one channel)."""
    return isinstance(module, nn.LayerNorm) and math.prod(module.normalized_shape) == 1


def offset_weight(info_specs: dict[str, ParamSpec]) -> bool:
    """True for a norm whose ``weight`` is an offset from one (:func:`is_offset_norm`)."""
    spec = info_specs.get("weight")
    return spec is not None and spec.role == "norm_bias"


def embedding_gain(module: nn.Module | None) -> float:
    """The factor an embedding's forward multiplies its rows by: HF's scaled word embeddings (Gemma's
    ``embed_scale = sqrt(d)``) keep it on the module; plain embeddings 1."""
    scale = getattr(module, "embed_scale", None) if module is not None else None
    if isinstance(scale, torch.Tensor) and scale.numel() == 1 and scale.device.type != "meta":
        return float(scale.detach().reshape(()))
    return float(scale) if isinstance(scale, int | float) and scale > 0 else 1.0


# a norm its input sets, the identity at zero (its rule: ``AutoChooser._norm``, ``propagate.layer_moment``)
RESPONSE_NORM = LayerType("response_norm", Kind.NORM, _offset_norm, test=is_response_norm, normalizes=False)


def _register() -> None:
    conv_t = nn.modules.conv._ConvTransposeNd
    for t in (
        LayerType("linear", Kind.LINEAR, _linear, (nn.Linear,), homogeneous=True, data_init=True),
        LayerType("bilinear", Kind.BILINEAR, _linear, (nn.Bilinear,), homogeneous=True, data_init=True),
        LayerType("conv_transpose", Kind.CONV_TRANSPOSE, _conv_transpose, (conv_t,), homogeneous=True,
                  data_init=True),
        LayerType("conv", Kind.CONV, _conv, (nn.modules.conv._ConvNd,), homogeneous=True, data_init=True),
        LayerType("embedding", Kind.EMBEDDING, _embedding, (nn.Embedding,)),
        LayerType("embedding_bag", Kind.EMBEDDING_BAG, _embedding, (nn.EmbeddingBag,)),
        LayerType("rnn", Kind.RNN, _rnn, (nn.RNNBase, nn.RNNCellBase)),
        LayerType("attention", Kind.ATTENTION, _attention, (nn.MultiheadAttention,), homogeneous=True,
                  data_init=True),
        RESPONSE_NORM,
        LayerType("offset_norm", Kind.NORM, _offset_norm, test=is_offset_norm),  # (before norm: subclasses)
        LayerType("norm", Kind.NORM, _norm, _TORCH_NORMS),
        LayerType("hf_conv1d", Kind.HF_CONV1D, _hf_conv1d, test=is_hf_conv1d, homogeneous=True),
        LayerType("frozen_norm", Kind.NORM, lambda m: {}, test=is_frozen_norm, normalizes=False),
        LayerType("named_norm", Kind.NORM, _norm, test=is_named_norm),
    ):
        add(t)


_register()
RAW = LayerType("raw", Kind.RAW, lambda m: {}, homogeneous=False)

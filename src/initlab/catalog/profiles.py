"""Module-default profiles: what each framework (or model family) puts in each *role* of a layer.

Roles: ``weight`` (Linear/Conv kernels), ``bias``, ``embedding``, ``rnn_input``, ``rnn_recurrent``,
``rnn_bias``,
``attention_in`` (packed q/k/v), ``attention_out``, ``residual_out`` (the last projection of a residual
branch),
``norm_weight``, ``norm_bias``, ``head`` (the classifier). Bias rules that depend on fans are resolved with
the
fans of the layer's weight. ``forget_bias`` is the LSTM forget-gate bias (``None``: follow ``rnn_bias``).
Model-level code maps layers to roles; this module only says what each profile means.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .parse import parse_call


@dataclass(frozen=True)
class Profile:
    name: str
    weight: str
    bias: str = "zeros"
    embedding: str = "normal(0, 1)"
    rnn_input: str | None = None
    rnn_recurrent: str | None = None
    rnn_bias: str = "zeros"
    forget_bias: float | None = None
    attention_in: str | None = None
    attention_out: str | None = None
    residual_out: str | None = None
    norm_weight: str = "ones"
    norm_bias: str = "zeros"
    head: str | None = None
    conv: str | None = None  # conv weights AND biases (timm:vit's patch embedding keeps torch's default)
    prelu: str = "constant(0.25)"  # PReLU's slope (torch 0.25, Keras 0, Flax 0.01)
    named: tuple[tuple[str, str], ...] = ()  # (glob on qualified parameter names, scheme): tokens, pos_embed
    fix_init: bool = False  # timm: attn.proj / mlp.fc2 of block i divided by sqrt(2 (i + 1))
    fans: str = "initlab"  # whose fans: "initlab" (exact per group/gate/stride), or a framework's own layers'
    source: str = ""
    notes: dict[str, str] = field(default_factory=dict)

    def rule(self, role: str) -> str:
        """The scheme for ``role``, falling back to ``weight`` for weight-like roles."""
        value = getattr(self, role, None)
        if value is None:
            return self.weight if role not in ("rnn_bias",) else self.bias
        return str(value)


PROFILES: dict[str, Profile] = {
    "torch:default": Profile(
        "torch:default", weight="torch:default", bias="torch:default", embedding="normal(0, 1)",
        rnn_input="torch:default", rnn_recurrent="torch:default", rnn_bias="torch:default",
        attention_in="torch:xavier_uniform", attention_out="torch:default", fans="torch",
        source="torch/nn/modules",
        notes={"rnn": "every RNN parameter U(+-1/sqrt(hidden)): resolved with the recurrent weight's fans",
               "attention": "in_proj xavier_uniform on the stacked (3E, E) matrix, in_proj bias 0, out_proj "
                            "bias 0"}),
    "keras:default": Profile(
        "keras:default", weight="keras:glorot_uniform", embedding="keras:random_uniform",
        rnn_input="keras:glorot_uniform", rnn_recurrent="keras:orthogonal", forget_bias=1.0,
        attention_in="keras:glorot_uniform", attention_out="keras:glorot_uniform", fans="keras",
        prelu="zeros",
        source="keras layers",
        notes={"rnn": "kernel glorot over the whole (in, gates x H) kernel; recurrent ONE orthogonal "
                      "(H, gates x H)"}),
    "flax:default": Profile(
        "flax:default", weight="jax:lecun_normal", embedding="flax:embed", rnn_input="jax:lecun_normal",
        rnn_recurrent="jax:orthogonal", attention_in="jax:lecun_normal", attention_out="jax:lecun_normal",
        fans="flax", prelu="constant(0.01)", source="flax/linen"),
    "timm:vit": Profile(
        "timm:vit", weight="vit_trunc_normal", embedding="vit_trunc_normal", attention_in="vit_trunc_normal",
        attention_out="vit_trunc_normal", conv="torch:default", fans="torch",
        named=(("*pos_embed", "vit_trunc_normal"), ("*cls_token", "normal(0, 1e-6)"),
               ("*reg_token", "normal(0, 1e-6)")),
        source="timm VisionTransformer.init_weights (mode ''): init_weights_vit_timm, patch embedding "
               "reset_parameters; timm:vit(fix_init=True) adds fix_init_weight"),
    "hf:gpt2": Profile(
        "hf:gpt2", weight="gpt2_normal", embedding="gpt2_normal", attention_in="gpt2_normal",
        attention_out="gpt2_residual", residual_out="gpt2_residual", rnn_input="gpt2_normal",
        source="transformers GPT2PreTrainedModel._init_weights",
        notes={"residual_out": "n_layer = number of residual blocks found"}),
    "hf:bert": Profile(
        "hf:bert", weight="hf:normal", embedding="hf:normal", attention_in="hf:normal",
        attention_out="hf:normal",
        rnn_input="torch:xavier_uniform", rnn_recurrent="torch:xavier_uniform",
        source="transformers PreTrainedModel._init_weights"),
    "hf:vit": Profile(
        "hf:vit", weight="hf:normal", embedding="hf:normal", attention_in="hf:normal",
        attention_out="hf:normal",
        rnn_input="torch:xavier_uniform", rnn_recurrent="torch:xavier_uniform",
        named=(("*cls_token", "truncated_normal_abs(0, 0.02, -2, 2)"),
               ("*position_embeddings", "truncated_normal_abs(0, 0.02, -2, 2)"), ("*mask_token", "zeros")),
        source="transformers ViTPreTrainedModel._init_weights (base rules + ViTEmbeddings tokens)"),
}
OPTIONS = {"fix_init"}


def profile(name: str) -> Profile | None:
    """The profile called ``name`` (call form for options: ``"timm:vit(fix_init=True)"``), or None when
    ``name`` is a plain scheme."""
    if name in PROFILES:
        return PROFILES[name]
    if "(" not in name:
        return None
    base, args, kwargs = parse_call(name)
    if base not in PROFILES:
        return None
    if args or set(kwargs) - OPTIONS:
        raise ValueError(f"profile {base} takes only keyword options {sorted(OPTIONS)}, got {name!r}")
    return replace(PROFILES[base], name=name, fix_init=bool(kwargs.get("fix_init", False)))


def scheme_profile(scheme: str) -> Profile:
    """A profile that applies one scheme to every weight role (biases 0, norms 1/0, embeddings N(0, 1))."""
    return replace(Profile(scheme, weight=scheme, embedding="normal(0, 1)", source="initlab"), name=scheme)

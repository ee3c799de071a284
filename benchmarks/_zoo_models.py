"""The zoo's models: torchvision (classification + segmentation), timm (smallest variant per family) and HF
transformers (tiny configs). Each entry builds a model with `pretrained=False`/from a config (no download) and
makes a random input of the kind the model takes (a tensor, a tuple or a dict of keyword inputs).

Used by benchmarks/zoo.py and tests/zoo/. Imports torchvision/timm through the CPU import shim.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

import _torchvision_shim

_torchvision_shim.install()

Batch = Any
BATCH = 2


@dataclass
class Entry:
    name: str
    source: str  # torchvision | timm | hf
    family: str
    build: Callable[[], nn.Module]
    make_input: Callable[[nn.Module, torch.Generator], Batch]
    vocab: int | None = None  # language models: step-0 loss is compared with ln(vocab)
    full_input: Callable[[nn.Module, torch.Generator], Batch] | None = None  # if the small one does not fit
    tags: list[str] = field(default_factory=list)


def image(size: int | tuple[int, int], channels: int = 3, key: str | None = None
          ) -> Callable[[nn.Module, torch.Generator], Batch]:
    h, w = (size, size) if isinstance(size, int) else size

    def make(model: nn.Module, g: torch.Generator) -> Batch:
        x = torch.randn(BATCH, channels, h, w, generator=g)
        return {key: x} if key else x
    return make


# ---- torchvision ------------------------------------------------------------------------------------------
def _tv_size(name: str) -> int:
    if name.startswith("inception"):
        return 299
    if name.startswith("maxvit"):
        return 224
    if name.startswith("vit_"):  # built for its input: the least multiple of its patch >= 64 (vit_h_14: 70)
        patch = int(name.rsplit("_", 1)[1])
        return -(-64 // patch) * patch
    return 64  # a CNN takes any size, a torchvision ViT is built for it: small is fast on a shared CPU


def _tv_build(name: str, **kwargs: Any) -> nn.Module:
    import torchvision.models as tvm

    if name.startswith("vit_"):
        kwargs["image_size"] = _tv_size(name)
    return tvm.get_model(name, weights=None, **kwargs)


def torchvision_entries() -> list[Entry]:
    import torchvision.models as tvm

    out = []
    for name in tvm.list_models(module=tvm):
        out.append(Entry(name, "torchvision", "classification", lambda n=name: _tv_build(n),
                         image(_tv_size(name))))
    for name in tvm.list_models(module=tvm.segmentation):
        out.append(Entry(name, "torchvision", "segmentation",
                         lambda n=name: _tv_build(n, weights_backbone=None), image(64)))
    return out


# ---- timm -------------------------------------------------------------------------------------------------
_SIZE_WORDS = ["pico", "atto", "femto", "nano", "xxtiny", "xxs", "xx", "xtiny", "xs", "tiny", "ti", "t",
               "mini", "small", "s", "medium", "m", "base", "b", "large", "l", "x", "xl", "huge", "h",
               "giant", "g"]
_HUGE = re.compile(r"(giant|huge|enormous|gigantic|\d+b_|_\d+b|large|_3\d\d|_4\d\d|_5\d\d)")
_TOO_BIG = re.compile(r"(giant|huge|enormous|gigantic|\d+b_|_\d+b$|_[4-9]\d\dm)")  # > 300M parameters


def _smallness(name: str) -> tuple[int, int, int, int, str]:
    """A sort key that puts a family's smallest variant first (by name: building all 1300 costs minutes)."""
    tokens = re.split(r"[_\-]", name)
    rank = min((_SIZE_WORDS.index(t) for t in tokens[1:] if t in _SIZE_WORDS), default=16)
    numbers = [int(n) for n in re.findall(r"\d+", name)]
    return (bool(_HUGE.search(name)), rank, numbers[0] if numbers else 0, len(name), name)


def timm_families() -> dict[str, list[str]]:
    import timm

    families: dict[str, list[str]] = {}
    for module in timm.list_modules():
        for n in timm.list_models(module=module):
            stem = re.match(r"[a-z]+", n)
            key = f"{module}/{stem.group() if stem else n}"
            if key.endswith("/test"):  # timm's own test models: the CI subset uses them
                continue
            families.setdefault(key, []).append(n)
    return families


SMALL = 64  # input side wherever the model takes it: a shared CPU runs 300 models


def _timm_build(name: str) -> nn.Module:
    """``img_size=64`` for the fixed-size models that accept it (ViTs...), else the default size. Only the
    successful construction is timed (``_zoo_build_seconds``), not a failed try or the probe forward."""
    import time

    import timm

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is not None and getattr(cfg, "fixed_input_size", False):
        try:
            start = time.perf_counter()
            model = timm.create_model(name, pretrained=False, img_size=SMALL)
            seconds = time.perf_counter() - start
            with torch.no_grad():
                model.eval()(torch.zeros(1, 3, SMALL, SMALL))
            model.train()
            model._zoo_build_seconds = seconds  # type: ignore[assignment]
            model._zoo_img_size = SMALL  # type: ignore[assignment]
            return model
        except Exception:
            pass
    start = time.perf_counter()
    model = timm.create_model(name, pretrained=False)
    model._zoo_build_seconds = time.perf_counter() - start  # type: ignore[assignment]
    return model


def _timm_input(name: str, small: bool = True) -> Callable[[nn.Module, torch.Generator], Batch]:
    def make(model: nn.Module, g: torch.Generator) -> Batch:
        cfg = getattr(model, "pretrained_cfg", {}) or {}
        _, h, w = cfg.get("input_size", (3, 224, 224))
        if hasattr(model, "_zoo_img_size"):
            h = w = model._zoo_img_size
        elif small and not cfg.get("fixed_input_size", False) and min(h, w) > SMALL:
            h = w = SMALL  # a CNN takes any size
        return torch.randn(BATCH, 3, h, w, generator=g)
    return make


def timm_entry(name: str, family: str = "") -> Entry:
    return Entry(name, "timm", family or name, lambda: _timm_build(name), _timm_input(name),
                 full_input=_timm_input(name, small=False))


def timm_entries(target: int = 110) -> list[Entry]:
    """The smallest variant of the largest name family of every timm module (every architecture), then of
    the next families of the modules that hold several, until ``target`` models."""
    by_module: dict[str, list[tuple[str, list[str]]]] = {}
    for fam, names in sorted(timm_families().items()):
        by_module.setdefault(fam.split("/")[0], []).append((fam, names))
    for fams in by_module.values():
        fams.sort(key=lambda f: -len(f[1]))
    by_module = {m: [f for f in fams if not _TOO_BIG.search(min(f[1], key=_smallness))]
                 for m, fams in by_module.items()}
    chosen = [fams[0] for fams in by_module.values() if fams]
    extra = sorted((f for fams in by_module.values() for f in fams[1:]), key=lambda f: -len(f[1]))
    chosen += extra[: max(0, target - len(chosen))]
    return [timm_entry(_PICK.get(fam) or min(names, key=_smallness), fam) for fam, names in chosen]


_PICK = {"vision_transformer_sam/samvit": "samvit_base_patch16_224"}  # the others take 1024x1024


# ---- HF transformers ---------------------------------------------------------------------------------------
V = 1000  # vocabulary of the tiny language models
SEQ = 16


def tokens(*keys: str, seq: int = SEQ) -> Callable[[nn.Module, torch.Generator], Batch]:
    def make(model: nn.Module, g: torch.Generator) -> Batch:
        vocab = getattr(model.config, "vocab_size", V)
        return {k: torch.randint(0, vocab, (BATCH, seq), generator=g) for k in keys}
    return make


def whisper_input(model: nn.Module, g: torch.Generator) -> Batch:
    c = model.config
    feats = torch.randn(BATCH, c.num_mel_bins, 2 * c.max_source_positions, generator=g)
    ids = torch.randint(0, c.vocab_size, (BATCH, 8), generator=g)
    return {"input_features": feats, "decoder_input_ids": ids}


def audio(n: int) -> Callable[[nn.Module, torch.Generator], Batch]:
    return lambda model, g: {"input_values": torch.randn(BATCH, n, generator=g)}


TEXT = dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
            max_position_embeddings=64)
NO_DROP = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
LLAMA = dict(TEXT, num_key_value_heads=2)
ENC_DEC = dict(vocab_size=V, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
               decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
               max_position_embeddings=64,
               dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
VISION = dict(image_size=32, patch_size=4, num_channels=3, hidden_size=64, num_hidden_layers=2,
              num_attention_heads=4, intermediate_size=128, **NO_DROP)

# (name, model class, config class, config kwargs, input maker, is a language model, tags)
HF_SPECS: list[tuple[str, str, str, dict[str, Any], Any, bool, list[str]]] = [
    ("bert-mlm", "BertForMaskedLM", "BertConfig", dict(TEXT, **NO_DROP), tokens("input_ids"), True,
     ["encoder", "tied"]),
    ("roberta-mlm", "RobertaForMaskedLM", "RobertaConfig", dict(TEXT, **NO_DROP, max_position_embeddings=80),
     tokens("input_ids"), True, ["encoder", "tied"]),
    ("distilbert-mlm", "DistilBertForMaskedLM", "DistilBertConfig",
     dict(vocab_size=V, dim=64, n_layers=2, n_heads=4, hidden_dim=128, max_position_embeddings=64,
          dropout=0.0, attention_dropout=0.0), tokens("input_ids"), True, ["encoder", "tied"]),
    ("albert-mlm", "AlbertForMaskedLM", "AlbertConfig", dict(TEXT, embedding_size=32, **NO_DROP),
     tokens("input_ids"), True, ["encoder", "tied"]),
    ("electra-mlm", "ElectraForMaskedLM", "ElectraConfig", dict(TEXT, embedding_size=32, **NO_DROP),
     tokens("input_ids"), True, ["encoder"]),
    ("deberta-v2-mlm", "DebertaV2ForMaskedLM", "DebertaV2Config", dict(TEXT, **NO_DROP), tokens("input_ids"),
     True, ["encoder", "tied"]),
    ("bert-cls", "BertForSequenceClassification", "BertConfig", dict(TEXT, **NO_DROP), tokens("input_ids"),
     False, ["encoder"]),
    ("gpt2", "GPT2LMHeadModel", "GPT2Config",
     dict(vocab_size=V, n_embd=64, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
          attn_pdrop=0.0), tokens("input_ids"), True, ["decoder", "tied"]),
    ("opt", "OPTForCausalLM", "OPTConfig",
     dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, ffn_dim=128,
          max_position_embeddings=64, word_embed_proj_dim=64, dropout=0.0, attention_dropout=0.0),
     tokens("input_ids"), True, ["decoder", "tied"]),
    ("gemma", "GemmaForCausalLM", "GemmaConfig", dict(LLAMA, head_dim=16), tokens("input_ids"), True,
     ["decoder", "tied"]),
    ("bloom", "BloomForCausalLM", "BloomConfig",
     dict(vocab_size=V, hidden_size=64, n_layer=2, n_head=4, hidden_dropout=0.0, attention_dropout=0.0),
     tokens("input_ids"), True, ["decoder", "tied"]),
    ("falcon", "FalconForCausalLM", "FalconConfig",
     dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, hidden_dropout=0.0,
          attention_dropout=0.0), tokens("input_ids"), True, ["decoder", "tied"]),
    ("gpt-neo", "GPTNeoForCausalLM", "GPTNeoConfig",
     dict(vocab_size=V, hidden_size=64, num_layers=2, num_heads=4, attention_types=[[["global", "local"], 1]],
          max_position_embeddings=64, window_size=16, embed_dropout=0.0, attention_dropout=0.0,
          resid_dropout=0.0), tokens("input_ids"), True, ["decoder", "tied"]),
    ("llama", "LlamaForCausalLM", "LlamaConfig", dict(LLAMA), tokens("input_ids"), True,
     ["decoder", "untied"]),
    ("mistral", "MistralForCausalLM", "MistralConfig", dict(LLAMA), tokens("input_ids"), True,
     ["decoder", "untied"]),
    ("qwen2", "Qwen2ForCausalLM", "Qwen2Config", dict(LLAMA, tie_word_embeddings=False), tokens("input_ids"),
     True, ["decoder", "untied"]),
    ("phi3", "Phi3ForCausalLM", "Phi3Config", dict(LLAMA, pad_token_id=0), tokens("input_ids"), True,
     ["decoder", "untied"]),
    ("gpt-neox", "GPTNeoXForCausalLM", "GPTNeoXConfig", dict(TEXT, hidden_dropout=0.0, attention_dropout=0.0),
     tokens("input_ids"), True, ["decoder", "untied"]),
    ("mixtral", "MixtralForCausalLM", "MixtralConfig",
     dict(LLAMA, num_local_experts=4, num_experts_per_tok=2),
     tokens("input_ids"), True, ["decoder", "moe"]),
    ("qwen2-moe", "Qwen2MoeForCausalLM", "Qwen2MoeConfig",
     dict(LLAMA, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64,
          shared_expert_intermediate_size=64), tokens("input_ids"), True, ["decoder", "moe"]),
    ("mamba", "MambaForCausalLM", "MambaConfig",
     dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, state_size=8, use_mambapy=False),
     tokens("input_ids"), True, ["decoder", "ssm"]),
    ("t5", "T5ForConditionalGeneration", "T5Config",
     dict(vocab_size=V, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, dropout_rate=0.0),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder"]),
    ("bart", "BartForConditionalGeneration", "BartConfig", dict(ENC_DEC),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder", "tied"]),
    ("marian", "MarianMTModel", "MarianConfig", dict(ENC_DEC, decoder_vocab_size=V, pad_token_id=0),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder"]),
    ("pegasus", "PegasusForConditionalGeneration", "PegasusConfig", dict(ENC_DEC),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder"]),
    ("vit", "ViTForImageClassification", "ViTConfig", dict(VISION), image(32, key="pixel_values"), False,
     ["vision"]),
    ("deit", "DeiTForImageClassification", "DeiTConfig", dict(VISION), image(32, key="pixel_values"), False,
     ["vision"]),
    ("beit", "BeitForImageClassification", "BeitConfig", dict(VISION, vocab_size=V),
     image(32, key="pixel_values"), False, ["vision"]),
    ("dinov2", "Dinov2Model", "Dinov2Config", dict(VISION, hidden_dropout_prob=0.0),
     image(32, key="pixel_values"), False, ["vision"]),
    ("swin", "SwinForImageClassification", "SwinConfig",
     dict(image_size=32, patch_size=2, embed_dim=32, depths=[1, 1], num_heads=[2, 4], window_size=4),
     image(32, key="pixel_values"), False, ["vision"]),
    ("convnext", "ConvNextForImageClassification", "ConvNextConfig",
     dict(hidden_sizes=[16, 32], depths=[1, 1], num_stages=2), image(32, key="pixel_values"), False,
     ["vision"]),
    ("resnet", "ResNetForImageClassification", "ResNetConfig",
     dict(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic"),
     image(32, key="pixel_values"), False, ["vision"]),
    ("segformer", "SegformerForSemanticSegmentation", "SegformerConfig",
     dict(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[16, 32], patch_sizes=[7, 3],
          strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2], decoder_hidden_size=32),
     image(32, key="pixel_values"), False, ["vision"]),
    ("clip-vision", "CLIPVisionModel", "CLIPVisionConfig",
     dict(image_size=32, patch_size=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
          intermediate_size=128), image(32, key="pixel_values"), False, ["vision"]),
    ("wav2vec2", "Wav2Vec2ForCTC", "Wav2Vec2Config",
     dict(vocab_size=32, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
          conv_dim=(32, 32), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
          num_conv_pos_embedding_groups=4, hidden_dropout=0.0, attention_dropout=0.0, feat_proj_dropout=0.0,
          final_dropout=0.0, activation_dropout=0.0, layerdrop=0.0, mask_time_prob=0.0),
     audio(1600), False, ["audio"]),
    ("hubert", "HubertModel", "HubertConfig",
     dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
          conv_dim=(32, 32), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
          num_conv_pos_embedding_groups=4, hidden_dropout=0.0, attention_dropout=0.0, feat_proj_dropout=0.0,
          activation_dropout=0.0, layerdrop=0.0, mask_time_prob=0.0),
     audio(1600), False, ["audio"]),
    ("whisper", "WhisperForConditionalGeneration", "WhisperConfig",
     dict(vocab_size=V, num_mel_bins=16, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
          decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128, d_model=64,
          max_source_positions=32, max_target_positions=32, dropout=0.0, attention_dropout=0.0,
          activation_dropout=0.0, decoder_start_token_id=1, pad_token_id=0, bos_token_id=1, eos_token_id=2),
     whisper_input, True, ["audio", "encoder-decoder"]),
    ("detr", "DetrForObjectDetection", "DetrConfig", {}, image(64, key="pixel_values"), False,
     ["vision", "detection"]),
]


# the second round: 31 more architectures, built from small configs the same way (newer decoders, MLA and
# shared-expert MoE, SSM hybrids, RWKV, relative-attention encoders, vision and audio families)
CONV_AUDIO = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                  conv_dim=(32, 32), conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16,
                  num_conv_pos_embedding_groups=4, hidden_dropout=0.0, attention_dropout=0.0,
                  feat_proj_dropout=0.0, activation_dropout=0.0, layerdrop=0.0, mask_time_prob=0.0)
GPTJ = dict(vocab_size=V, n_embd=64, n_layer=2, n_head=4, n_positions=64, rotary_dim=8, resid_pdrop=0.0,
            embd_pdrop=0.0, attn_pdrop=0.0)
DECODER = ["decoder", "untied"]
HF_SPECS_2: list[tuple[str, str, str, dict[str, Any], Any, bool, list[str]]] = [
    ("gemma2", "Gemma2ForCausalLM", "Gemma2Config", dict(LLAMA, head_dim=16), tokens("input_ids"), True,
     ["decoder", "tied"]),
    ("gemma3", "Gemma3ForCausalLM", "Gemma3TextConfig", dict(LLAMA, head_dim=16, sliding_window=8),
     tokens("input_ids"), True, ["decoder", "tied"]),
    ("qwen3", "Qwen3ForCausalLM", "Qwen3Config", dict(LLAMA, head_dim=16), tokens("input_ids"), True,
     DECODER),
    ("qwen3-moe", "Qwen3MoeForCausalLM", "Qwen3MoeConfig",
     dict(LLAMA, head_dim=16, num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64),
     tokens("input_ids"), True, ["decoder", "moe"]),
    ("olmo2", "Olmo2ForCausalLM", "Olmo2Config", dict(LLAMA), tokens("input_ids"), True, DECODER),
    ("phi", "PhiForCausalLM", "PhiConfig", dict(TEXT, resid_pdrop=0.0, embd_pdrop=0.0), tokens("input_ids"),
     True, DECODER),
    ("stablelm", "StableLmForCausalLM", "StableLmConfig", dict(LLAMA), tokens("input_ids"), True, DECODER),
    ("starcoder2", "Starcoder2ForCausalLM", "Starcoder2Config",
     dict(LLAMA, residual_dropout=0.0, embedding_dropout=0.0), tokens("input_ids"), True, DECODER),
    ("gptj", "GPTJForCausalLM", "GPTJConfig", dict(GPTJ), tokens("input_ids"), True, DECODER),
    ("codegen", "CodeGenForCausalLM", "CodeGenConfig", dict(GPTJ, n_ctx=64), tokens("input_ids"), True,
     DECODER),
    ("gpt-bigcode", "GPTBigCodeForCausalLM", "GPTBigCodeConfig",
     dict(vocab_size=V, n_embd=64, n_layer=2, n_head=4, n_positions=64, resid_pdrop=0.0, embd_pdrop=0.0,
          attn_pdrop=0.0), tokens("input_ids"), True, ["decoder", "tied"]),
    ("mamba2", "Mamba2ForCausalLM", "Mamba2Config",
     dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, state_size=16, num_heads=8, head_dim=16,
          n_groups=1, expand=2, chunk_size=16), tokens("input_ids"), True, ["decoder", "ssm"]),
    ("jamba", "JambaForCausalLM", "JambaConfig",
     dict(LLAMA, num_experts=4, num_experts_per_tok=2, attn_layer_period=2, attn_layer_offset=1,
          expert_layer_period=2, expert_layer_offset=1, mamba_d_state=8, mamba_d_conv=4, mamba_expand=2),
     tokens("input_ids"), True, ["decoder", "ssm", "moe"]),
    ("deepseek-v3", "DeepseekV3ForCausalLM", "DeepseekV3Config",
     dict(LLAMA, num_key_value_heads=4, moe_intermediate_size=32, n_routed_experts=4, num_experts_per_tok=2,
          n_shared_experts=1, first_k_dense_replace=1, kv_lora_rank=16, q_lora_rank=32, qk_rope_head_dim=16,
          qk_nope_head_dim=16, v_head_dim=16, n_group=1, topk_group=1),
     tokens("input_ids"), True, ["decoder", "moe"]),
    ("granite", "GraniteForCausalLM", "GraniteConfig", dict(LLAMA), tokens("input_ids"), True, DECODER),
    ("cohere", "CohereForCausalLM", "CohereConfig", dict(LLAMA), tokens("input_ids"), True,
     ["decoder", "tied"]),
    ("rwkv", "RwkvForCausalLM", "RwkvConfig",
     dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, attention_hidden_size=64, intermediate_size=128,
          context_length=64), tokens("input_ids"), True, ["decoder", "rnn"]),
    ("xlnet", "XLNetLMHeadModel", "XLNetConfig",
     dict(vocab_size=V, d_model=64, n_layer=2, n_head=4, d_inner=128, dropout=0.0), tokens("input_ids"), True,
     ["decoder", "tied"]),
    ("modernbert", "ModernBertForMaskedLM", "ModernBertConfig",
     dict(TEXT, global_attn_every_n_layers=2, local_attention=8, embedding_dropout=0.0, mlp_dropout=0.0,
          attention_dropout=0.0, pad_token_id=0, bos_token_id=1, eos_token_id=2, cls_token_id=1,
          sep_token_id=2), tokens("input_ids"), True, ["encoder", "tied"]),
    ("mpnet", "MPNetForMaskedLM", "MPNetConfig", dict(TEXT, **NO_DROP), tokens("input_ids"), True,
     ["encoder", "tied"]),
    ("funnel", "FunnelForMaskedLM", "FunnelConfig",
     dict(vocab_size=V, block_sizes=[1, 1], d_model=64, n_head=4, d_head=16, d_inner=128, hidden_dropout=0.0,
          attention_dropout=0.0, activation_dropout=0.0), tokens("input_ids"), True, ["encoder"]),
    ("siglip-vision", "SiglipVisionModel", "SiglipVisionConfig",
     dict(image_size=32, patch_size=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
          intermediate_size=128), image(32, key="pixel_values"), False, ["vision"]),
    ("convnextv2", "ConvNextV2ForImageClassification", "ConvNextV2Config",
     dict(hidden_sizes=[16, 32], depths=[1, 1], num_stages=2), image(32, key="pixel_values"), False,
     ["vision"]),
    ("mobilevit", "MobileViTForImageClassification", "MobileViTConfig",
     dict(image_size=64, hidden_sizes=[32, 48, 64], neck_hidden_sizes=[8, 8, 16, 16, 24, 32, 64]),
     image(64, key="pixel_values"), False, ["vision"]),
    ("pvt", "PvtForImageClassification", "PvtConfig",
     dict(image_size=32, num_encoder_blocks=2, depths=[1, 1], sequence_reduction_ratios=[2, 1],
          hidden_sizes=[16, 32], patch_sizes=[4, 2], strides=[4, 2], num_attention_heads=[1, 2],
          mlp_ratios=[2, 2]), image(32, key="pixel_values"), False, ["vision"]),
    ("swinv2", "Swinv2ForImageClassification", "Swinv2Config",
     dict(image_size=32, patch_size=2, embed_dim=32, depths=[1, 1], num_heads=[2, 4], window_size=4),
     image(32, key="pixel_values"), False, ["vision"]),
    ("efficientnet", "EfficientNetForImageClassification", "EfficientNetConfig",
     dict(image_size=64, width_coefficient=1.0, depth_coefficient=1.0, hidden_dim=1280),
     image(64, key="pixel_values"), False, ["vision"]),
    ("regnet", "RegNetForImageClassification", "RegNetConfig",
     dict(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], groups_width=8),
     image(32, key="pixel_values"), False, ["vision"]),
    ("levit", "LevitForImageClassification", "LevitConfig",
     dict(image_size=64, hidden_sizes=[32, 48, 64], num_attention_heads=[2, 3, 4], depths=[1, 1, 1],
          key_dim=[8, 8, 8]), image(64, key="pixel_values"), False, ["vision"]),
    ("data2vec-audio", "Data2VecAudioModel", "Data2VecAudioConfig", dict(CONV_AUDIO), audio(1600), False,
     ["audio"]),
    ("sew", "SEWModel", "SEWConfig", dict(CONV_AUDIO, squeeze_factor=2), audio(1600), False, ["audio"]),
]


# the third round: 26 more, tried after the second round's fixes (MoE encoder-decoders, efficient-attention
# encoders, SSM hybrids, vision backbones, audio encoders and a codec, a time-series transformer)
def _codec_audio(model: nn.Module, g: torch.Generator) -> Batch:
    return {"input_values": torch.randn(BATCH, 1, 800, generator=g)}


def _series(model: nn.Module, g: torch.Generator) -> Batch:
    c = model.config
    return {"past_values": torch.randn(BATCH, c.context_length, c.num_input_channels, generator=g)}


SEQ2SEQ = dict(vocab_size=V, d_model=64, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
               decoder_attention_heads=4, encoder_ffn_dim=128, decoder_ffn_dim=128,
               max_position_embeddings=64, dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
HF_SPECS_3: list[tuple[str, str, str, dict[str, Any], Any, bool, list[str]]] = [
    ("bamba", "BambaForCausalLM", "BambaConfig",
     dict(LLAMA, attn_layer_indices=[1], mamba_n_heads=8, mamba_d_head=16, mamba_n_groups=1, mamba_d_state=16,
          mamba_chunk_size=16, mamba_expand=2), tokens("input_ids"), True, ["decoder", "ssm"]),
    ("granitemoe", "GraniteMoeForCausalLM", "GraniteMoeConfig",
     dict(LLAMA, num_local_experts=4, num_experts_per_tok=2), tokens("input_ids"), True, ["decoder", "moe"]),
    ("switch", "SwitchTransformersForConditionalGeneration", "SwitchTransformersConfig",
     dict(vocab_size=V, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_decoder_layers=2, num_heads=4,
          num_experts=4, dropout_rate=0.0, encoder_sparse_step=1, decoder_sparse_step=1),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder", "moe"]),
    ("nllb-moe", "NllbMoeForConditionalGeneration", "NllbMoeConfig",
     dict(SEQ2SEQ, num_experts=4, expert_capacity=16, encoder_sparse_step=2, decoder_sparse_step=2),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder", "moe"]),
    ("m2m100", "M2M100ForConditionalGeneration", "M2M100Config", dict(SEQ2SEQ),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder"]),
    ("prophetnet", "ProphetNetForConditionalGeneration", "ProphetNetConfig",
     dict(vocab_size=V, hidden_size=64, encoder_ffn_dim=128, decoder_ffn_dim=128, num_encoder_layers=2,
          num_decoder_layers=2, num_encoder_attention_heads=4, num_decoder_attention_heads=4, dropout=0.0,
          attention_dropout=0.0, activation_dropout=0.0, max_position_embeddings=64, ngram=2),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder"]),
    ("bigbird", "BigBirdForMaskedLM", "BigBirdConfig", dict(TEXT, **NO_DROP, attention_type="original_full"),
     tokens("input_ids"), True, ["encoder", "tied"]),
    ("longformer", "LongformerForMaskedLM", "LongformerConfig",
     dict(TEXT, **NO_DROP, attention_window=8, max_position_embeddings=80, pad_token_id=1),
     tokens("input_ids"), True, ["encoder", "tied"]),
    ("fnet", "FNetForMaskedLM", "FNetConfig",
     dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, intermediate_size=128,
          max_position_embeddings=64, hidden_dropout_prob=0.0, use_tpu_fourier_optimizations=False),
     tokens("input_ids"), True, ["encoder", "tied"]),
    ("nystromformer", "NystromformerForMaskedLM", "NystromformerConfig",
     dict(TEXT, **NO_DROP, num_landmarks=4, segment_means_seq_len=16, max_position_embeddings=80),
     tokens("input_ids"), True, ["encoder", "tied"]),
    ("esm", "EsmForMaskedLM", "EsmConfig",
     dict(TEXT, **NO_DROP, pad_token_id=1, mask_token_id=2, position_embedding_type="rotary"),
     tokens("input_ids"), True, ["encoder", "tied"]),
    ("reformer", "ReformerModelWithLMHead", "ReformerConfig",
     dict(vocab_size=V, hidden_size=64, num_attention_heads=2, attention_head_size=32,
          attn_layers=["local", "local"], feed_forward_size=128, axial_pos_shape=[4, 4],
          axial_pos_embds_dim=[32, 32], max_position_embeddings=16, local_attn_chunk_length=8,
          is_decoder=True, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
          lsh_attention_probs_dropout_prob=0.0, local_attention_probs_dropout_prob=0.0),
     tokens("input_ids"), True, ["decoder", "tied"]),
    ("perceiver", "PerceiverForMaskedLM", "PerceiverConfig",
     dict(vocab_size=V, num_latents=8, d_latents=64, d_model=64, num_blocks=1, num_self_attends_per_block=2,
          num_self_attention_heads=4, num_cross_attention_heads=4, max_position_embeddings=64,
          attention_probs_dropout_prob=0.0), tokens("input_ids"), False, ["encoder"]),
    ("clip-text", "CLIPTextModel", "CLIPTextConfig",
     dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
          max_position_embeddings=64), tokens("input_ids"), False, ["encoder"]),
    ("vitmae", "ViTMAEModel", "ViTMAEConfig", dict(VISION, mask_ratio=0.0), image(32, key="pixel_values"),
     False, ["vision"]),
    ("dinov2-reg", "Dinov2WithRegistersModel", "Dinov2WithRegistersConfig",
     dict(VISION, num_register_tokens=4), image(32, key="pixel_values"), False, ["vision"]),
    ("hiera", "HieraModel", "HieraConfig",
     dict(image_size=[64, 64], patch_size=[7, 7], patch_stride=[4, 4], patch_padding=[3, 3], embed_dim=16,
          num_heads=[1, 2], depths=[1, 1], query_stride=[2, 2], masked_unit_size=[8, 8],
          mask_unit_attn=[True, False], num_query_pool=1), image(64, key="pixel_values"), False, ["vision"]),
    ("dpt", "DPTForDepthEstimation", "DPTConfig",
     dict(VISION, backbone_out_indices=[0, 1], neck_hidden_sizes=[16, 32], reassemble_factors=[1, 0.5],
          fusion_hidden_size=32, head_in_index=-1), image(32, key="pixel_values"), False,
     ["vision", "dense"]),
    ("mobilevitv2", "MobileViTV2ForImageClassification", "MobileViTV2Config",
     dict(image_size=64, width_multiplier=0.5), image(64, key="pixel_values"), False, ["vision"]),
    ("poolformer", "PoolFormerForImageClassification", "PoolFormerConfig",
     dict(hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 1, 1]), image(64, key="pixel_values"), False,
     ["vision"]),
    ("focalnet", "FocalNetForImageClassification", "FocalNetConfig",
     dict(image_size=64, embed_dim=16, depths=[1, 1], focal_levels=[2, 2]), image(64, key="pixel_values"),
     False, ["vision"]),
    ("vitdet", "VitDetModel", "VitDetConfig",
     dict(image_size=32, patch_size=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
          mlp_ratio=2, pretrain_image_size=32), image(32, key="pixel_values"), False, ["vision"]),
    ("wav2vec2-conformer", "Wav2Vec2ConformerModel", "Wav2Vec2ConformerConfig",
     dict(CONV_AUDIO, conv_depthwise_kernel_size=7, position_embeddings_type="rotary"), audio(1600), False,
     ["audio"]),
    ("unispeech-sat", "UniSpeechSatModel", "UniSpeechSatConfig", dict(CONV_AUDIO), audio(1600), False,
     ["audio"]),
    ("encodec", "EncodecModel", "EncodecConfig",
     dict(num_filters=8, upsampling_ratios=[4, 2], hidden_size=32, codebook_size=64, num_lstm_layers=1),
     _codec_audio, False, ["audio", "codec"]),
    ("patchtst", "PatchTSTModel", "PatchTSTConfig",
     dict(num_input_channels=3, context_length=32, patch_length=8, patch_stride=8, d_model=32,
          num_attention_heads=4, num_hidden_layers=2, ffn_dim=64, dropout=0.0, attention_dropout=0.0,
          ff_dropout=0.0, positional_dropout=0.0, path_dropout=0.0, do_mask_input=False), _series, False,
     ["time-series"]),
]


# the fourth round: 21 more (decoders and MoE decoders, encoder-decoders, vision and video backbones, a
# speech encoder-decoder)
def _video(frames: int, size: int) -> Callable[[nn.Module, torch.Generator], Batch]:
    return lambda model, g: {"pixel_values": torch.randn(BATCH, frames, 3, size, size, generator=g)}


def _speech_to_text(model: nn.Module, g: torch.Generator) -> Batch:
    return {"input_values": torch.randn(BATCH, 1600, generator=g),
            "decoder_input_ids": torch.randint(0, V, (BATCH, 8), generator=g)}


T5_SMALL = dict(vocab_size=V, d_model=64, d_kv=16, d_ff=128, num_layers=2, num_heads=4, dropout_rate=0.0)
HF_SPECS_4: list[tuple[str, str, str, dict[str, Any], Any, bool, list[str]]] = [
    ("mt5", "MT5ForConditionalGeneration", "MT5Config", dict(T5_SMALL),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder"]),
    ("longt5", "LongT5ForConditionalGeneration", "LongT5Config",
     dict(T5_SMALL, encoder_attention_type="transient-global", local_radius=4, global_block_size=4),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder"]),
    ("led", "LEDForConditionalGeneration", "LEDConfig",
     dict(SEQ2SEQ, max_encoder_position_embeddings=64, max_decoder_position_embeddings=64,
          attention_window=8),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder"]),
    ("mbart", "MBartForConditionalGeneration", "MBartConfig", dict(SEQ2SEQ),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder", "tied"]),
    ("blenderbot", "BlenderbotForConditionalGeneration", "BlenderbotConfig", dict(SEQ2SEQ),
     tokens("input_ids", "decoder_input_ids"), True, ["encoder-decoder", "tied"]),
    ("xglm", "XGLMForCausalLM", "XGLMConfig",
     dict(vocab_size=V, d_model=64, num_layers=2, attention_heads=4, ffn_dim=128, max_position_embeddings=64,
          dropout=0.0, attention_dropout=0.0, activation_dropout=0.0), tokens("input_ids"), True,
     ["decoder", "tied"]),
    ("biogpt", "BioGptForCausalLM", "BioGptConfig", dict(TEXT, **NO_DROP), tokens("input_ids"), True,
     ["decoder", "tied"]),
    ("mpt", "MptForCausalLM", "MptConfig",
     dict(vocab_size=V, d_model=64, n_layers=2, n_heads=4, max_seq_len=64, expansion_ratio=2),
     tokens("input_ids"), True, ["decoder", "tied"]),
    ("persimmon", "PersimmonForCausalLM", "PersimmonConfig",
     dict(TEXT, hidden_dropout=0.0, attention_dropout=0.0), tokens("input_ids"), True, DECODER),
    ("olmoe", "OlmoeForCausalLM", "OlmoeConfig", dict(LLAMA, num_experts=4, num_experts_per_tok=2),
     tokens("input_ids"), True, ["decoder", "moe"]),
    ("jetmoe", "JetMoeForCausalLM", "JetMoeConfig",
     dict(vocab_size=V, hidden_size=64, num_hidden_layers=2, num_key_value_heads=2, kv_channels=16,
          intermediate_size=64, num_local_experts=4, num_experts_per_tok=2, max_position_embeddings=64),
     tokens("input_ids"), True, ["decoder", "moe"]),
    ("phimoe", "PhimoeForCausalLM", "PhimoeConfig", dict(LLAMA, num_local_experts=4, num_experts_per_tok=2),
     tokens("input_ids"), True, ["decoder", "moe"]),
    ("nemotron", "NemotronForCausalLM", "NemotronConfig", dict(LLAMA, head_dim=16), tokens("input_ids"), True,
     DECODER),
    ("yolos", "YolosForObjectDetection", "YolosConfig",
     dict(VISION, image_size=[32, 32], num_detection_tokens=8), image(32, key="pixel_values"), False,
     ["vision", "detection"]),
    ("pvt-v2", "PvtV2ForImageClassification", "PvtV2Config",
     dict(num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[16, 32], patch_sizes=[7, 3],
          strides=[4, 2], num_attention_heads=[1, 2], mlp_ratios=[2, 2]), image(64, key="pixel_values"),
     False, ["vision"]),
    ("ijepa", "IJepaModel", "IJepaConfig", dict(VISION), image(32, key="pixel_values"), False, ["vision"]),
    ("data2vec-vision", "Data2VecVisionForImageClassification", "Data2VecVisionConfig",
     dict(VISION, use_relative_position_bias=True), image(32, key="pixel_values"), False, ["vision"]),
    ("swin2sr", "Swin2SRForImageSuperResolution", "Swin2SRConfig",
     dict(image_size=16, patch_size=1, embed_dim=16, depths=[1, 1], num_heads=[2, 2], window_size=4,
          upscale=2),
     image(16, key="pixel_values"), False, ["vision", "dense"]),
    ("videomae", "VideoMAEModel", "VideoMAEConfig", dict(VISION, num_frames=4, tubelet_size=2), _video(4, 32),
     False, ["video"]),
    ("timesformer", "TimesformerModel", "TimesformerConfig", dict(VISION, num_frames=4), _video(4, 32), False,
     ["video"]),
    ("moonshine", "MoonshineForConditionalGeneration", "MoonshineConfig",
     dict(vocab_size=V, hidden_size=64, intermediate_size=128, encoder_num_hidden_layers=2,
          decoder_num_hidden_layers=2, encoder_num_attention_heads=4, decoder_num_attention_heads=4,
          max_position_embeddings=64), _speech_to_text, True, ["audio", "encoder-decoder"]),
]


def _detr_config() -> Any:
    import transformers as tr

    backbone = tr.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 32, 32], depths=[1, 1, 1, 1],
                               layer_type="basic", out_features=["stage4"])
    return tr.DetrConfig(backbone_config=backbone, num_queries=8, d_model=32, encoder_layers=2,
                         decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
                         encoder_ffn_dim=64, decoder_ffn_dim=64, dropout=0.0, attention_dropout=0.0,
                         activation_dropout=0.0)


def hf_build(cls_name: str, cfg_name: str, kwargs: dict[str, Any]) -> nn.Module:
    import transformers as tr

    config = _detr_config() if cfg_name == "DetrConfig" else getattr(tr, cfg_name)(**kwargs)
    if hasattr(config, "_attn_implementation"):
        config._attn_implementation = "eager"  # sdpa/flash paths differ by build; eager is the same anywhere
    return getattr(tr, cls_name)(config)


def hf_entries() -> list[Entry]:
    out = []
    for name, cls_name, cfg_name, kwargs, make, lm, tags in HF_SPECS + HF_SPECS_2 + HF_SPECS_3 + HF_SPECS_4:
        def build(c: str = cls_name, f: str = cfg_name, k: dict[str, Any] = kwargs) -> nn.Module:
            return hf_build(c, f, k)

        out.append(Entry(name, "hf", tags[0], build, make, vocab=V if lm else None, tags=tags))
    return out


def all_entries(sources: tuple[str, ...] = ("hf", "torchvision", "timm")) -> list[Entry]:
    makers = {"hf": hf_entries, "torchvision": torchvision_entries, "timm": timm_entries}
    return [e for source in sources for e in makers[source]()]


# a CI-size subset: fast models that still cover each input kind and the defects issue 13 names
SUBSET = ["gpt2", "bert-mlm", "vit", "mixtral", "wav2vec2", "llama", "t5", "resnet18", "mobilenet_v3_small",
          "timm/test_vit", "timm/test_convnext", "timm/test_efficientnet"]


def subset_entries() -> list[Entry]:
    by_name = {e.name: e for e in hf_entries()}
    out = []
    for name in SUBSET:
        if name.startswith("timm/"):
            out.append(timm_entry(name[5:], "test"))
        elif name in by_name:
            out.append(by_name[name])
        else:
            out.append(Entry(name, "torchvision", "classification", lambda n=name: _tv_build(n), image(64)))
    return out

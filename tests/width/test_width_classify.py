"""μP classes from shapes (Tensor Programs V, Table 3) on an MLP and a small Transformer, tied readouts."""

import io

import pytest
import torch
from width_models import TinyLM, mlp, on_meta

import initlab
from initlab.width import classify, mup_forward, remove_mup_forward


def test_mlp_classes():
    c = classify(mlp(256), on_meta(mlp, 64))
    kinds = {n: p.kind for n, p in c.params.items()}
    assert kinds == {"0.weight": "input", "0.bias": "vector", "2.weight": "hidden", "2.bias": "vector",
                     "4.weight": "output", "4.bias": "fixed"}
    assert c["2.weight"].mult_in == 4 and c["4.weight"].mult_in == 4 and c["0.weight"].mult_out == 4
    assert not c.readouts


def test_dict_base_equals_module_base():
    base = on_meta(mlp, 64)
    shapes = {n: tuple(p.shape) for n, p in base.named_parameters()}
    assert classify(mlp(128), shapes).params == classify(mlp(128), base).params


def test_transformer_classes():
    c = classify(TinyLM(128), on_meta(TinyLM, 32))
    kinds = {n: p.kind for n, p in c.params.items()}
    assert kinds["emb.weight"] == "input"
    assert kinds["head.weight"] == "output"
    for name in ("block.self_attn.in_proj_weight", "block.self_attn.out_proj.weight", "block.linear1.weight",
                 "block.linear2.weight"):
        assert kinds[name] == "hidden", name
    for name in ("block.self_attn.in_proj_bias", "block.linear1.bias", "block.norm1.weight", "norm.bias"):
        assert kinds[name] == "vector", name
    assert c["block.linear2.weight"].mult_in == 4  # fan_in 4d / 4 d0


def test_base_mismatch_is_one_clear_error():
    with pytest.raises(ValueError, match="same architecture"):
        classify(mlp(128), {"0.weight": (64, 40)})
    with pytest.raises(TypeError, match="base must be"):
        classify(mlp(128), 64)


def test_tied_embedding_is_input_like_with_the_readout_multiplier_in_the_forward():
    base = on_meta(TinyLM, 32, tie=True)
    model = TinyLM(128, tie=True)
    c = classify(model, base)
    assert c["emb.weight"].kind == "input" and c["emb.weight"].tied == ("head.weight",)
    assert c.readouts == {"head": 0.25}
    report = initlab.init_model(model, "mup", base=base, seed=0)
    x = torch.randint(0, 50, (2, 5))
    with torch.no_grad():
        hidden = model.norm(model.block(model.emb(x)))
        assert torch.allclose(model(x), hidden @ model.emb.weight.T * 0.25, atol=1e-5)
        # the hook survives torch.save(model) and is removable
        buf = io.BytesIO()
        torch.save(model, buf)
        buf.seek(0)
        loaded = torch.load(buf, weights_only=False)
        assert torch.allclose(loaded(x), model(x))
        assert remove_mup_forward(model) == 1
        assert torch.allclose(model(x), hidden @ model.emb.weight.T, atol=1e-5)
        assert len(mup_forward(model, base)) == 1 and remove_mup_forward(model) == 1
    assert any("tied" in n for n in report.notes)
    # the embedding keeps the base lr under Adam: the same tensor as the readout, one class
    groups = initlab.mup_param_groups(model, 1e-3, base=base)
    emb = next(g for g in groups if "emb.weight" in g["names"])
    assert emb["lr"] == 1e-3 and emb["mup_class"] == "input"


def test_attention_scale_is_named_in_the_report():
    report = initlab.init_model(TinyLM(64), "mup", base=on_meta(TinyLM, 32), seed=0, dry_run=True)
    fix = "scale=math.sqrt(base_head_dim) / head_dim"
    assert any("1/head_dim" in w and fix in w for w in report.warnings)

"""mup_param_groups: Table 3 learning rates per class, weight decay with lr x wd constant, the same groups
from a dict base and after torch.save/load; and SGD."""

import io

import pytest
import torch
from width_models import mlp, on_meta

import initlab


def _by_class(groups):
    return {g["mup_class"]: g for g in groups}


def test_adam_groups():
    groups = initlab.mup_param_groups(mlp(512), 1e-2, "adam", weight_decay=0.1, base=on_meta(mlp, 64))
    g = _by_class(groups)
    assert g["input"]["lr"] == 1e-2 and g["vector"]["lr"] == 1e-2 and g["fixed"]["lr"] == 1e-2
    assert g["hidden"]["lr"] == pytest.approx(1e-2 / 8) and g["output"]["lr"] == pytest.approx(1e-2 / 8)
    for group in groups:  # decoupled decay: lr x wd the same everywhere
        assert group["lr"] * group["weight_decay"] == pytest.approx(1e-2 * 0.1)
    names = sorted(n for group in groups for n in group["names"])
    assert names == sorted(n for n, _ in mlp(8).named_parameters())
    torch.optim.AdamW(groups)  # accepted as is


def test_sgd_groups():
    g = _by_class(initlab.mup_param_groups(mlp(256), 0.1, "sgd", base=on_meta(mlp, 64)))
    assert g["input"]["lr"] == pytest.approx(0.4)   # fan_out
    assert g["hidden"]["lr"] == pytest.approx(0.1)
    assert g["output"]["lr"] == pytest.approx(0.025)  # 1/fan_in


def test_after_save_and_load_nothing_on_tensors():
    model = mlp(128)
    base = on_meta(mlp, 32)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)
    a = [(g["names"], g["lr"]) for g in initlab.mup_param_groups(model, 1e-3, base=base)]
    b = [(g["names"], g["lr"]) for g in initlab.mup_param_groups(loaded, 1e-3, base=base)]
    assert a == b
    assert not any(hasattr(p, "infshape") or len(vars(p)) for p in loaded.parameters())


def test_bad_arguments():
    with pytest.raises(ValueError, match="optimizer"):
        initlab.mup_param_groups(mlp(64), 1e-3, "lion", base=on_meta(mlp, 32))
    with pytest.raises(ValueError, match="lr"):
        initlab.mup_param_groups(mlp(64), 0.0, base=on_meta(mlp, 32))

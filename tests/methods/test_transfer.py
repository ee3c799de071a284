import pickle
from collections import OrderedDict

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

import initlab
from initlab.methods import TransferError
from initlab.model.state import ModelState


def net(classes: int = 10, extra: bool = False, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)  # tests only: build distinct modules
    trunk = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 16))
    layers: OrderedDict[str, nn.Module] = OrderedDict(trunk=trunk)
    if extra:
        layers["adapter"] = nn.Linear(16, 16)
    layers["head"] = nn.Linear(16, classes)
    return nn.Sequential(layers)


def test_mechanics_matched_mismatched_missing_unexpected_and_reinit():
    src = net(10)
    src_state = {**src.state_dict(), "aux.weight": torch.ones(3)}
    dst = net(5, extra=True, seed=1)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    rng = torch.get_rng_state()
    report = initlab.transfer(dst, src_state, seed=3)
    assert torch.equal(torch.get_rng_state(), rng)
    assert sorted(report.matched) == ["trunk.0.bias", "trunk.0.weight", "trunk.2.bias", "trunk.2.weight"]
    assert report.shape_mismatched == {"head.weight": ((10, 16), (5, 16)), "head.bias": ((10,), (5,))}
    assert report.missing == ["adapter.weight", "adapter.bias"]
    assert report.unexpected == ["aux.weight"]
    for name in report.matched:
        assert torch.equal(dst.state_dict()[name], src_state[name])
    assert set(report.reinitialized) == {"head.weight", "head.bias", "adapter.weight", "adapter.bias"}
    for name in report.reinitialized:
        assert not torch.equal(dst.state_dict()[name], before[name])
    # same seed -> same reinitialization
    again = net(5, extra=True, seed=1)
    initlab.transfer(again, src_state, seed=3)
    for name, value in dst.state_dict().items():
        assert torch.equal(value, again.state_dict()[name])
    assert "4 matched, 2 shape-mismatched, 2 missing, 1 unexpected" in str(report)


def test_reinit_none_keeps_the_rest_and_scheme_reinit_uses_catalog():
    src, dst = net(10), net(5, seed=1)
    head = dst[-1].weight.detach().clone()
    report = initlab.transfer(dst, src.state_dict(), reinit=None)
    assert report.reinitialized == {} and torch.equal(dst[-1].weight, head)
    dst = net(5, seed=1)
    report = initlab.transfer(dst, src.state_dict(), reinit="zeros")
    assert report.reinitialized == {"head.weight": "zeros", "head.bias": "zeros"}
    assert torch.count_nonzero(dst[-1].weight) == 0


def test_key_map_regex_and_callable():
    src = net(10)
    renamed = {k.replace("trunk.", "backbone.layers."): v for k, v in src.state_dict().items()}
    dst = net(10, seed=1)
    report = initlab.transfer(dst, renamed, key_map={r"backbone\.layers\.(.*)": r"trunk.\1"})
    assert len(report.matched) == 6 and not report.unexpected and not report.missing
    assert report.renamed["backbone.layers.0.weight"] == "trunk.0.weight"
    assert torch.equal(dst[0][0].weight, src[0][0].weight)
    dst = net(10, seed=1)
    report = initlab.transfer(dst, renamed, key_map=lambda k: None if k.startswith("head") else
                              k.replace("backbone.layers.", "trunk."))
    assert report.missing == ["head.weight", "head.bias"] and not report.unexpected


def test_strict_no_match_and_collision_leave_model_unchanged():
    dst = net(5, seed=1)
    snap = ModelState.capture(dst)
    with pytest.raises(TransferError, match="strict"):
        initlab.transfer(dst, net(10).state_dict(), strict=True)
    with pytest.raises(TransferError, match="no source tensor matches") as info:
        initlab.transfer(dst, {"module.encoder.weight": torch.zeros(16, 8)})
    assert "key_map" in str(info.value)
    with pytest.raises(TransferError, match="sends both"):
        initlab.transfer(dst, {"a.weight": torch.zeros(1), "b.weight": torch.zeros(1)},
                         key_map={r"[ab]\.weight": "trunk.0.weight"})
    assert snap.matches(dst)


def test_failure_midway_restores(monkeypatch):
    import initlab.methods._reinit as reinit_module

    def boom(*args, **kwargs):
        raise RuntimeError("midway")

    dst = net(5, seed=1)
    snap = ModelState.capture(dst)
    monkeypatch.setattr(reinit_module, "reinitialize", boom)
    with pytest.raises(RuntimeError, match="midway"):
        initlab.transfer(dst, net(10).state_dict())
    assert snap.matches(dst)


def test_files_safetensors_torch_save_and_wrapped(tmp_path):
    src = net(10)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    dst = net(10, seed=1)
    assert len(initlab.transfer(dst, path).matched) == 6
    assert torch.equal(dst[0][0].weight, src[0][0].weight)
    path = tmp_path / "ckpt.pt"
    torch.save({"state_dict": src.state_dict(), "epoch": 3}, path)
    dst = net(10, seed=1)
    report = initlab.transfer(dst, str(path))
    assert len(report.matched) == 6 and report.source == str(path)
    assert torch.equal(dst[-1].bias, src[-1].bias)


def test_half_precision_source_is_cast():
    src = net(10).half()
    dst = net(10, seed=1)
    report = initlab.transfer(dst, src.state_dict())
    assert report.cast["trunk.0.weight"] == ("float16", "float32")
    assert dst[0][0].weight.dtype == torch.float32
    assert torch.equal(dst[0][0].weight, src[0][0].weight.float())


def test_tied_weights_are_loaded_once_not_reinitialized():
    class Tied(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = nn.Embedding(7, 4)
            self.out = nn.Linear(4, 7, bias=False)
            self.out.weight = self.emb.weight

    src, dst = Tied(), Tied()
    report = initlab.transfer(dst, {"emb.weight": src.emb.weight.detach().clone()})
    assert report.matched == ["emb.weight"] and report.tied == ["out.weight"]
    assert report.missing == [] and report.reinitialized == {}
    assert dst.out.weight is dst.emb.weight and torch.equal(dst.out.weight, src.emb.weight)


class Payload:
    """Unpickling this would create a file: the marker shows whether code ran."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_code_carrying_pickle_is_refused_and_never_executed(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    payload = {"trunk.0.weight": torch.zeros(16, 8), "x": Payload(str(marker))}
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        with path.open("wb") as fh:
            pickle.dump(payload, fh)
    dst = net(10, seed=1)
    snap = ModelState.capture(dst)
    with pytest.raises(TransferError, match="never unpickles code"):
        initlab.transfer(dst, path)
    assert not marker.exists()
    assert snap.matches(dst)


def test_garbage_files(tmp_path):
    dst = net(10, seed=1)
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not a tensor file")
    with pytest.raises(TransferError, match="safetensors"):
        initlab.transfer(dst, bad)
    with pytest.raises(TransferError, match="no such file"):
        initlab.transfer(dst, tmp_path / "absent.pt")
    with pytest.raises(TransferError, match="state dict or a file path"):
        initlab.transfer(dst, 42)  # type: ignore[arg-type]

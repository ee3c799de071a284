"""The repeated-call hot path: the fingerprint's snapshot still sees every change, and the applier's
whole-tensor counter fill draws exactly what the general piecewise fill draws."""

from __future__ import annotations

import torch
from torch import nn

from initlab.model import discover, init_model
from initlab.model.plan_counter import fill_assignment_


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.sizes = [4, 4]  # a mutable attribute: read again on every call

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x))


def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(Block(), Block(), nn.Linear(4, 2))


def test_unchanged_model_hits_and_each_change_misses():
    m = model()
    g = discover(m)
    assert discover(m) is g
    # fx traces through a submodule's forward hooks
    handle = m[0].register_forward_hook(lambda mod, args, out: out * 2)
    g2 = discover(m)
    assert g2 is not g
    handle.remove()
    g3 = discover(m)
    assert g3 is not g2 and discover(m) is g3
    m[1].sizes.append(8)  # changed in place: same object, new contents
    g4 = discover(m)
    assert g4 is not g3 and discover(m) is g4
    m[1].sizes = [4, 4, 8]  # a new, equal object
    assert discover(m) is g4
    m.double()  # the same Parameter objects, another dtype
    g5 = discover(m)
    assert g5 is not g4 and discover(m) is g5
    m[2].out_features = 3  # a plain value replaced by an unequal one
    assert discover(m) is not g5


def test_whole_tensor_fast_path_draws_what_the_piecewise_fill_draws():
    for dtype in (torch.float32, torch.float64):
        m = model().to(dtype)
        for scheme in ("he_uniform", "he_normal", "torch:default", "auto"):
            init_model(m, scheme, seed=3)
            init_model(m, scheme, seed=3)  # the second call: cached plan, recycled storage
            index = {a.name: a for a in init_model(m, scheme, dry_run=True).plan.assignments}
            params = dict(m.named_parameters())
            for name, a in index.items():
                expected = fill_assignment_(torch.empty(a.shape, dtype=dtype), a, 3, assignments=index)
                assert torch.equal(params[name].detach(), expected), (scheme, dtype, name)


def test_torch_fast_path_draws_what_fill_draws(monkeypatch):
    from initlab.model import _apply

    def weights(direct: bool) -> dict[str, torch.Tensor]:
        if not direct:
            monkeypatch.setattr(_apply, "_torch_direct", lambda *args: False)
        out = {}
        for dtype in (torch.float32, torch.float64):
            m = model().to(dtype)
            for scheme in ("he_uniform", "he_normal", "torch:default", "zeros"):
                init_model(m, scheme, seed=7, generator="torch")
                out.update({f"{dtype}/{scheme}/{k}": v.clone() for k, v in m.state_dict().items()})
        return out

    fast, general = weights(True), weights(False)
    assert all(torch.equal(fast[k], general[k]) for k in fast)

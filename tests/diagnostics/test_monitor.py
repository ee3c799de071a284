"""monitor records diagnose's statistics during training without changing the training."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import initlab
from initlab.diagnostics import Monitor

from . import nets


def _train(net: nn.Module, steps: int, mon: Monitor | None = None) -> list[float]:
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    losses = []
    for step in range(steps):
        x = nets.batch(seed=step)
        y = torch.randint(0, 10, (x.shape[0],), generator=torch.Generator().manual_seed(step))
        loss = nn.functional.cross_entropy(net(x), y)
        loss.backward()
        if mon is not None:
            mon.step()
        opt.step()
        opt.zero_grad()
        losses.append(float(loss.detach()))
    return losses


class FakeWriter:
    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.scalars.append((tag, value, step))


def test_monitor_records_every_n_steps_and_leaves_training_alone(tmp_path: Path) -> None:
    plain = _train(nets.healthy(nets.mlp(3, nn.ReLU, std=1.0)), 5)
    writer = FakeWriter()
    net = nets.healthy(nets.mlp(3, nn.ReLU, std=1.0))
    with initlab.monitor(net, every=2, path=tmp_path / "m.json", tensorboard=writer) as mon:
        watched = _train(net, 5, mon)
    assert watched == plain
    assert [s.step for s in mon.snapshots] == [0, 2, 4]
    data = json.loads((tmp_path / "m.json").read_text())
    assert [s["step"] for s in data["snapshots"]] == [0, 2, 4]
    assert {t for t, _, _ in writer.scalars} >= {"act_std/0", "grad_rms/2", "dead/4", "summary/signal_growth"}
    assert sorted({s for _, _, s in writer.scalars}) == [0, 2, 4]
    assert not net._forward_hooks and not net[0]._forward_hooks  # hooks removed on exit


def test_monitor_matches_diagnose_on_the_same_pass() -> None:
    net = nets.healthy(nets.mlp(3, nn.Tanh, std=1.0))
    x = nets.batch()
    y = torch.randint(0, 10, (x.shape[0],), generator=torch.Generator().manual_seed(0))
    d = initlab.diagnose(net, x, target=y)
    with initlab.monitor(net, every=1) as mon:
        nn.functional.cross_entropy(net(x), y).backward()
        snap = mon.step()
    assert snap is not None
    for a, b in zip(d.layers, snap.diagnosis.layers, strict=False):
        assert a.output == b.output and a.act == b.act
        assert a.grad_norm == pytest.approx(b.grad_norm, rel=1e-6)
        assert a.weight is not None and b.weight is not None
        assert a.weight.grad_norm == pytest.approx(b.weight.grad_norm, rel=1e-6)
    assert mon.series("act.std")["0"] == [d.layers[0].act.std]


def test_monitor_rejects_bad_every() -> None:
    with pytest.raises(ValueError, match="every"):
        initlab.monitor(nn.Linear(2, 2), every=0)
    with pytest.raises(RuntimeError, match="not running"):
        initlab.monitor(nn.Linear(2, 2)).step()


def test_tensorboard_is_optional(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if tensorboard were not installed
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.warns(UserWarning, match="tensorboard is not installed"):
        mon = initlab.monitor(net, every=1, tensorboard=tmp_path / "runs", path=tmp_path / "m.json")
    with mon:
        net(torch.randn(8, 4)).sum().backward()
        mon.step()
    assert json.loads((tmp_path / "m.json").read_text())["snapshots"][0]["step"] == 0

"""Fault injection: every internal step k of init_model (catalog scheme, auto, a profile, residual transforms,
both generators, a parametrized model), LSUV, transfer, materialize (in memory and to a safetensors file) and
init_sharded fails with RuntimeError, MemoryError or KeyboardInterrupt, or receives a SIGINT; afterwards the
model is bit-identical (values, grads, requires_grad, train/eval, parametrization originals, the parameter
set, module classes, hooks) and no file is left at the target path -- or, where a fault is absorbed, the
result equals a clean run. The calls are counted first, then each k is failed in turn."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import nn

import initlab
from initlab.model import init_model

from ._inject import SIGINT, Injector, Snapshot, same_values, values

FAULTS = (RuntimeError, MemoryError, KeyboardInterrupt, SIGINT)
APPLIER = ("initlab.model._apply.fill_", "initlab.model.plan_counter.counter_fill_",
           "initlab.model.plan_counter.fill_array",  # the whole-tensor fast path draws through it
           "initlab.model._apply._torch_direct",  # torch's common draws, without fill_'s dispatch
           "initlab.model._apply.cast",
           "initlab.model._apply.right_inverse", "initlab.model._apply.Journal.save",
           "initlab.model._apply.Journal.install", "initlab.model._apply.Journal.swap",
           "initlab.model._steps.SetRow.apply_piece",
           "initlab.model._steps.SetSlice.apply_piece", "initlab.model._steps.Scale.apply_piece",
           "initlab.model._steps.RowNorm.apply", "initlab.model._steps.Center.apply")
SCALE = ("initlab.scale.big_model.fill_assignment_", "initlab.scale.big_model.right_inverse",
         "initlab.scale.big_model.write_chunk", "initlab.scale.distributed.fill_assignment_",
         "initlab.scale.distributed.right_inverse", "initlab.model._apply.Journal.save",
         "initlab.model._apply.Journal.install", "initlab.model._apply.cast")
TOTALS = {"runs": 0, "raised": 0, "changed": 0, "absorbed": 0}


class Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


@pytest.fixture(autouse=True)
def _ctrl_c_raises():
    """Ctrl-C as a user's process has it: KeyboardInterrupt. A process started as a background job of a
    non-interactive shell (``cmd &``) inherits SIGINT ignored, and Python then keeps it ignored: every SIGINT
    fault here would be lost (initlab rightly leaves an ignored signal ignored)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def plain() -> nn.Module:
    """A norm (running stats), a frozen parameter, grads, an eval submodule."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(),
                          nn.Linear(8, 3))
    model[5].bias.requires_grad_(False)
    model[3].weight.grad = torch.randn(8, 8)
    model[1].eval()
    return model


def narrow() -> nn.Module:  # auto plans fixed row norms and centred biases here
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Sigmoid(), nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 3))


def recurrent() -> nn.Module:
    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.rnn, self.out = nn.Embedding(10, 6, padding_idx=1), nn.LSTM(6, 5), nn.Linear(5, 2)

        def forward(self, x):
            return self.out(self.rnn(self.emb(x))[0])

    return Net()


def residual() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 6), Block(6), Block(6), nn.Linear(6, 3))


def parametrized() -> nn.Module:
    from torch.nn.utils.parametrizations import orthogonal, weight_norm

    torch.manual_seed(0)
    return nn.Sequential(weight_norm(nn.Linear(5, 6)), nn.ReLU(), orthogonal(nn.Linear(6, 6)),
                         nn.Linear(6, 2))


def weight_normed() -> nn.Module:
    from torch.nn.utils.parametrizations import weight_norm

    torch.manual_seed(0)
    return nn.Sequential(weight_norm(nn.Linear(5, 6)), nn.ReLU(), nn.Linear(6, 2))


@dataclass
class Case:
    build: Callable[[], nn.Module]
    run: Callable[[nn.Module], Any]
    targets: tuple[str, ...]


def _lsuv(m: nn.Module) -> Any:
    return init_model(m, "lsuv", example_input=torch.randn(32, 6), generator=torch.Generator().manual_seed(0))


def _transfer(m: nn.Module) -> Any:
    from initlab.methods import transfer

    source = {k: v + 1 for k, v in plain().state_dict().items() if not k.startswith("5.")}
    return transfer(m, source, reinit="he_normal", seed=0)


CASES = {
    "catalog/counter": Case(plain, lambda m: init_model(m, "he_normal", seed=1), APPLIER),
    "catalog/torch": Case(plain, lambda m: init_model(m, "orthogonal", seed=1, generator="torch"), APPLIER),
    "auto/counter": Case(narrow, lambda m: init_model(m, "auto", seed=1), APPLIER),
    "auto/torch": Case(narrow, lambda m: init_model(m, "auto", seed=1, generator="torch"), APPLIER),
    "profile/torch": Case(recurrent, lambda m: init_model(m, "torch:default", seed=1, generator="torch"),
                          APPLIER),
    "profile/counter": Case(recurrent, lambda m: init_model(m, "keras:default", seed=1), APPLIER),
    "fixup/counter": Case(residual, lambda m: init_model(m, "fixup", seed=1), APPLIER),
    "t_fixup/torch": Case(residual, lambda m: init_model(m, "t_fixup", seed=1, generator="torch"), APPLIER),
    "skipinit/counter": Case(residual, lambda m: init_model(m, "skipinit", seed=1), APPLIER),
    "parametrized/torch": Case(parametrized, lambda m: init_model(m, "he_normal", seed=1, generator="torch"),
                               APPLIER),
    "lsuv": Case(plain, _lsuv, (*APPLIER, "initlab.methods.lsuv.scale_channels_",
                                "initlab.methods.lsuv._pre_init")),
    "transfer": Case(plain, _transfer, (*APPLIER, "initlab.methods.transfer._reinitialize")),
}


Check = Callable[[nn.Module, Snapshot, Any, bool], bool]


def _sweep(case: Case, check: Check) -> int:
    """Count the case's calls, then fail each one with each fault; returns the number of runs."""
    injector = Injector(case.targets)
    reference = case.build()
    with injector.armed():
        case.run(reference)
    total = injector.calls
    assert total > 0, "no injection point was reached"
    expected = values(reference)
    runs = 0
    model = case.build()
    snap = Snapshot.of(model)
    for k in range(1, total + 1):
        for fault in FAULTS:
            raised = False
            try:
                with injector.armed(k, fault):
                    case.run(model)
            except BaseException:
                raised = True
            ok = check(model, snap, expected, raised)
            runs += 1
            TOTALS["runs"] += 1
            TOTALS["raised"] += raised
            TOTALS["absorbed"] += not raised
            TOTALS["changed"] += not ok
            assert ok, f"call {k} of {total} ({fault}): the model was left changed"
            if not raised:  # completed: a fresh model for the next run (else the same one, as it was)
                model = case.build()
                snap = Snapshot.of(model)
    return runs


def _unchanged_or_complete(model: nn.Module, snap: Snapshot, expected: Any, raised: bool) -> bool:
    return snap.same(model) if raised else same_values(values(model), expected)


@pytest.mark.parametrize("name", list(CASES))
def test_every_fault_leaves_the_model_unchanged(name):
    runs = _sweep(CASES[name], _unchanged_or_complete)
    print(f"{name}: {runs} runs, 0 changed")


def _meta(build: Callable[[], nn.Module]) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        with initlab.on_meta():
            return build()

    return make


@pytest.mark.parametrize("scheme", ["auto", "fixup"])
def test_materialize_faults_leave_the_model_on_meta(scheme):
    case = Case(_meta(residual), lambda m: initlab.materialize(m, seed=3, scheme=scheme), SCALE)
    _sweep(case, _unchanged_or_complete)


@pytest.mark.parametrize("scheme", ["auto", "he_normal"])
def test_init_sharded_faults_leave_the_model_on_meta(scheme):
    from initlab.distributed import init_sharded

    build = _meta(weight_normed) if scheme == "he_normal" else _meta(residual)
    case = Case(build, lambda m: init_sharded(m, scheme, seed=3), SCALE)
    _sweep(case, _unchanged_or_complete)


def test_safetensors_faults_leave_no_file(tmp_path):
    target = tmp_path / "model.safetensors"

    def run(m: nn.Module) -> Any:
        if target.exists():
            target.unlink()
        return initlab.materialize(m, seed=3, path=target)

    def check(model: nn.Module, snap: Snapshot, expected: Any, raised: bool) -> bool:
        leftovers = [p for p in tmp_path.iterdir() if p.name != "model.safetensors"]
        return snap.same(model) and not leftovers and (target.exists() != raised)

    _sweep(Case(_meta(residual), run, SCALE), check)


def test_sigint_from_a_timer_during_commit(monkeypatch):
    """A real Ctrl-C (SIGINT from another thread) while the commit runs: KeyboardInterrupt, and the model as
    it was. The signal is sent once the commit has begun (not after a fixed delay, which a loaded machine
    could outrun), and the first swap then waits long enough for Python to deliver it."""
    from initlab.model import _apply

    model = plain()
    snap = Snapshot.of(model)
    original = _apply.Journal.swap
    committing = threading.Event()

    def slow_swap(self, tensor, new, spare):
        committing.set()
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:  # the handler raises KeyboardInterrupt out of this sleep
            time.sleep(0.01)
        return original(self, tensor, new, spare)

    def interrupt() -> None:
        if committing.wait(10.0):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(_apply.Journal, "swap", slow_swap)
    sender = threading.Thread(target=interrupt, daemon=True)
    sender.start()
    with pytest.raises(KeyboardInterrupt):
        init_model(model, "he_normal", seed=0)
    sender.join()
    assert committing.is_set()
    assert snap.same(model)


def test_cayley_parametrization_fails_before_any_write():
    """orthogonal(..., orthogonal_map="cayley", use_trivialization=False) cannot be set from a value: a clear
    error, before any layer is rewritten (it used to come after the other layers were), also from
    materialize (before anything is allocated)."""
    from torch.nn.utils.parametrizations import orthogonal

    torch.manual_seed(0)
    cayley = orthogonal(nn.Linear(6, 6), orthogonal_map="cayley", use_trivialization=False)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), cayley, nn.Linear(6, 2))
    snap = Snapshot.of(model)
    for generator in ("counter", "torch"):
        with pytest.raises(ValueError, match="keep"):
            init_model(model, "he_normal", seed=0, generator=generator)
        assert snap.same(model)
    report = init_model(model, "he_normal", seed=0, rules={"2.weight": "keep"})
    assert report.row("2.weight").status == "kept"
    with initlab.on_meta():
        meta = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6))
    orthogonal(meta[2], orthogonal_map="cayley", use_trivialization=False)
    snap = Snapshot.of(meta)
    with pytest.raises(ValueError, match="keep"):
        initlab.materialize(meta, seed=0, scheme="he_normal")
    assert snap.same(meta)


def test_totals_are_recorded():
    """Printed with -s; the figure in docs/model.md comes from a full run of this file."""
    print(f"fault injection totals: {TOTALS}")
    assert TOTALS["changed"] == 0

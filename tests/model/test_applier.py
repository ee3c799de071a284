"""The one applier: typed post-steps, the per-model lock, strict JSON reports, Lazy modules left lazy by dry
runs and failed calls, materialize on a model with nothing on meta."""

import json
import threading

import pytest
import torch
from torch import nn

import initlab
from initlab.model import ModelState, init_model
from initlab.model._apply import Journal, model_lock
from initlab.model._steps import Center, LooksLinear, RowNorm, Scale, SetRow, SetSlice, as_step


def test_legacy_tuples_become_typed_steps():
    assert as_step(("row", 2, 0.0)) == SetRow(2, 0.0)
    assert as_step(("slice", 4, 8, 1.0)) == SetSlice(4, 8, 1.0)
    assert as_step(("row_norm", 1.5)) == RowNorm(1.5)
    assert as_step(("center", "0.weight", 0.5)) == Center("0.weight", 0.5)
    assert as_step(("looks_linear", "mid")) == LooksLinear("mid")
    with pytest.raises(ValueError, match="unknown post step"):
        as_step(("bogus", 1))


@pytest.mark.parametrize("step", [SetRow(-1, 3.0), SetSlice(2, 7, -1.0), Scale(0.5, 3, 8), Scale(2.0)])
def test_piecewise_steps_equal_the_whole(step):
    full = torch.arange(40.0).reshape(10, 4)
    step.apply(full)
    for cut in (1, 4, 9):
        fresh = torch.arange(40.0).reshape(10, 4)
        top, rest = fresh[:cut].clone(), fresh[cut:].clone()
        step.apply_piece(top, (10, 4), 0)
        step.apply_piece(rest, (10, 4), cut)
        assert torch.equal(torch.cat([top, rest]), full), (step, cut)


def test_the_lock_is_held_while_writing(monkeypatch):
    """Another thread cannot take the model's lock while init_model writes (so two threads initializing one
    model take turns); the lock is re-entrant and weakly keyed."""
    model = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
    lock = model_lock(model)
    assert model_lock(model) is lock
    seen = []
    original = Journal.swap

    def swap(self, tensor, new, spare):
        result = []
        t = threading.Thread(target=lambda: result.append(lock.acquire(blocking=False)))
        t.start()
        t.join()
        seen.extend(result)
        return original(self, tensor, new, spare)

    monkeypatch.setattr(Journal, "swap", swap)
    init_model(model, "he_normal", seed=0)
    assert seen and not any(seen)


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(16, 16), nn.Linear(16, 16)

    def forward(self, x):
        return x + self.b(torch.relu(self.a(x)))


def _residual() -> nn.Module:
    return nn.Sequential(nn.Linear(8, 16), _Block(), _Block(), nn.Linear(16, 3))


def test_two_threads_on_one_model_give_one_result():
    """Draw-then-scale (Fixup) and fixed row norms (auto, narrow layers) from two threads at once: every
    round ends with the single-thread result."""
    ref = _residual()
    init_model(ref, "fixup", seed=5)
    model = _residual()
    for _ in range(5):
        threads = [threading.Thread(target=init_model, args=(model, "fixup"), kwargs={"seed": 5})
                   for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for (name, p), q in zip(model.named_parameters(), ref.parameters(), strict=True):
            assert torch.equal(p, q), name


def test_to_json_is_strict():
    model = nn.Sequential(*[nn.Linear(8, 8) for _ in range(40)])
    report = init_model(model, "normal(0, 100)", dry_run=True)
    report.output_var = float("inf")
    report.rows[0].var_out = float("nan")

    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")

    data = json.loads(report.to_json(), parse_constant=refuse)
    assert data["output_var"] == "inf" and data["rows"][0]["var_out"] == "nan"


def _lazy():
    return nn.Sequential(nn.LazyLinear(6), nn.ReLU(), nn.LazyLinear(2))


def test_dry_run_leaves_lazy_modules_lazy():
    model = _lazy()
    report = init_model(model, "he_normal", example_input=torch.randn(3, 5), dry_run=True)
    assert isinstance(model[0], nn.LazyLinear) and model[0].has_uninitialized_params()
    assert report.row("0.weight").shape == (6, 5)


def test_failed_call_leaves_lazy_modules_lazy(monkeypatch):
    from initlab.model import _apply

    model = _lazy()

    def boom(*args, **kwargs):
        raise MemoryError("injected")

    monkeypatch.setattr(_apply, "prepare_plan", boom)
    monkeypatch.setattr("initlab.model.api.prepare_plan", boom)
    with pytest.raises(MemoryError):
        init_model(model, "he_normal", example_input=torch.randn(3, 5), seed=0, generator="torch")
    assert type(model[0]) is nn.LazyLinear and model[0].has_uninitialized_params()
    monkeypatch.undo()
    init_model(model, "he_normal", example_input=torch.randn(3, 5), seed=0)  # and it still works
    assert type(model[0]) is nn.Linear and model[0].weight.shape == (6, 5)


def test_materialize_needs_meta_tensors():
    model = nn.Sequential(nn.Linear(4, 4))
    state = ModelState.capture(model)
    with pytest.raises(ValueError, match="init_model"):
        initlab.materialize(model, seed=0)
    assert state.matches(model)


@pytest.mark.parametrize("kwargs,match", [({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
                                          ({"seed": 0, "device": "bogus"}, "device")])
def test_materialize_and_init_sharded_validate_before_allocating(kwargs, match):
    from initlab.distributed import init_sharded

    for fn in (initlab.materialize, init_sharded):
        with initlab.on_meta():
            model = nn.Sequential(nn.Linear(4, 4))
        with pytest.raises((ValueError, TypeError), match=match):
            fn(model, **kwargs)
        assert all(p.device.type == "meta" for p in model.parameters())


def test_values_land_in_spare_storage_recycled_between_calls():
    """A parameter nothing else shares gets its values drawn into spare storage and swapped in (no snapshot
    copy): the same Parameter object, its old storage reused by the next call."""
    model = nn.Sequential(nn.Linear(16, 32))
    weight = model[0].weight
    first = weight.data_ptr()
    init_model(model, "he_normal", seed=0)
    assert model[0].weight is weight and weight.data_ptr() != first
    init_model(model, "he_normal", seed=1)
    assert weight.data_ptr() == first


def test_a_shared_storage_is_written_in_place():
    """Where another tensor views the storage, the values are written in place (the view sees them)."""
    model = nn.Sequential(nn.Linear(16, 32))
    view = model[0].weight.detach()
    init_model(model, "he_normal", seed=0)
    assert view.data_ptr() == model[0].weight.data_ptr() and torch.equal(view, model[0].weight)


@pytest.mark.parametrize("generator", ["counter", "torch"])
def test_autograd_sees_the_write(generator):
    """A graph built before init does not silently use the new weights (the version counter moves)."""
    model = nn.Sequential(nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 1))
    loss = model(torch.randn(3, 4)).sum()
    init_model(model, "he_normal", seed=0, generator=generator)
    with pytest.raises(RuntimeError, match="inplace"):
        loss.backward()

"""counter_fill_ on torch tensors: dtypes, pieces of a global tensor, structured draws, edges, validation."""

import math

import numpy as np
import pytest
import torch

from initlab.catalog import draws as d
from initlab.scale import counter_fill_, generate

NORMAL = d.Normal(0.0, 0.5)


def test_float64_and_half_types_hold_the_float32_values():
    ref = counter_fill_(torch.empty(33, 7), NORMAL, seed=1, name="w")
    assert torch.equal(counter_fill_(torch.empty(33, 7, dtype=torch.float64), NORMAL, seed=1, name="w"),
                       ref.double())
    for dt in (torch.bfloat16, torch.float16):
        assert torch.equal(counter_fill_(torch.empty(33, 7, dtype=dt), NORMAL, seed=1, name="w"), ref.to(dt))


def test_non_contiguous_and_requires_grad():
    ref = counter_fill_(torch.empty(8, 5), NORMAL, seed=2, name="w")
    t = torch.empty(5, 8).t()
    assert torch.equal(counter_fill_(t, NORMAL, seed=2, name="w"), ref)
    p = torch.nn.Parameter(torch.empty(8, 5))
    counter_fill_(p, NORMAL, seed=2, name="w")
    assert torch.equal(p.detach(), ref) and p.requires_grad


@pytest.mark.parametrize("draw", [NORMAL, d.Uniform(-0.1, 0.1), d.TruncatedNormal(0.0, 0.02)], ids=str)
def test_pieces_equal_slices_of_the_full_tensor(draw):
    full = counter_fill_(torch.empty(10, 9, 4), draw, seed=3, name="conv.weight")
    # flat offset: rows 3..6 (FSDP-style dim-0 shard)
    piece = generate(draw, seed=3, name="conv.weight", local_shape=(4, 9, 4), global_shape=(10, 9, 4),
                     offset=3 * 36)
    assert torch.equal(piece, full[3:7])
    # per-dimension box: Shard(1), uneven
    box = generate(draw, seed=3, name="conv.weight", local_shape=(10, 2, 4), global_shape=(10, 9, 4),
                   offset=(0, 7, 0))
    assert torch.equal(box, full[:, 7:9])
    inner = generate(draw, seed=3, name="conv.weight", local_shape=(3, 4, 1), global_shape=(10, 9, 4),
                     offset=(2, 1, 3))
    assert torch.equal(inner, full[2:5, 1:5, 3:4])


def test_edges():
    scalar = counter_fill_(torch.empty(()), NORMAL, seed=0, name="s")
    assert torch.isfinite(scalar)
    assert counter_fill_(torch.empty(0, 5), NORMAL, seed=0, name="e").shape == (0, 5)
    vec = counter_fill_(torch.empty(5), d.Constant(0.25), seed=0, name="b")
    assert torch.equal(vec, torch.full((5,), 0.25))
    meta = counter_fill_(torch.empty(3, 3, device="meta"), NORMAL, seed=0, name="m")
    assert meta.device.type == "meta"


def test_global_rng_untouched_and_seed_determines_everything():
    state = torch.get_rng_state()
    a = counter_fill_(torch.empty(100), NORMAL, seed=9, name="w")
    torch.manual_seed(123)
    torch.rand(3)
    b = counter_fill_(torch.empty(100), NORMAL, seed=9, name="w")
    torch.set_rng_state(state)
    assert torch.equal(a, b)
    assert not torch.equal(a, counter_fill_(torch.empty(100), NORMAL, seed=10, name="w"))


def test_orthogonal_is_global_and_sliceable():
    full = counter_fill_(torch.empty(6, 10), d.Orthogonal(gain=2.0), seed=4, name="q")
    assert torch.allclose(full @ full.t(), 4 * torch.eye(6), atol=1e-5)
    box = generate(d.Orthogonal(gain=2.0), seed=4, name="q", local_shape=(6, 3), global_shape=(6, 10),
                   offset=(0, 7))
    assert torch.equal(box, full[:, 7:])
    tall = counter_fill_(torch.empty(12, 2, 2), d.Orthogonal(), seed=4, name="q2").reshape(12, 4)
    assert torch.allclose(tall.t() @ tall, torch.eye(4), atol=1e-5)


def test_other_structured_draws():
    sparse = counter_fill_(torch.empty(20, 8), d.Sparse(sparsity=0.3, std=0.01), seed=5, name="s")
    assert ((sparse == 0).sum(0) == math.ceil(0.3 * 20)).all()
    eye = counter_fill_(torch.empty(3, 5), d.Eye(gain=2.0), seed=5, name="e")
    assert torch.equal(eye, 2 * torch.eye(3, 5))
    delta = counter_fill_(torch.empty(4, 4, 3), d.DeltaOrthogonal(), seed=5, name="c")
    centre = delta[:, :, 1]
    assert torch.allclose(centre @ centre.t(), torch.eye(4), atol=1e-5)
    assert delta[:, :, 0].abs().sum() == 0


def test_bad_input_is_rejected_before_writing():
    t = torch.zeros(4, 4)
    with pytest.raises(TypeError):
        counter_fill_(torch.zeros(4, dtype=torch.int64), NORMAL, seed=0, name="w")
    with pytest.raises(ValueError):
        counter_fill_(t, NORMAL, seed=0, name="w", offset=13, global_shape=(4, 7))
    with pytest.raises(ValueError):
        counter_fill_(t, NORMAL, seed=0, name="w", offset=(1, 4), global_shape=(5, 7))
    with pytest.raises(ValueError):
        counter_fill_(t, d.Uniform(1.0, -1.0), seed=0, name="w")
    with pytest.raises(ValueError):
        counter_fill_(t, NORMAL, seed=-3, name="w")
    assert torch.equal(t, torch.zeros(4, 4))


def test_threads_do_not_change_values():
    a = counter_fill_(torch.empty(1 << 16), NORMAL, seed=6, name="w", threads=1)
    b = counter_fill_(torch.empty(1 << 16), NORMAL, seed=6, name="w", threads=2)
    assert np.array_equal(a.numpy(), b.numpy())


def test_fallback_without_numba_gives_the_same_values(monkeypatch):
    ref = counter_fill_(torch.empty(3, 1001), d.TruncatedNormal(0.0, 0.02), seed=8, name="w")
    monkeypatch.setenv("INITLAB_NO_NUMBA", "1")
    from initlab.backends.counter.fill import has_numba

    assert not has_numba()
    again = counter_fill_(torch.empty(3, 1001), d.TruncatedNormal(0.0, 0.02), seed=8, name="w")
    assert torch.equal(again, ref)


def test_triton_module_imports_and_stays_off_on_cpu():
    from initlab.backends.counter import kernels_triton

    assert not kernels_triton.available()  # no GPU here; and opt-in (INITLAB_TRITON=1) until checked on one
    assert len(kernels_triton.F32_CONSTANTS) == 19 and len(kernels_triton.F64_CONSTANTS) == 23

"""``initlab.compat.torch`` against ``torch.nn.init``.

Part 1 checks, for ``init = initlab.compat.torch``, the properties PyTorch's own ``test/nn/test_init.py``
checks
(TestNNInit and TestNNInitDeviceType: exact gains, KS tests on random shapes, bounds, dirac identity through
conv1d/2d/3d, sparse column zeros, orthogonality, warnings and errors, trunc_normal_ in every dtype). The
checks
follow that file (PyTorch, BSD-3-Clause, Copyright (c) Facebook, Inc. and its affiliates and the PyTorch
contributors) but are written here for pytest rather than copied. Part 2 compares the two modules directly:
signatures, errors on the same inputs, and bit-identical values where the module doc promises them.
"""

from __future__ import annotations

import inspect
import math
import random
import string
import warnings

import pytest
import torch
import torch.nn.functional as F
import torch.nn.init as tinit
from scipy import stats

from initlab.compat import torch as init

KS_P = 1e-4


@pytest.fixture
def rnd() -> random.Random:
    return random.Random(123)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """The functions under test draw from torch's global generator, as torch's do: seeded per test, so a KS
    check's outcome does not depend on which tests ran before it in the worker (one failed at p < 1e-4)."""
    torch.manual_seed(0)


def is_normal(t: torch.Tensor, mean: float, std: float) -> bool:
    return stats.kstest(t.reshape(-1).double().numpy(), "norm", args=(mean, std)).pvalue > KS_P


def is_uniform(t: torch.Tensor, a: float, b: float) -> bool:
    return stats.kstest(t.reshape(-1).double().numpy(), "uniform", args=(a, b - a)).pvalue > KS_P


def is_trunc_normal(t: torch.Tensor, mean: float, std: float, a: float, b: float) -> bool:
    z = (t.reshape(-1).double().numpy() - mean) / std
    return stats.kstest(z, "truncnorm", args=((a - mean) / std, (b - mean) / std)).pvalue > KS_P


def random_tensor(rnd: random.Random, dims: int, lo: int, hi: int, dtype: torch.dtype = torch.float32
                  ) -> torch.Tensor:
    return torch.zeros([rnd.randint(lo, hi) for _ in range(dims)], dtype=dtype)


def fans_by_hand(t: torch.Tensor) -> tuple[int, int]:
    k = t[0, 0].numel() if t.dim() > 2 else 1
    return t.size(1) * k, t.size(0) * k


# ---- Part 1: the properties torch's test_init.py checks ----------------------------------------------------
def test_calculate_gain_exact_values() -> None:
    for fn in ["linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
               "conv_transpose3d", "sigmoid"]:
        assert init.calculate_gain(fn) == 1
    assert init.calculate_gain("tanh") == 1.6666666666666667
    assert init.calculate_gain("relu") == 1.4142135623730951
    assert init.calculate_gain("selu") == 0.75
    for param, value in [(None, 1.4141428569978354), (0, 1.4142135623730951), (0.01, 1.4141428569978354),
                         (10, 0.14071950894605836)]:
        assert init.calculate_gain("leaky_relu", param) == value


def test_calculate_gain_rejects_bad_input(rnd: random.Random) -> None:
    for param in [True, [1], {"a": "b"}]:
        with pytest.raises(ValueError):
            init.calculate_gain("leaky_relu", param)  # type: ignore[arg-type]
    for n in [2, 5, 25]:
        with pytest.raises(ValueError):
            init.calculate_gain("".join(rnd.choice(string.ascii_lowercase) for _ in range(n)))


@pytest.mark.parametrize("dims", [1, 2, 4])
def test_uniform_and_normal_ks(rnd: random.Random, dims: int) -> None:
    t = random_tensor(rnd, dims, 30, 50)
    a = rnd.uniform(-3, 3)
    b = a + rnd.uniform(1, 5)
    assert is_uniform(init.uniform_(t, a=a, b=b), a, b)
    mean, std = rnd.uniform(-3, 3), rnd.uniform(1, 5)
    assert is_normal(init.normal_(t, mean=mean, std=std), mean, std)


def test_trunc_normal_generator_equals_global_seed() -> None:
    g = torch.Generator().manual_seed(42)
    t = init.trunc_normal_(torch.empty(5), generator=g)
    state = torch.get_rng_state()
    try:
        torch.manual_seed(42)
        ref = init.trunc_normal_(torch.empty(5))
    finally:
        torch.set_rng_state(state)
    assert torch.equal(t, ref)
    assert is_trunc_normal(t, 0, 1, -2, 2)


@pytest.mark.parametrize("dims", [1, 2, 4])
def test_constant_ones_zeros(rnd: random.Random, dims: int) -> None:
    t = random_tensor(rnd, dims, 1, 5)
    val = rnd.uniform(1, 10)
    assert torch.equal(init.constant_(t, val), torch.full_like(t, val))
    assert torch.equal(init.ones_(t), torch.ones_like(t))
    assert torch.equal(init.zeros_(t), torch.zeros_like(t))


def test_eye(rnd: random.Random) -> None:
    t = random_tensor(rnd, 2, 1, 5)
    assert torch.equal(init.eye_(t), torch.eye(*t.shape))
    for dims in [1, 3]:
        with pytest.raises(ValueError):
            init.eye_(random_tensor(rnd, dims, 1, 3))


@pytest.mark.parametrize("dims", [3, 4, 5])
@pytest.mark.parametrize("groups", [1, 2, 3])
def test_dirac_properties(rnd: random.Random, dims: int, groups: int) -> None:
    a, c, d, e = (rnd.randint(1, 5) for _ in range(4))
    b = rnd.randint(1, 5 * groups)
    t = torch.randn((a * groups, b, c, d, e)[:dims], generator=torch.Generator().manual_seed(0))
    init.dirac_(t, groups)
    min_d = min(t.size(0) // groups, t.size(1))
    assert torch.count_nonzero(t) == min_d * groups
    assert t.sum().item() == pytest.approx(min_d * groups)


@pytest.mark.parametrize("groups", [1, 3])
@pytest.mark.parametrize("dims, conv", [(1, F.conv1d), (2, F.conv2d), (3, F.conv3d)])
def test_dirac_identity(groups: int, dims: int, conv: object) -> None:
    batch, in_c, out_c, size, k = 8, 3, 9, 5, 3
    per = out_c // groups
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, in_c, *([size] * dims), generator=g)
    w = torch.cat([torch.zeros(per, in_c, *([k] * dims))] * groups)
    init.dirac_(w, groups)
    y = conv(x, w)  # type: ignore[operator]
    inner = (slice(None), slice(None), *([slice(1, -1)] * dims))
    for grp in range(groups):
        torch.testing.assert_close(y[:, per * grp:per * grp + in_c], x[inner])
        assert torch.count_nonzero(y[:, per * grp + in_c:per * (grp + 1)]) == 0


def test_shape_errors(rnd: random.Random) -> None:
    for dims in [1, 2, 6]:
        with pytest.raises(ValueError):
            init.dirac_(random_tensor(rnd, dims, 1, 3))
    for fn in [init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_]:
        for dims in [0, 1]:
            with pytest.raises(ValueError):
                fn(random_tensor(rnd, dims, 1, 1))
    for dims in [1, 3]:
        with pytest.raises(ValueError):
            init.sparse_(random_tensor(rnd, dims, 1, 3), rnd.uniform(0.1, 0.9))


@pytest.mark.parametrize("dims", [2, 4])
@pytest.mark.parametrize("use_gain", [True, False])
def test_xavier(rnd: random.Random, dims: int, use_gain: bool) -> None:
    t = random_tensor(rnd, dims, 20, 25)
    gain = rnd.uniform(0.1, 2) if use_gain else 1.0
    fan_in, fan_out = fans_by_hand(t)
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    kwargs = {"gain": gain} if use_gain else {}
    assert is_uniform(init.xavier_uniform_(t, **kwargs), -std * math.sqrt(3), std * math.sqrt(3))
    assert is_normal(init.xavier_normal_(t, **kwargs), 0, std)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out"])
@pytest.mark.parametrize("dims", [2, 4])
@pytest.mark.parametrize("use_a", [True, False])
def test_kaiming(rnd: random.Random, mode: str, dims: int, use_a: bool) -> None:
    t = random_tensor(rnd, dims, 20, 25)
    a = rnd.uniform(0.1, 2) if use_a else 0
    n = fans_by_hand(t)[0 if mode == "fan_in" else 1]
    std = math.sqrt(2.0 / ((1 + a**2) * n))
    kwargs = {"a": a} if use_a else {}
    assert is_uniform(init.kaiming_uniform_(t, mode=mode, **kwargs), -std * math.sqrt(3), std * math.sqrt(3))
    assert is_normal(init.kaiming_normal_(t, mode=mode, **kwargs), 0, std)


@pytest.mark.parametrize("fn", [init.kaiming_uniform_, init.kaiming_normal_])
def test_kaiming_warns_on_zero_element_tensor(fn: object) -> None:
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        fn(torch.empty(0, 1))  # type: ignore[operator]


@pytest.mark.parametrize("use_random_std", [True, False])
def test_sparse(rnd: random.Random, use_random_std: bool) -> None:
    t = random_tensor(rnd, 2, 30, 35)
    rows = t.size(0)
    sparsity = rnd.uniform(0.1, 0.2)
    std = rnd.uniform(0.01, 0.2) if use_random_std else 0.01
    state = torch.get_rng_state()  # sparse_ draws its mask from the global generator, as torch's does
    try:
        init.sparse_(t, sparsity=sparsity, std=std) if use_random_std else init.sparse_(t, sparsity=sparsity)
    finally:
        torch.set_rng_state(state)
    for col in range(t.size(1)):
        assert (t[:, col] == 0).sum() >= math.ceil(sparsity * rows)
    assert is_normal(t[t != 0], 0, std)


@pytest.mark.parametrize("use_gain", [True, False])
@pytest.mark.parametrize("size", [[3, 4], [4, 3], [20, 2, 3, 4], [2, 3, 4, 5]])
def test_orthogonal(rnd: random.Random, use_gain: bool, size: list[int]) -> None:
    t = torch.zeros(size)
    gain = rnd.uniform(0.1, 2) if use_gain else 1.0
    init.orthogonal_(t, gain=gain) if use_gain else init.orthogonal_(t)
    rows, cols = size[0], math.prod(size[1:])
    flat = t.view(rows, cols)
    gram = flat.t() @ flat if rows > cols else flat @ flat.t()
    torch.testing.assert_close(gram, torch.eye(min(rows, cols)) * gain**2, atol=1e-6, rtol=0)


def test_deprecated_aliases_warn() -> None:
    with pytest.warns(FutureWarning, match="deprecated"):
        init.normal(torch.randn(3, 3))


@pytest.mark.parametrize("dims", [1, 2, 4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_trunc_normal_random_bounds(rnd: random.Random, dims: int, dtype: torch.dtype) -> None:
    t = random_tensor(rnd, dims, 30, 50, dtype)
    mean, std = rnd.uniform(-3, 3), rnd.uniform(0.01, 1)
    a, b = rnd.uniform(mean - 2 * std, mean), rnd.uniform(mean, mean + 2 * std)
    init.trunc_normal_(t, mean=mean, std=std, a=a, b=b)
    assert t.min().item() >= torch.tensor(a, dtype=dtype).item()
    assert t.max().item() <= torch.tensor(b, dtype=dtype).item()
    assert is_trunc_normal(t.float(), mean, std, a, b)


@pytest.mark.parametrize("dtype, a, b", [(torch.float16, -2.0, 2.0), (torch.bfloat16, -2.0, 2.0),
                                         (torch.float32, 2.0, 3.0), (torch.float64, 2.0, 3.0),
                                         (torch.float16, 2.0, 3.0)])
def test_trunc_normal_low_precision_and_narrow(dtype: torch.dtype, a: float, b: float) -> None:
    g = torch.Generator().manual_seed(0)
    t = init.trunc_normal_(torch.empty(10000, dtype=dtype), 0.0, 1.0, a, b, generator=g)
    assert t.min().item() >= a and t.max().item() <= b
    assert is_trunc_normal(t.float(), 0.0, 1.0, a, b)


@pytest.mark.parametrize("dtype, min_unique", [(torch.float32, 5000), (torch.float64, 5000),
                                               (torch.float16, 3000), (torch.bfloat16, 1000)])
def test_trunc_normal_unique_finite_values(dtype: torch.dtype, min_unique: int) -> None:
    t = init.trunc_normal_(torch.empty(10000, dtype=dtype), generator=torch.Generator().manual_seed(0))
    assert t.min().item() >= -2.0 and t.max().item() <= 2.0
    assert t.unique().numel() > min_unique
    assert torch.isfinite(t).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_trunc_normal_small_std_never_hits_the_bounds(dtype: torch.dtype) -> None:
    t = init.trunc_normal_(torch.empty(10000, dtype=dtype), 0.0, 0.1, -2.0, 2.0,
                           generator=torch.Generator().manual_seed(0))
    assert (t == -2.0).sum() == 0 and (t == 2.0).sum() == 0


# ---- Part 2: the two modules side by side ------------------------------------------------------------------
PUBLIC = [n for n in dir(tinit) if not n.startswith("_") and inspect.isfunction(getattr(tinit, n))
          and getattr(tinit, n).__module__ == "torch.nn.init"]


def test_every_torch_function_exists_with_the_same_signature() -> None:
    assert PUBLIC, "torch.nn.init lists no functions?"
    for name in [*PUBLIC, "_calculate_fan_in_and_fan_out", "_calculate_correct_fan"]:
        ours, theirs = getattr(init, name), getattr(tinit, name)
        if name.endswith("_") or name.startswith("_") or name == "calculate_gain":
            p_ours = [(p.name, p.default, p.kind) for p in inspect.signature(ours).parameters.values()]
            p_theirs = [(p.name, p.default, p.kind) for p in inspect.signature(theirs).parameters.values()]
            assert p_ours == p_theirs, name


@pytest.mark.parametrize("fn", ["uniform_", "normal_", "xavier_uniform_", "xavier_normal_",
                                "kaiming_uniform_", "kaiming_normal_"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bit_identical_to_torch_for_a_generator_state(fn: str, dtype: torch.dtype) -> None:
    for shape in [(64, 32, 3, 3), (7, 5), (100, 3)]:
        a, b = torch.empty(shape, dtype=dtype), torch.empty(shape, dtype=dtype)
        getattr(init, fn)(a, generator=torch.Generator().manual_seed(5))
        getattr(tinit, fn)(b, generator=torch.Generator().manual_seed(5))
        assert torch.equal(a, b), (fn, shape)


@pytest.mark.parametrize("call", [
    lambda m: m.eye_(torch.empty(3, 5)), lambda m: m.dirac_(torch.empty(6, 4, 3, 3), 2),
    lambda m: m.constant_(torch.empty(2, 3), 0.3), lambda m: m.zeros_(torch.empty(4)),
    lambda m: m.ones_(torch.empty(4)), lambda m: m.dirac_(torch.empty(6, 4, 3), 4),
    lambda m: m.kaiming_normal_(torch.empty(4, 4), mode="fan_avg"),
    lambda m: m.kaiming_uniform_(torch.empty(4, 4), nonlinearity="gelu"),
    lambda m: m.kaiming_uniform_(torch.empty(4, 4), mode="FAN_OUT",
                                 generator=torch.Generator().manual_seed(0)),
    lambda m: m.orthogonal_(torch.empty(3)), lambda m: m.sparse_(torch.empty(3, 4, 5), 0.1),
    lambda m: m._calculate_fan_in_and_fan_out(torch.empty(4, 3, 2)),
    lambda m: m._calculate_correct_fan(torch.empty(4, 3, 2), "fan_out"),
    lambda m: m._calculate_correct_fan(torch.empty(4, 3, 2), "fan_xx"),
    lambda m: m.orthogonal_(torch.empty(0, 4)), lambda m: m.eye_(torch.empty(2, 3, device="meta")),
])
def test_same_outcome_as_torch(call: object) -> None:
    outcomes = []
    for module in (init, tinit):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out = call(module)  # type: ignore[operator]
            outcomes.append(out if not isinstance(out, torch.Tensor) or out.is_meta else out.clone())
        except Exception as exc:
            outcomes.append(type(exc))
    ours, theirs = outcomes
    if isinstance(theirs, torch.Tensor):
        assert isinstance(ours, torch.Tensor) and ours.shape == theirs.shape
        if not theirs.is_meta:
            assert torch.equal(ours, theirs)
    else:
        assert ours == theirs


def test_half_and_noncontiguous_tensors() -> None:
    w = torch.empty(40, 60, dtype=torch.bfloat16).t()
    init.kaiming_uniform_(w, generator=torch.Generator().manual_seed(0))
    bound = math.sqrt(6 / 40)
    assert w.abs().max().item() <= bound * (1 + 2**-8) and is_uniform(w.float(), -bound, bound)


def test_parameters_keep_requires_grad() -> None:
    p = torch.nn.Parameter(torch.empty(8, 8))
    for fn in [init.xavier_uniform_, init.orthogonal_, init.trunc_normal_, init.ones_]:
        fn(p)
        assert p.requires_grad and p.grad_fn is None


def test_meta_tensors_are_left_alone() -> None:
    for fn in [init.uniform_, init.normal_, init.trunc_normal_, init.xavier_normal_, init.orthogonal_]:
        t = torch.empty(4, 4, device="meta")
        assert fn(t) is t

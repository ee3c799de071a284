"""compat.torch raises what torch.nn.init raises (issue 14 item 12)."""

from __future__ import annotations

import warnings

import pytest
import torch

from initlab.compat import torch as ci

INT_DTYPES = [torch.int64, torch.int32, torch.uint8, torch.bool]
RANDOM = [
    lambda m, t: m.uniform_(t),
    lambda m, t: m.normal_(t),
    lambda m, t: m.trunc_normal_(t),
    lambda m, t: m.xavier_uniform_(t),
    lambda m, t: m.xavier_normal_(t),
    lambda m, t: m.kaiming_uniform_(t),
    lambda m, t: m.kaiming_normal_(t),
    lambda m, t: m.orthogonal_(t),
    lambda m, t: m.sparse_(t, 0.5),
]


def _outcome(fn, module, tensor):  # type: ignore[no-untyped-def]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fn(module, tensor)
        except Exception as exc:
            return type(exc), str(exc)
    return None, tensor.dtype


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("fn", RANDOM)
def test_integer_tensors_raise_like_torch(fn, dtype):  # type: ignore[no-untyped-def]
    t = torch.zeros(4, 6, dtype=dtype)
    ours = _outcome(fn, ci, t.clone())
    assert ours == _outcome(fn, torch.nn.init, t.clone())
    assert ours[0] in (NotImplementedError, RuntimeError)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_orthogonal_half_raises_like_torch(dtype):  # type: ignore[no-untyped-def]
    t = torch.zeros(4, 6, dtype=dtype)
    fn = RANDOM[7]
    ours = _outcome(fn, ci, t.clone())
    assert ours == _outcome(fn, torch.nn.init, t.clone())
    assert ours[0] is NotImplementedError
    assert torch.equal(t, torch.zeros_like(t))


BAD_ARGS = [
    lambda m, t: m.uniform_(t, 1.0, 0.0),
    lambda m, t: m.normal_(t, 0.0, -1.0),
    lambda m, t: m.normal_(t, 0.0, float("nan")),
    lambda m, t: m.trunc_normal_(t, a=2.0, b=-2.0),
    lambda m, t: m.uniform_(t, 0.0, float("inf")),
    lambda m, t: m.uniform_(t, -3e38, 3e38),
    lambda m, t: m.sparse_(t, 0.5, std=-1.0),
]


@pytest.mark.parametrize("fn", BAD_ARGS)
def test_bad_arguments_raise_torchs_error(fn):  # type: ignore[no-untyped-def]
    t = torch.zeros(4, 6)
    ours = _outcome(fn, ci, t.clone())
    assert ours == _outcome(fn, torch.nn.init, t.clone())
    assert ours[0] is RuntimeError
    assert torch.equal(t, torch.zeros_like(t))


def test_main_api_still_draws_half_orthogonal():  # type: ignore[no-untyped-def]
    import initlab

    w = initlab.init_(torch.empty(8, 8, dtype=torch.bfloat16), "orthogonal", seed=0)
    assert torch.allclose((w.float() @ w.float().t()), torch.eye(8), atol=0.05)

"""How many times init_model runs the user's forward: discovery by hooks already runs the model on the
example input, so the input check does not run it again; a bad input still gets the one clear error."""

import pytest
import torch
from torch import nn

from initlab.errors import InitlabError
from initlab.model import init_model

RUNS: list[int] = []  # forward passes on real tensors (not fx's tracing proxies); kept off the module,
# whose attributes are part of the graph cache's key


class Untraceable(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it, discovery runs it with hooks."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(16, 32), nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.fx.Proxy):
            RUNS.append(id(self))
        h = torch.relu(self.a(x))
        if h.sum() > 0:  # fx: a Proxy has no truth value
            h = h * 1.0
        return self.b(h)


def test_hook_discovery_runs_the_model_once_and_a_cached_call_not_at_all():
    model, x = Untraceable(), torch.randn(8, 16)
    report = init_model(model, "auto", example_input=x, seed=0)
    assert report.method == "hooks"
    assert RUNS.count(id(model)) == 1
    init_model(model, "auto", example_input=x, seed=0)
    assert RUNS.count(id(model)) == 1


def test_an_input_that_does_not_fit_still_gets_the_clear_error_and_changes_nothing():
    model = Untraceable()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(InitlabError, match="does not fit the model"):
        init_model(model, "auto", example_input=torch.randn(8, 5), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_a_traceable_model_still_checks_its_input():
    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 2))
    with pytest.raises(InitlabError, match="does not fit the model"):
        init_model(model, "auto", example_input=torch.randn(4, 3), seed=0)


class Attention(nn.Module):
    """Traceable, with a softmax whose sizes discovery reads by running the traced graph on the input."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv, self.out = nn.Linear(16, 48), nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, dim=-1)  # unpacking a traced value
        return self.out(torch.softmax(q @ k.transpose(1, 2) / 4.0, dim=-1) @ v)


def test_fx_sizes_pass_doubles_as_the_input_check():
    """fx discovery runs the traced graph on the example input for its sizes: the input check does not run the
    model a second time (counted by a hook on a leaf layer, which tracing does not run)."""
    model, calls = Attention(), []
    model.qkv.register_forward_hook(lambda *_: calls.append(1))
    report = init_model(model, "auto", example_input=torch.randn(2, 5, 16), seed=0)
    assert report.method == "fx"
    assert len(calls) == 1
    with pytest.raises(InitlabError, match="does not fit the model"):
        init_model(Attention(), "auto", example_input=torch.randn(2, 5, 7), seed=0)


class BareAssert(nn.Module):
    """timm's HaloAttention checks its input with ``torch._assert(cond, '')``: an exception with an empty
    message (a bare ``assert`` in a test module gets pytest's rewritten message)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.fx.Proxy):
            torch._assert(x.shape[-1] % 16 == 0, "")
        return self.fc(x)


def test_an_input_rejected_by_a_bare_assert_gets_the_clear_error():
    with pytest.raises(InitlabError, match=r"does not fit the model: AssertionError$"):
        init_model(BareAssert(), "auto", example_input=torch.randn(4, 8), seed=0)


def test_diagnose_runs_a_traceable_model_only_for_its_own_measurements():
    """diagnose reads no sizes (what a plan's averages keep): on a model fx traces, discovery does not run
    it, so a first diagnose costs the passes of a second one, which finds the graph cached; an untraceable
    model is run once by hook discovery, and not again for the same input."""
    import initlab
    from initlab.model import discover

    model, calls, x = Attention(), [], torch.randn(2, 5, 16)
    model.qkv.register_forward_hook(lambda *_: calls.append(1))
    assert discover(model, x, sizes=False, cache=False).method == "fx" and not calls
    initlab.diagnose(model, x, seed=0)
    first = len(calls)
    initlab.diagnose(model, x, seed=0)
    assert len(calls) - first == first
    model, x = Untraceable(), torch.randn(8, 16)
    initlab.diagnose(model, x, seed=0)
    runs = RUNS.count(id(model))
    initlab.diagnose(model, x, seed=0)
    assert RUNS.count(id(model)) - runs == runs - 1


class UntraceablePadded(nn.Module):
    """Hook discovery only; a zero-padded conv, whose share of taps reading the input is a size."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.conv(x))
        if h.sum() > 0:  # fx: a Proxy has no truth value
            h = h * 1.0
        return self.head(h.mean((2, 3)))


def test_a_graph_found_without_sizes_does_not_serve_a_plan():
    """diagnose's hooked pass reads no sizes (no call sizes, no computed constants); its cached graph is
    reused for diagnose, while a plan for the same input runs discovery again, with sizes."""
    from initlab.model import discover

    model, x = UntraceablePadded(), torch.randn(2, 3, 4, 4)
    bare = discover(model, x, sizes=False)
    assert bare.method == "hooks" and bare.layer("conv").taps_read == 1.0  # the default: not read
    assert discover(model, x, sizes=False) is bare
    sized = discover(model, x)
    assert sized is not bare
    assert sized.layer("conv").taps_read == pytest.approx((10 / 12) ** 2)  # per axis 2+3+3+2 of 4*3 taps
    assert discover(model, x, sizes=False) is sized  # a graph with sizes serves both

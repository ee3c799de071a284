"""Discovery's analysis is linear in the recorded ops: counted in node visits, not timed (issue 13 item 7;
times are in benchmarks/discovery_cost.py)."""

import pytest
import torch
from torch import nn

from initlab.model import discover


class Loop(nn.Module):
    def __init__(self, steps: int, traceable: bool):
        super().__init__()
        self.steps, self.traceable = steps, traceable
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        if not self.traceable and x.sum() > 1e9:
            return x
        for _ in range(self.steps):
            x = x + torch.tanh(self.fc(x))
        return x


@pytest.mark.parametrize("traceable", [True, False])
def test_node_visits_grow_linearly_with_the_loop(traceable):
    counts = {}
    for steps in (25, 100):
        graph = discover(Loop(steps, traceable), torch.randn(2, 4))
        assert graph.method == ("fx" if traceable else "hooks")
        assert len(graph.branches) == steps
        counts[steps] = (graph.visits, len(graph.nodes))
    (v1, _), (v4, n4) = counts[25], counts[100]
    # quadrupled ops: visits at most quadruple (the old analysis scanned every node for each addition)
    assert v4 <= 4.2 * v1
    assert v4 <= 4 * n4


class CountingNorm(nn.Module):
    """A hand-written norm (a name with Norm, a 1-D weight): typed by predicates, which look at the
    instance (its weight's values)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(4))

    def forward(self, x):
        return x / x.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt() * self.weight


@pytest.mark.parametrize("traceable", [True, False])
def test_discovery_decides_each_modules_type_once(traceable, monkeypatch):
    """Discovery asks for a module's type 3-4 times (leaf?, activation?, layer?); a predicate type answers
    with tensor operations on the weights (and a norm's, by running a copy of it): decided once per
    discovery."""
    from initlab.model import _registry

    norms = [CountingNorm() for _ in range(3)]
    decided: list[nn.Module] = []
    decide = _registry._decide

    def counted(module, cls):
        if isinstance(module, CountingNorm):
            decided.append(module)
        return decide(module, cls)

    monkeypatch.setattr(_registry, "_decide", counted)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.norms = nn.Linear(4, 4), nn.ModuleList(norms)

        def forward(self, x):
            if not traceable and x.sum() > 1e9:
                return x
            for norm in self.norms:
                x = norm(self.fc(x))
            return x

    graph = discover(Net(), torch.randn(2, 4), cache=False)
    assert graph.method == ("fx" if traceable else "hooks")
    assert len(decided) == len(norms)  # once each; without the memo 3-4 times each

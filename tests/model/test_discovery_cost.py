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

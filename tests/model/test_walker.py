"""The one walker: one transparency table answers every question the graph is asked (issue 12)."""

import torch
import torch.nn.functional as F
from torch import nn

from initlab.diagnostics.sites import layer_sites
from initlab.model import Node, discover
from initlab.model.graph import ELEMENTWISE, SCALE, SHAPE, Walker


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        h = F.dropout(self.bn(self.conv(x)), 0.1, self.training).relu()
        h = torch.tanh(F.avg_pool2d(self.conv2(h), 2))
        return self.fc(h.mean((2, 3)))


def test_activation_after_a_layer_sees_through_norms_pools_and_shape_ops():
    graph = discover(ConvNet())
    assert graph.layer("conv").activation == "relu"
    assert graph.layer("conv2").activation == "tanh"  # through the average pool
    assert graph.layer("fc").activation is None


def test_diagnostics_and_sites_read_the_same_walk():
    graph = discover(ConvNet())
    acts = {info.name: info.activation for info in graph.layers if info.kind != "norm"}
    assert acts == {"conv": "relu", "conv2": "tanh", "fc": None}  # through norm and pool
    measured = {s.name: (s.activation.spec if s.activation else None) for s in layer_sites(ConvNet())[0]}
    assert measured["bn"] == "relu" and measured["conv"] is None  # the tensor the relu receives: the BN's


def _nodes(spec):
    return [Node(op, tuple(inputs), name) for op, inputs, name in spec]


def test_walker_directions_and_transparency_sets():
    nodes = _nodes([
        ("input", (), "x"),  # 0
        ("layer", (0,), "a"),  # 1
        ("layer", (1,), "n"),  # 2 (a norm)
        ("pass", (2,), "view"),  # 3
        ("act", (3,), "relu"),  # 4
        ("pass", (4,), "dropout"),  # 5
        ("layer", (5,), "b"),  # 6
        ("output", (6,), ""),  # 7
    ])
    w = Walker(nodes, {"n"})
    assert w.activation_after(1) == 4  # through the norm and the view
    assert w.activation_after(1, SHAPE) is None  # a shape-only walk stops at the norm
    assert list(w.forward(2, SHAPE)) == [4]
    assert w.backward(6, SHAPE) == 4  # the activation feeding b
    assert w.backward(4, SHAPE) == 2 and w.backward(4, SCALE) == 1
    assert list(w.forward(4, ELEMENTWISE)) == [6]


def test_meet_finds_the_block_input_and_both_paths():
    nodes = _nodes([
        ("input", (), "x"),  # 0
        ("layer", (0,), "stem"),  # 1: block input
        ("layer", (1,), "a"),  # 2
        ("act", (2,), "relu"),  # 3
        ("layer", (3,), "b"),  # 4
        ("layer", (1,), "short"),  # 5
        ("add", (4, 5), "add"),  # 6
        ("const", (), "c"),  # 7
        ("add", (6, 7), "add"),  # 8
    ])
    w = Walker(nodes, ())
    assert w.meet(4, 5) == (1, [2, 3, 4], [5])
    assert w.meet(6, 7) is None
    before = w.visits
    w.meet(4, 5)
    assert w.visits - before <= 6  # only the nodes between the block input and the addition

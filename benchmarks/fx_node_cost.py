"""What fx's per-node metadata costs a trace, measured in one run.

fx's ``Tracer.create_node`` stores ``node.meta["nn_module_stack"]``, a ``copy.copy`` of the stack of modules
the node was created in, for every node; nothing in initlab reads it. initlab's tracer
(:class:`initlab.model._fx_tracer.LeafTracer`) creates the same nodes without it. Printed per model (torch
modules only): the nodes, the median seconds of one trace (after a warm-up) with fx's ``create_node`` (the
baseline: the same tracer otherwise) and with initlab's, and their ratio. The graphs are checked equal.

    python benchmarks/fx_node_cost.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import functools

import torch
from torch import fx, nn

from initlab.model import layers as L
from initlab.model._fx_tracer import LeafTracer
from lsuv_cost import median_time  # (benchmarks/ is the script's path)


class Block(nn.Module):
    """A pre-norm residual MLP block (a custom module fx traces through)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.norm, self.fc1, self.act = nn.LayerNorm(d), nn.Linear(d, 2 * d), nn.GELU()
        self.fc2 = nn.Linear(2 * d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc2(self.act(self.fc1(self.norm(x))))


class Dense(nn.Module):
    """A DenseNet-style layer: BN-ReLU-conv on everything so far, concatenated."""

    def __init__(self, c: int, growth: int) -> None:
        super().__init__()
        self.bn, self.conv = nn.BatchNorm2d(c), nn.Conv2d(c, growth, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(torch.relu(self.bn(x)))], 1)


class Attention(nn.Module):
    """Multi-head self-attention written out (timm's ViT style), then an MLP block."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads, self.norm, self.qkv = heads, nn.LayerNorm(d), nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.mlp = Block(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        a = ((q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5).softmax(-1)
        return self.mlp(x + self.proj((a @ v).transpose(1, 2).reshape(b, n, c)))


def nested(blocks: list[nn.Module], per_stage: int) -> nn.Module:
    """Blocks in stages in a body in a model, timm's depth of nesting (model.stages.N.blocks.M)."""
    stages = [nn.Sequential(*blocks[i:i + per_stage]) for i in range(0, len(blocks), per_stage)]
    return nn.Sequential(nn.Sequential(*stages))


def models() -> dict[str, nn.Module]:
    return {
        "residual MLP, 4 stages x 8 blocks": nested([Block(32) for _ in range(32)], 8),
        "dense conv net, 4 x 12 layers": nested([Dense(16 + 8 * i, 8) for i in range(48)], 12),
        "transformer, 12 attention + MLP blocks": nested([Attention(32, 4) for _ in range(12)], 4),
    }


class WithMeta(LeafTracer):
    """initlab's tracer with fx's own ``create_node`` (and so its metadata)."""

    create_node = fx.Tracer.create_node


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    torch.set_num_threads(1)
    print(f"{'model':>38} {'nodes':>6} {'fx meta (s)':>12} {'initlab (s)':>12} {'ratio':>6}")
    for name, model in models().items():
        leaves = {id(m) for m in model.modules() if L.is_leaf(m)}
        ours, theirs = LeafTracer(leaves).trace(model), WithMeta(leaves).trace(model)
        assert str(ours) == str(theirs)
        assert not any("nn_module_stack" in n.meta for n in ours.nodes)
        base = median_time(functools.partial(trace, WithMeta, leaves, model), args.repeats)
        fast = median_time(functools.partial(trace, LeafTracer, leaves, model), args.repeats)
        print(f"{name:>38} {len(ours.nodes):>6} {base:>12.4f} {fast:>12.4f} {fast / base:>6.2f}")


def trace(tracer: type[LeafTracer], leaves: set[int], model: nn.Module) -> fx.Graph:
    return tracer(leaves).trace(model)


if __name__ == "__main__":
    main()

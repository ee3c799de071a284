"""Run in a subprocess by test_threads.py: initialize a few models with torch.set_num_threads(N) and print
one SHA-256 per (case, tensor)."""

from __future__ import annotations

import hashlib
import sys

import torch
from torch import nn

import initlab


def _chain(act: type[nn.Module], depth: int = 8, width: int = 96) -> nn.Module:
    layers: list[nn.Module] = [nn.Linear(32, width), act()]
    for _ in range(depth):
        layers += [nn.Linear(width, width), act()]
    return nn.Sequential(*layers, nn.Linear(width, 10))


def _digest(model: nn.Module) -> list[str]:
    return [hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()[:16]
            for t in model.state_dict().values()]


def main() -> None:
    torch.set_num_threads(int(sys.argv[1]))
    torch.manual_seed(0)
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    out: dict[str, list[str]] = {}
    for gen in ("torch", "counter"):
        for act in (nn.ReLU, nn.Tanh):
            m = _chain(act)
            initlab.init_model(m, "auto", seed=3, generator=gen)
            out[f"auto-{act.__name__}-{gen}"] = _digest(m)
        m = _chain(nn.ReLU, depth=2, width=160)
        initlab.init_model(m, "orthogonal", seed=3, generator=gen)
        out[f"orthogonal-{gen}"] = _digest(m)
    m = _chain(nn.Tanh, depth=3)
    initlab.init_model(m, "lsuv", example_input=x, seed=3)
    out["lsuv"] = _digest(m)
    for k, v in out.items():
        print(k, " ".join(v))


if __name__ == "__main__":
    main()

"""The shadow path: a torch skeleton on the meta device planned by ``init_model`` and drawn by the
counter-based generator. See the package docstring."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch
from torch import nn

from ..model import InitReport, init_model
from ..model._steps import Center, Step
from ..model.plan import Assignment, Plan

Key = Literal["order", "name"]
Draws = dict[str, torch.Tensor]  # shadow parameter name -> drawn CPU tensor in torch's layout

# activation names (Keras / jax.nn / flax spellings) -> torch module factory; None: the identity
_ACTS: dict[str, Callable[[], nn.Module] | None] = {
    "linear": None, "identity": None, "none": None,
    "relu": nn.ReLU, "relu6": nn.ReLU6, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "logistic": nn.Sigmoid,
    "gelu": nn.GELU, "gelu_approximate": lambda: nn.GELU("tanh"), "silu": nn.SiLU, "swish": nn.SiLU,
    "elu": nn.ELU, "selu": nn.SELU, "softplus": nn.Softplus, "softsign": nn.Softsign, "mish": nn.Mish,
    "leaky_relu": lambda: nn.LeakyReLU(0.2), "hard_sigmoid": nn.Hardsigmoid, "hard_silu": nn.Hardswish,
    "hard_swish": nn.Hardswish, "softmax": lambda: nn.Softmax(-1), "log_softmax": lambda: nn.LogSoftmax(-1),
    "celu": nn.CELU,
}


def activation_module(name: str, negative_slope: float | None = None) -> nn.Module | None:
    """The torch module of a framework activation name (None: the identity); raises for an unknown one."""
    key = name.lower()
    if key == "leaky_relu" and negative_slope is not None:
        return nn.LeakyReLU(negative_slope)
    if key not in _ACTS:
        raise KeyError(name)
    factory = _ACTS[key]
    return None if factory is None else factory()


class SelfAttention(nn.Module):
    """A self-attention block as one torch layer (Keras MultiHeadAttention, Flax MultiHeadAttention)."""

    def __init__(self, dim: int, heads: int, bias: bool):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, bias=bias, batch_first=True)

    def forward(self, x: Any) -> Any:
        return self.attn(x, x, x, need_weights=False)[0]


@dataclass
class _Op:
    kind: Literal["input", "layer", "act", "add", "first"]
    index: int = -1
    srcs: tuple[int, ...] = ()


class _Shadow(nn.Module):
    """Runs a fixed program of layers, activations and adds, so that ``torch.fx`` sees the framework's graph:
    weight layers in ``layers`` (named by order), activations in ``acts``."""

    def __init__(self, layers: Sequence[nn.Module], acts: Sequence[nn.Module], program: Sequence[_Op]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.acts = nn.ModuleList(acts)
        self.program = list(program)

    def forward(self, x: Any) -> Any:
        values: list[Any] = []
        for op in self.program:
            if op.kind == "input":
                values.append(x)
            elif op.kind == "layer":
                values.append(self.layers[op.index](values[op.srcs[0]]))
            elif op.kind == "first":  # recurrent layers return (output, state)
                values.append(self.layers[op.index](values[op.srcs[0]])[0])
            elif op.kind == "act":
                values.append(self.acts[op.index](values[op.srcs[0]]))
            else:
                total = values[op.srcs[0]]
                for s in op.srcs[1:]:
                    total = total + values[s]
                values.append(total)
        return values[-1]


@dataclass
class ShadowBuilder:
    """A framework's discovery describes its model here, node by node; every call returns the new node."""

    layers: list[nn.Module] = field(default_factory=list)
    acts: list[nn.Module] = field(default_factory=list)
    program: list[_Op] = field(default_factory=list)

    def input(self) -> int:
        self.program.append(_Op("input"))
        return len(self.program) - 1

    def layer(self, factory: Callable[[], nn.Module], src: int, *,
              recurrent: bool = False) -> tuple[int, str]:
        """A weight layer built on the meta device; returns (node, its shadow prefix ``layers.<i>``)."""
        with torch.device("meta"):
            self.layers.append(factory())
        self.program.append(_Op("first" if recurrent else "layer", len(self.layers) - 1, (src,)))
        return len(self.program) - 1, f"layers.{len(self.layers) - 1}"

    def act(self, module: nn.Module | None, src: int) -> int:
        if module is None:
            return src
        self.acts.append(module)
        self.program.append(_Op("act", len(self.acts) - 1, (src,)))
        return len(self.program) - 1

    def add(self, srcs: Sequence[int]) -> int:
        self.program.append(_Op("add", srcs=tuple(srcs)))
        return len(self.program) - 1

    def build(self) -> nn.Module:
        if not self.program or self.program[0].kind != "input":
            raise ValueError("a shadow program starts with input()")
        return _Shadow(self.layers, self.acts, self.program)


def plan_shadow(shadow: nn.Module, scheme: Any, seed: int | None, **options: Any) -> InitReport:
    """``init_model``'s plan and report for the shadow (nothing is drawn); the seed is fixed here."""
    report = init_model(shadow, scheme, seed=seed, dry_run=True, **options)
    report.seed = secrets.randbits(63) if seed is None else seed
    return report


def order_names(plan: Plan) -> dict[str, str]:
    """Parameter name -> ``layers.<k>.<attr>``, ``k`` the position of its layer among the plan's layers."""
    owners: dict[str, int] = {}
    out = {}
    for a in plan.assignments:
        k = owners.setdefault(a.owner, len(owners))
        out[a.name] = f"layers.{k}.{a.attr}"
    return out


def _renamed(plan: Plan, names: Mapping[str, str]) -> dict[str, Assignment]:
    def post(step: Step) -> Step:
        return replace(step, weight=names.get(step.weight, step.weight)) if isinstance(step, Center) else step
    return {a.name: replace(a, name=names[a.name], post=tuple(post(s) for s in a.post))
            for a in plan.assignments}


def _filler(plan: Plan, seed: int, key: Key) -> Callable[[torch.Tensor, Assignment], None]:
    from ..model.plan_counter import fill_assignment_

    names = order_names(plan) if key == "order" else {a.name: a.name for a in plan.assignments}
    renamed = _renamed(plan, names)
    index = {a.name: a for a in renamed.values()}

    def fill(tensor: torch.Tensor, a: Assignment) -> None:
        fill_assignment_(tensor, renamed[a.name], seed, assignments=index)

    return fill


def draw_plan(plan: Plan, seed: int, key: Key = "order") -> Draws:
    """Every assignment of ``plan`` drawn into a float32 CPU tensor of its (torch-layout) shape."""
    if key not in ("order", "name"):
        raise ValueError(f"key must be 'order' or 'name', got {key!r}")
    fill = _filler(plan, seed, key)
    out: Draws = {}
    for a in plan.assignments:
        t = torch.empty(a.shape, dtype=torch.float32)
        fill(t, a)
        out[a.name] = t
    return out


def init_torch(model: nn.Module, scheme: Any = "auto", *, seed: int | None = None, key: Key = "order",
               **options: Any) -> InitReport:
    """``init_model`` with the counter-based generator keyed by layer order (``key="order"``): the weights a
    Keras or Flax model of the same layers gets from ``initlab.keras``/``initlab.flax`` for ``seed``.
    All or nothing, like ``init_model``."""
    from ..model.graph import unwrap
    from ..model.plan import commit_plan, prepare_plan

    if key not in ("order", "name"):
        raise ValueError(f"key must be 'order' or 'name', got {key!r}")
    report = plan_shadow(model, scheme, seed, **options)
    assert report.seed is not None
    inner = unwrap(model)
    # the one applier: all or nothing (it restores every tensor on any failure)
    commit_plan(prepare_plan(inner, report.plan, fill=_filler(report.plan, report.seed, key)))
    report.dry_run = False
    return report


Label = tuple[str, str, tuple[int, ...] | None]  # variable path, layer class, shape (None: the shadow's)


def relabel(report: InitReport, labels: Mapping[str, Label]) -> None:
    """Report rows named by the framework's variables (``dense/kernel``, its layer class and shape) instead of
    the shadow's; the shadow's parameter name moves to ``row.layer``."""
    for row in report.rows:
        if row.name in labels:
            path, module, shape = labels[row.name]
            row.layer, row.name, row.module = row.name, path, module
            row.shape = shape if shape is not None else row.shape

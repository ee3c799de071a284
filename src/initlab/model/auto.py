"""The data-free "auto" scheme: choose every weight's scale by propagating second moments through the graph.

Walking the graph in execution order (:mod:`.propagate`), each weight layer sees the second moment ``q_in`` of
its input and the activation ``phi`` that follows it, and gets the scale that puts its output at ``phi``'s
stable point ``q*`` (1 for ReLU-like and smooth activations, ``q_saturating`` for tanh/sigmoid-like ones).
When the layer's input comes from an activation ``psi`` with pre-activation variance ``q'``, the weight
variance is ``s_w^2 = 1 / E[psi'(z)^2]`` (order-to-chaos slope ``chi = 1``: gradients neither grow nor shrink)
and the bias variance ``s_b^2 = q* - s_w^2 E[psi(z)^2]`` holds the forward fixed point (Poole et al. 2016,
Schoenholz et al. 2017); where that is infeasible the forward variance wins (``s_w^2 = q* / q_in``, bias 0),
and for activations with a large mean (sigmoid) the bias first cancels the mean the weights would pass on (``b
= -mu W 1``).

Deep plain chains (no residuals, no norms) whose depth-to-width ratio is large enough for the fluctuations of
Gaussian products to matter (Hanin & Nica 2018) get orthogonal weights (dynamical isometry, Saxe et al. 2014,
Pennington et al. 2017); chains of Linear -> ReLU get the looks-linear orthogonal structure ``[[A, -A], [-A,
A]]`` (Balduzzi et al. 2017) that makes the initial network an exact orthogonal linear map. Residual branches
whose sum is not normalized share a variance budget: the last layer of each of the ``B`` branches outputs
``1/B`` of the unit stream, so the stream stays within 2x of its input at any depth (Fixup and SkipInit
spirit, without zeros); ``zero_init_residual=True`` zeroes the last norm (or last layer) of every branch
instead. Embeddings N(0, 1) (a weight tied between an embedding and an output head gets the head's scale, so
the initial logits have unit variance), norms 1/0, recurrent weights orthogonal per gate block, LSTM
forget-gate bias 1, attention q/k/v blocks at unit logit variance."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from ..catalog import draws as d
from ..catalog.activations import Activation
from ..errors import InitlabTypeError, InitlabValueError
from ._layer_types import (
    RESPONSE_NORM,
    centres_one_entry,
    embedding_gain,
    eps_kept,
    frozen_norm_gain,
    offset_weight,
)
from ._registry import Kind, tensor_of
from .graph import ELEMENTWISE, SHAPE, LayerInfo, ModelGraph, Walker
from .layers import TRANSFORMER_LAYERS, ParamSpec, layer_kind, module_act
from .plan import Choice, _forget_bias
from .propagate import (
    MHA_PROJECTIONS,
    Signal,
    act_moments,
    attention_values,
    explain_missing,
    fan_in_read,
    mha_fans,
    mha_inputs,
    module_output,
    output_signal,
    padded_output,
    propagate,
)
from .report import InitReport

BORDER_NOTE = 0.5  # a padded conv reading fewer of its taps than this says so in its row
MEAN_DOMINATED = 0.5  # an input whose mean carries this share of its second moment: fixed row sums
SMALL_FAN_IN = 64  # below this a Gaussian row's norm spreads by more than +-18% (chi-square, 2/fan_in)
MAX_TRUSTED_INPUT = 1e12  # a weight layer's input predicted past this (or not finite) is not planned for
QR_FLOPS = 2.0**33  # an orthogonal draw's QR of m x n costs ~2 m n^2 (1 s here): past it, a Gaussian
QR_NOTE = "too slow to be worth an isometric end layer"
STANDARDIZED_NOTE = ("weight standardized in forward: its drawn scale drops out; the output is set by the "
                     "gain (kept) and scale")
ORTHO_RATIO = 0.05  # depth / width above which Gaussian products fluctuate visibly (log-norm variance ~ L/N)


@dataclass
class _Pre:
    """The activation feeding a layer, with the variance of its own input."""

    act: Activation | None
    spec: str
    q: float


class AutoChooser:
    def __init__(
        self,
        graph: ModelGraph,
        *,
        zero_init_residual: bool = False,
        orthogonal: bool | None = None,
        looks_linear: bool = True,
        q_saturating: float = 0.5,
        portable: bool = False,
        **options: Any,
    ):
        if options:
            raise InitlabTypeError(
                f"unexpected option(s) for auto: {sorted(options)}; auto takes zero_init_residual, "
                "orthogonal, looks_linear, q_saturating, portable"
            )
        if not (q_saturating > 0 and math.isfinite(q_saturating)):
            raise InitlabValueError(f"q_saturating must be finite and > 0, got {q_saturating}")
        self.graph = graph
        self.zero_init_residual = zero_init_residual
        self.q_saturating = q_saturating
        # portable: only draws and piece-local post steps, for the counter-based and sharded generators
        self.portable = portable
        self.choices: dict[str, Choice] = {}
        self.var_out: dict[str, float] = {}
        self.notes: list[str] = []
        self.tied_std: dict[str, float] = {}
        self.why: dict[str, str] = {}
        self.unpredicted: dict[str, str] = {}  # layer -> why its output second moment is not predicted
        self.planned: dict[str, tuple[float, float]] = {}  # weight layer -> its plan's (gain, E[b^2])
        self._fixed_point: dict[str, bool] = {}
        self.signals: dict[int, Signal] = {}
        self._analyze(orthogonal, looks_linear)
        signals = self._run()
        if self._tie():
            signals = self._run()
        out = output_signal(graph, signals)
        self.output_var = out.q if out is not None else None

    # ---- structure ----------------------------------------------------------------------------------------
    def _analyze(self, orthogonal: bool | None, looks_linear: bool) -> None:
        g = self.graph
        self.by_name = {info.name: info for info in g.layers}
        self.embedding_of = {q: info for info in g.layers if info.kind.embedding
                             for q in info.params.values()}
        norms = {info.name for info in g.layers if info.kind is Kind.NORM}
        self.walker = g.walker or Walker(g.nodes, norms)
        self.consumers = self.walker.consumers
        self.unnormalized: set[int] = set()
        for br in g.branches:
            # composites (no add node): a post-norm stream is normalized after each add
            normalized = not br.norms if br.node is None else self._only_norms(br.node, norms)
            if not normalized:
                self.unnormalized.add(br.index)
        self.budget = 1.0 / max(1, len(self.unnormalized))
        self.last_of = {br.last: br for br in g.branches if br.last}
        self.last_norm_of = {br.norms[-1]: br for br in g.branches if br.norms}
        self.shortcut = {name for br in g.branches for name in br.shortcut}
        weights = [i for i in g.layers if i.kind.weight]
        plain = not norms and not g.branches and all(i.kind.weight for i in g.layers)
        widths = sorted(
            min(f.fan_in, f.fan_out) / f.receptive for i in weights if (f := i.weight_fans) is not None
        )
        width = widths[len(widths) // 2] if widths else 1
        ratio = len(weights) / max(width, 1)
        self.orthogonal = (
            (plain and len(weights) >= 8 and ratio >= ORTHO_RATIO) if orthogonal is None else orthogonal
        )
        if self.orthogonal and orthogonal is None:
            self.notes.append(
                f"orthogonal weights: plain chain of {len(weights)} layers, depth/width {ratio:.2g}"
            )
        self.ll_role: dict[str, str] = {}
        self.ll_factor: dict[str, float] = {}
        self.ll_m2: dict[str, float] = {}  # E[phi(u)^2] of the activation before it, at unit u
        if self.orthogonal and looks_linear and not self.portable:
            self._looks_linear_chains(weights)

    def _only_norms(self, node: int, norms: set[str]) -> bool:
        """True when every use of a residual sum goes through a norm (post-norm); a pre-norm stream also flows
        on unnormalized to the next addition."""
        found = False
        for c in self.walker.forward(node, ELEMENTWISE):
            if self.walker.category(c) == "norm":
                found = True
            elif self.graph.nodes[c].op != "output":
                return False
        return found

    def _looks_linear_chains(self, weights: list[LayerInfo]) -> None:
        """Linear -> ReLU -> Linear ... chains with even hidden widths become [[A, -A], [-A, A]]."""
        chain: list[LayerInfo] = []

        def flush() -> None:
            if len(chain) >= 3:
                self.ll_role[chain[0].name] = "first"
                for info in chain[1:-1]:
                    self.ll_role[info.name] = "mid"
                self.ll_role[chain[-1].name] = "last"
            chain.clear()

        before, before_m2 = 1.0, 1.0
        for info in weights:
            spec = info.specs.get(info.weight_local)
            linear = info.layer_type.matrix and spec is not None and spec.layout == "torch"
            shape = info.weight_fans
            c = odd_linear_factor(info.activation_fn)
            ok = linear and shape is not None and (c is not None or chain)
            if not ok:
                flush()
                continue
            assert shape is not None
            if chain and shape.fan_in % 2:
                flush()
                continue
            chain.append(info)
            self.ll_factor[info.name], self.ll_m2[info.name] = before, before_m2
            before = c or 1.0
            fn = info.activation_fn
            before_m2 = act_moments(fn, None, 1.0)[1] if fn is not None else 1.0
            if c is None:
                flush()
            elif shape.fan_out % 2:
                chain.pop()
                flush()
        flush()
        if self.ll_role:
            acts = sorted({self.by_name[n].activation or "" for n in self.ll_role} - {""})
            self.notes.append(
                f"looks-linear orthogonal weights on {len(self.ll_role)} layers ({', '.join(acts)}: "
                "phi(u) - phi(-u) is linear in u, so the initial network is an orthogonal linear map)"
            )

    # ---- walking ------------------------------------------------------------------------------------------
    def _run(self) -> dict[int, Signal]:
        self.choices.clear()
        self.var_out.clear()
        self.unpredicted.clear()
        self.planned.clear()
        self.signals = {}
        signals = propagate(self.graph, self._layer, self._block, self.signals, self._param_read)
        for info in self.graph.layers:  # layers the forward never reached: planned for a unit input
            if not any(q in self.choices for q in info.params.values()):
                self._decide(info, [Signal()], None)
        return signals

    def _tie(self) -> bool:
        """One scale for a weight shared by several uses. Tied input/output embeddings (GPT-2, BERT, OPT,
        Gemma...): the output use wins. Its scale sets the initial logits (std 1: step-0 loss ~ ln V + 1/2),
        while the input use feeds a norm or a residual stream whose scale the next norm removes; the
        geometric mean of the two would start the logits at std ~ d^(1/4) (loss 2-3x ln V). Other ties:
        the geometric mean."""
        wants: dict[str, list[tuple[float, bool]]] = {}
        for info in self.graph.layers:
            for q in info.params.values():
                c = self.choices.get(q)
                if c is not None and c.draws and isinstance(c.draws[0], d.Normal):
                    wants.setdefault(q, []).append((c.draws[0].std, info.kind.embedding))
        changed = False
        for canon, aliases in self.graph.tied.items():
            uses = [u for name in (canon, *aliases) for u in wants.get(name, [])]
            stds = [s for s, _ in uses]
            if len(stds) < 2 or max(stds) <= 1.01 * min(stds):
                continue
            outputs = [s for s, emb in uses if not emb]
            embedding = len(outputs) < len(uses)
            chosen = outputs if embedding and outputs else stds
            std = math.exp(sum(math.log(max(s, 1e-12)) for s in chosen) / len(chosen))
            names = [canon, *aliases]
            if embedding and outputs:  # embeddings summed with it (positions, segments) keep its scale
                for n in (canon, *aliases):
                    names += [q for q in self._summed_embeddings(n) if q not in names]
            for name in names:
                self.tied_std[name] = std
            how = "the output use's, as a tied embedding" if embedding and outputs else "the geometric mean"
            self.notes.append(
                f"{canon} is tied to {', '.join(aliases)}: std {std:.3g}, {how} (uses want "
                f"{', '.join(f'{s:.3g}' for s in stds)})"
                + (f"; {', '.join(names[1 + len(aliases) :])} summed with it: the same" if len(names) > 1
                   + len(aliases) else "")
            )
            changed = True
        return changed

    def _summed_embeddings(self, param: str) -> list[str]:
        """Weights of the other embeddings whose output is added to this embedding parameter's output."""
        nodes = self.graph.nodes
        emb = {i.node: i for i in self.graph.layers if i.kind.embedding and i.node is not None}
        mine = [n for n, i in emb.items() if param in i.params.values()]

        def source(j: int) -> int:
            while nodes[j].op == "pass" and nodes[j].inputs:
                j = nodes[j].inputs[0]
            return j

        out: list[str] = []
        for n in mine:
            for c in self.consumers[n]:
                if nodes[c].op != "add":
                    continue
                for j in map(source, nodes[c].inputs):
                    if j in emb and j not in mine:
                        out += [q for q in emb[j].params.values() if q not in out]
        return out

    def _pre_activation(self, node: int | None) -> _Pre | None:
        """The activation whose output feeds ``node`` (through shape-only ops), with its input variance."""
        src = self.walker.backward(node, SHAPE) if node is not None else None
        if src is None or self.graph.nodes[src].op != "act":
            return None
        n = self.graph.nodes[src]
        # a max pool or a dropout in training between them moves the distribution: no longer phi(z)
        ins = self.graph.nodes[node].inputs if node is not None else ()
        here, there = self.signals.get(ins[0]) if ins else None, self.signals.get(src)
        if here is not None and there is not None and not (
            math.isclose(here.q, there.q, rel_tol=1e-9) and math.isclose(here.mu, there.mu, abs_tol=1e-12)
        ):
            return None
        sig = self.signals.get(n.inputs[0]) if n.inputs else None
        q = sig.q - sig.mu**2 if sig is not None else 1.0
        return _Pre(n.act, n.name, q)

    def _layer(self, info: LayerInfo, ins: list[Signal], node: int) -> Signal:
        return self._decide(info, ins, node)

    def _block(self, name: str, x: Signal) -> Signal:
        module = self.graph.model.get_submodule(name) if name else self.graph.model
        return self._composite(name, module, x)

    # ---- per layer ----------------------------------------------------------------------------------------
    def _target(self, info: LayerInfo, q_in: float) -> tuple[float, str]:
        """The output second moment a layer aims at, and why; ``_fixed_point[name]`` records whether that is
        the activation's own stable point (where the edge of chaos applies), not a residual budget."""
        br = self.last_of.get(info.name)
        self._fixed_point[info.name] = False
        if br is not None and br.index in self.unnormalized:
            return self.budget, f"residual budget 1/{len(self.unnormalized)}"
        if info.name in self.shortcut:
            return q_in, "shortcut: keeps the stream"
        self._fixed_point[info.name] = True
        act = info.activation_fn
        if act is not None and act.saturates:
            return self.q_saturating, f"stable point q*={self.q_saturating:g} of {info.activation}"
        return 1.0, "unit pre-activation" if act is not None else "unit output"

    def _decide(self, info: LayerInfo, ins: list[Signal], node: int | None) -> Signal:
        x = ins[0]
        if info.kind.weight and info.name in self.planned:  # a shared layer called again: its first plan
            return self._again(info, ins)
        if info.kind.weight:
            return self._weight_layer(info, ins, node)
        if info.kind.embedding:
            return self._embedding(info)
        if info.kind is Kind.NORM:
            return self._norm(info, x)
        if info.kind is Kind.RNN:
            return self._rnn(info, x)
        if info.kind is Kind.ATTENTION:
            return self._attention(info, ins)
        return x

    def _param_read(self, name: str) -> Signal | None:
        """An embedding table read as data, not looked up (DETR's object queries, ``.weight`` repeated over
        the batch): its planned rows. Read as zero, it made the layers it feeds plan for a zero input: DETR's
        first decoder q/k projections drew std 8.4 and their outputs measured 2400x the plan's."""
        info = self.embedding_of.get(name)
        if info is None:
            return None
        std = self.tied_std.get(name, 1.0 / embedding_gain(info.module))
        return Signal(std * std, 0.0)

    def _embedding(self, info: LayerInfo) -> Signal:
        """Unit output rows (a scaled embedding's factor divided out), or the tied head's scale."""
        gain = embedding_gain(info.module)
        q = info.params.get("weight")
        std = self.tied_std.get(q or "", 1.0 / gain)
        self._set(info, "weight", d.Normal(0.0, std), f"normal(0, {std:.3g})", "auto:embedding")
        self.var_out[info.name] = (std * gain) ** 2
        return Signal((std * gain) ** 2, 0.0)

    def _norm(self, info: LayerInfo, x: Signal) -> Signal:
        if info.layer_type is RESPONSE_NORM:  # the identity at w = b = 0
            for name in info.params:
                self._set(info, name, d.Constant(0.0), "zeros", "auto:response norm (x + w x N(x) + b)")
            self.var_out[info.name] = module_output(info, x.q)
            return x
        if not info.layer_type.normalizes:  # frozen norm: buffers only, a fixed affine map
            return Signal(frozen_norm_gain(info.module) * max(x.q - x.mu**2, 0.0), 0.0)
        zero = self.zero_init_residual and info.name in self.last_norm_of
        if offset_weight(info.specs):  # x * (1 + w): w = 0 is the unit gain, w = -1 the zero one
            draw = d.Constant(-1.0 if zero else 0.0)
            label = "-1 (gain 1 + w = 0)" if zero else "zeros (gain 1)"
            self._set(info, "weight", draw, label, "auto:zero_init_residual" if zero else "auto:norm (1 + w)")
            self._set(info, "bias", d.Constant(0.0), "zeros", "auto:norm")
        else:
            self._set(
                info,
                "weight",
                d.Constant(0.0 if zero else 1.0),
                "zeros" if zero else "ones",
                "auto:zero_init_residual" if zero else "auto:norm",
            )
            self._set(info, "bias", d.Constant(0.0), "zeros", "auto:norm")
        if centres_one_entry(info.module):  # its output is its bias: zero as planned
            self.notes.append(f"{info.name} is a LayerNorm over one entry: x - mean(x) = 0, so it outputs "
                              "its bias whatever its input, and what follows reads a constant; normalize "
                              "over more entries, or drop the norm")
            zero = True
        q = 0.0 if zero else eps_kept(info.module, x.q)
        self.var_out[info.name] = module_output(info, padded_output(info, [x], q))
        return Signal(q, 0.0)

    def _weight_layer(self, info: LayerInfo, ins: list[Signal], node: int | None) -> Signal:
        t = info.layer_type
        # the layer's own map of E[w^2] to the output (linear in it): fan_in for a plain product
        # (a zero-padded conv on a small map: only the taps that read the input count)
        fan_in = max(t.second_moment(1.0, 1.0, 0.0, fan_in_read(info)), 1e-12)
        n = t.inputs if len(ins) >= t.inputs else 1
        # an all-zero input (DETR's first decoder values): no scale makes the output unit, plan for a unit
        # one; so for one past any trust (an iterative pseudo-inverse, a log-sum-exp recurrence the moments
        # do not follow: Nystromformer's output projection drew std 4e-95 for an input predicted 1e188)
        q_raw = math.prod(s.q for s in ins[:n])
        zero_in, unread = q_raw == 0.0, not q_raw <= MAX_TRUSTED_INPUT
        q_in = 1.0 if zero_in or unread else max(q_raw, 1e-12)
        w, b = info.weight_local, info.bias_local
        has_bias = b in info.params
        q_t, why = self._target(info, q_in)
        if zero_in:
            why = ("its input is predicted zero (a zero tensor, or a constant whose value discovery did not "
                   "read): planned as for a unit input; output not predicted")
        elif unread:
            why = (f"its input is predicted {q_raw:.3g}, past what the walker follows (an iterative or "
                   "stabilized computation before it): planned as for a unit input; output not predicted; "
                   "to calibrate it on data: initlab.lsuv(model, batch)")
            self.notes.append(f"{info.name}: {why}")
        zero = self.zero_init_residual and info.name in self.last_of and not self.last_of[info.name].norms
        if zero:
            self._set(info, w, d.Constant(0.0), "zeros", "auto:zero_init_residual")
            self._set(info, b, d.Constant(0.0), "zeros", "auto:bias")
            self.var_out[info.name] = 0.0
            return Signal(0.0, 0.0)
        # edge of chaos only where the target is the activation's stable point (not a residual budget)
        pre = self._pre_activation(node) if self._fixed_point.get(info.name, False) else None
        # a weight-standardized conv's zero-mean filters drop the mean themselves: a bias cancelling it
        # through W.1 would add -mean x W.1 at every position (NF-RegNet's SE inputs measured 40x the plan)
        sw2, sb2, rule, center = self._scales(pre, q_in, q_t, has_bias, info.standardized is None)
        label_rule = f"auto:{rule}" + (" (mean-centred)" if center else "")
        mean_share = ins[0].mu**2 / q_in if n == 1 and not zero_in and not center else 0.0
        if self._set_weight(info, w, sw2, fan_in, q_in, label_rule, mean_share):
            sb2, center = 0.0, 0.0
        if has_bias:
            post = (("center", info.params[w], center),) if center else ()
            draw_b: d.Draw = d.Normal(0.0, math.sqrt(sb2)) if sb2 > 0 else d.Constant(0.0)
            label = f"normal(0, {math.sqrt(sb2):.3g})" if sb2 > 0 else "zeros"
            self._set(info, b, draw_b, label + (" - mean x W.1" if center else ""), label_rule, post=post)
        if info.standardized is not None:  # the forward standardizes the weight: its gain sets the output,
            var_in = max(ins[0].q - ins[0].mu**2, 0.0) if ins else q_in  # its zero-mean filters drop the mean
            q_t = t.second_moment(var_in, info.standardized, sb2 if has_bias else 0.0, fan_in_read(info))
        if zero_in or unread:  # zero, whatever the constant was, or past trust: the report says so
            self.unpredicted[info.name] = why
        else:
            self.var_out[info.name] = padded_output(info, ins, q_t)
        self.why[info.name] = why
        sb2 = sb2 if has_bias else 0.0  # a bias: what every position shares
        self.planned[info.name] = (max(q_t - sb2, 0.0) / q_in, sb2)
        # on a zero input the layer outputs its bias (after NF-Nets' zero-gain conv, their SE outputs zero)
        return Signal(sb2, 0.0, c=sb2) if zero_in else Signal(q_t, 0.0, c=sb2)

    def _again(self, info: LayerInfo, ins: list[Signal]) -> Signal:
        """A layer called again (CoaT's shared position encoding, ALBERT's layers): the weights its first call
        planned, on this call's input. Re-planned at each call, the last call set the weights and the first
        call's output, which a hook on the module sees, measured 0.09x the plan."""
        gain, sb2 = self.planned[info.name]
        n = info.layer_type.inputs if len(ins) >= info.layer_type.inputs else 1
        return Signal(gain * math.prod(s.q for s in ins[:n]) + sb2, 0.0, c=sb2)

    def _scales(
        self, pre: _Pre | None, q_in: float, q_t: float, has_bias: bool, centre: bool = True
    ) -> tuple[float, float, str, float]:
        """(sigma_w^2, sigma_b^2, rule, mean to cancel) for a target ``q_t``: the edge of chaos after an
        activation where feasible (cancelling the activation's mean through the bias if ``centre``), else
        the forward variance."""
        if pre is None:
            return q_t / q_in, 0.0, "variance", 0.0
        v_in, center = q_in, 0.0
        mean, second, slope2 = act_moments(pre.act, pre.spec, pre.q)
        chi_w2 = 1.0 / max(slope2, 1e-12)
        sb2_plain = q_t - chi_w2 * second
        cancel = has_bias and centre and not self.portable
        if cancel and sb2_plain < -0.1 * q_t and mean * mean > 0.1 * second:
            v_in, center = max(second - mean * mean, 1e-12), mean  # cancel the mean through the bias
            sb2_plain = q_t - chi_w2 * v_in
        if sb2_plain >= 0 and (has_bias or sb2_plain < 0.02 * q_t):
            return chi_w2, sb2_plain if has_bias else 0.0, "edge of chaos", center
        return q_t / v_in, 0.0, "variance", center

    def _set_weight(
        self, info: LayerInfo, w: str, sw2: float, fan_in: float, q_in: float, label_rule: str,
        mean_share: float = 0.0,
    ) -> bool:
        """Plan the weight for ``sigma_w^2``; True when its structure sets the bias to zero (looks-linear).
        ``mean_share``: the share of the input's second moment its mean carries."""
        role = self.ll_role.get(info.name)
        if role is not None:
            draw, label = self._looks_linear(info, role, q_in)
            self._set(info, w, draw, label, "auto:looks-linear", post=(("looks_linear", role),))
            return True
        if self.orthogonal and info.layer_type.matrix and info.specs[w].layout in ("torch", "in_out"):
            o, i = self._dims(info)
            if qr_affordable(o, i):
                gain = math.sqrt(sw2 * max(1.0, o / i))
                label = f"orthogonal(gain={gain:.3g})"
                self._set(info, w, d.Orthogonal(gain), label, label_rule + ", orthogonal")
                return False
            label_rule += f", normal: a {o}x{i} QR {QR_NOTE}"
        std = math.sqrt(sw2 / fan_in)
        rows = info.kind in (Kind.LINEAR, Kind.CONV, Kind.RAW) and info.specs[w].layout == "torch"
        if rows and mean_share >= MEAN_DOMINATED and not self.portable:
            # the output is mostly mean x the row sums: fixed sums, not one chi-square draw over the outputs
            total = std * math.sqrt(self._dims(info)[1])
            label = f"normal(0, {std:.3g}), row sums +-{total:.3g}"
            self._set(info, w, d.Normal(0.0, std), label, label_rule, post=(("row_sum", total),))
        # fixed-norm rows (no chi-square spread) for a small fan-in: every tap of the row, read or not
        elif rows and fan_in / info.taps_read < SMALL_FAN_IN and not self.portable:
            norm = math.sqrt(sw2 / info.taps_read)  # std * sqrt(entries per row)
            label = f"normal(0, {std:.3g}), rows scaled to norm {norm:.3g}"
            self._set(info, w, d.Normal(0.0, std), label, label_rule, post=(("row_norm", norm),))
        else:
            self._set(info, w, d.Normal(0.0, std), f"normal(0, {std:.3g})", label_rule)
        return False

    def _dims(self, info: LayerInfo) -> tuple[int, int]:
        """(outputs, inputs) of the weight as a matrix: rows = dim 0, or the last dim for ``x @ W``."""
        w = info.weight_local
        weight = (
            self.graph.model.get_parameter(info.params[w])
            if info.module is None
            else cast(torch.Tensor, tensor_of(info.module, w))
        )
        shape = tuple(weight.shape)
        rows, cols = int(shape[0]), int(math.prod(shape[1:]))
        return (cols, rows) if info.specs[w].layout == "in_out" else (rows, cols)

    def _looks_linear(self, info: LayerInfo, role: str, q_in: float) -> tuple[d.Draw, str]:
        o, i = self._dims(info)
        o2 = o // 2 if role in ("first", "mid") else o
        i2 = i // 2 if role in ("mid", "last") else i
        # the u of the [phi(u), phi(-u)] it reads: unit, unless something between scales it (a dropout in
        # training mode: 1/keep; read as unit, a 50-layer chain with dropout 0.5 output 2^48)
        q_u = q_in if role == "first" else q_in / self.ll_m2.get(info.name, q_in)
        gain = math.sqrt(max(1.0, o2 / i2) / q_u) / self.ll_factor.get(info.name, 1.0)
        if not qr_affordable(o2, i2):  # the same second moment, without the isometry
            std = gain / math.sqrt(max(o2, i2))
            return d.Normal(0.0, std), f"looks-linear normal(0, {std:.3g}) (a {o2}x{i2} QR: {QR_NOTE})"
        return d.Orthogonal(gain), f"looks-linear orthogonal(gain={gain:.3g})"

    def _rnn(self, info: LayerInfo, x: Signal) -> Signal:
        q_h = _rnn_second_moment(info.module)
        for local, spec in info.specs.items():
            fans = info.fans.get(local)
            blocks = spec.blocks
            if spec.role == "rnn_input":
                first = "_l" not in local or "_l0" in local
                std = 1.0 / math.sqrt(
                    max(fans.fan_in if fans else 1.0, 1.0) * max(x.q if first else q_h, 1e-6)
                )
                self._set(info, local, d.Normal(0.0, std), f"normal(0, {std:.3g})", "auto:rnn_input", blocks)
            elif spec.role == "rnn_recurrent":
                self._set(info, local, d.Orthogonal(1.0), "orthogonal", "auto:recurrent", blocks)
            elif spec.role == "rnn_bias":
                shape = (
                    (int(info.fans[spec.fans_of].fan_out) * blocks,) if spec.fans_of in info.fans else (0,)
                )
                self._set(
                    info,
                    local,
                    d.Constant(0.0),
                    "zeros (LSTM forget gate 1)" if blocks == 4 else "zeros",
                    "auto:rnn_bias",
                    post=_forget_bias(info, local, shape, 1.0),
                )
        self.var_out[info.name] = q_h
        return Signal(q_h, 0.0)

    def _attention(self, info: LayerInfo, ins: list[Signal]) -> Signal:
        """Unit q, k and v, each for its own input (a pooling head's query is a learned probe), and an
        output projection for what the softmax average of the values keeps."""
        signals = mha_inputs(ins)
        inputs = [max(s.q, 1e-6) for s in signals]
        fans = mha_fans(info.module)
        stds = [1.0 / math.sqrt(f * q) for f, q in zip(fans, inputs, strict=True)]
        values = attention_values(info.keys, *signals, (1.0 / inputs[0], 1.0 / inputs[1], 1.0 / inputs[2]))
        e = fans[0]
        for local, spec in info.specs.items():
            if local not in info.params:
                continue
            if spec.role == "attention_in":
                own = stds if spec.blocks == 3 else [stds[MHA_PROJECTIONS.index(local)]]
                draws = [d.Normal(0.0, s) for s in own]
                label = ", ".join(f"normal(0, {s.std:.3g})" for s in dict.fromkeys(draws))
                self._set(info, local, draws[0], label, "auto:q/k/v unit logits", spec.blocks,
                          draws=tuple(draws))
            elif spec.role == "attention_out":  # for what the average of unit values keeps
                q_t, _ = self._target(info, 1.0)
                std = math.sqrt(q_t / (e * values.q))
                self._set(info, local, d.Normal(0.0, std), f"normal(0, {std:.3g})", "auto:attention_out")
            else:
                self._set(info, local, d.Constant(0.0), "zeros", "auto:bias")
        q_t, _ = self._target(info, 1.0)
        self.var_out[info.name] = q_t
        return Signal(q_t, 0.0, c=q_t * min(values.c / values.q, 1.0) if values.q > 0 else 0.0)

    def _composite(self, name: str, module: nn.Module, x: Signal) -> Signal:
        p = f"{name}." if name else ""
        if isinstance(module, TRANSFORMER_LAYERS):
            pre = bool(getattr(module, "norm_first", False))
            attn = ["self_attn"] + (
                ["multihead_attn"] if isinstance(module, nn.TransformerDecoderLayer) else []
            )
            norms = ["norm1", "norm2", "norm3"][: len(attn) + 1]
            s = x
            for k, members in enumerate([[a] for a in attn] + [["linear1", "linear2"]]):
                h = self._decide(self.by_name[p + norms[k]], [s], None) if pre else s
                if members[0] == "multihead_attn":
                    h = Signal(1.0, 0.0)  # the memory: assumed unit
                for part in members:
                    h = self._decide(self.by_name[p + part], [h], None)
                    if part == "linear1":
                        act = getattr(module, "activation", None)
                        spec = module_act(act) if isinstance(act, nn.Module) else None
                        mean, second, _ = act_moments(
                            spec,
                            getattr(spec, "spec", None) if spec else self.by_name[p + part].activation,
                            h.q,
                        )
                        h = Signal(second, mean)
                s = Signal(s.q + h.q, s.mu + h.mu)
                if not pre:
                    s = self._decide(self.by_name[p + norms[k]], [s], None)
            return s
        s = x
        for child_name, child in module.named_children():
            q = p + child_name
            if isinstance(child, nn.ModuleList):
                for idx, sub in child.named_children():
                    s = self._composite(f"{q}.{idx}", sub, s)
            elif isinstance(child, TRANSFORMER_LAYERS | nn.TransformerEncoder | nn.TransformerDecoder):
                s = self._composite(q, child, s)
            elif layer_kind(child) is not None and q in self.by_name:
                s = self._decide(self.by_name[q], [s], None)
        return s

    # ---- plumbing -----------------------------------------------------------------------------------------
    def _set(
        self,
        info: LayerInfo,
        local: str,
        draw: d.Draw,
        label: str,
        rule: str,
        blocks: int = 1,
        post: tuple[tuple[Any, ...], ...] = (),
        draws: tuple[d.Draw, ...] = (),
    ) -> None:
        """Plan ``draw`` for every stacked block of the parameter, or ``draws``, one a block."""
        q = info.params.get(local)
        if q is None:
            return
        every = draws if len(draws) > 1 else (draw,) * max(blocks, 1)
        self.choices[q] = Choice(None, label, rule, draws=every, post=post, note=self.why.get(info.name, ""))

    def choose(self, layer: LayerInfo, local: str, spec: ParamSpec, shape: tuple[int, ...]) -> Choice:
        q = layer.params[local]
        choice = self.choices.get(q)
        if choice is None:
            return Choice(None, "keep", "auto:unknown role")
        return choice

    def finish(self, report: InitReport) -> None:
        main = {info.name: next(iter(info.params.values()), None) for info in self.graph.layers}
        infos = {info.name: info for info in self.graph.layers}
        for row in report.rows:
            if row.layer in self.var_out and main.get(row.layer) == row.name:
                row.var_out = self.var_out[row.layer]
            elif row.layer in self.unpredicted and main.get(row.layer) == row.name:
                row.note = self.unpredicted[row.layer]
            info = infos.get(row.layer) if main.get(row.layer) == row.name else None
            if info is not None and info.taps_read < BORDER_NOTE:
                edge = "map borders" if info.kind is Kind.CONV_TRANSPOSE else "zero padding"
                border = (f"{edge}: {info.taps_read:.0%} of the kernel's taps read the example's maps, "
                          "scaled for it (a training-size example_input plans for training-size maps)")
                row.note = f"{row.note}; {border}" if row.note else border
            if info is not None and info.standardized is not None:
                row.note = f"{row.note}; {STANDARDIZED_NOTE}" if row.note else STANDARDIZED_NOTE
        explain_missing(self.graph, report.rows)
        report.output_var = self.output_var
        report.notes.extend(self.notes)


def qr_affordable(rows: int, cols: int) -> bool:
    """Whether an orthogonal ``rows x cols`` draw's QR fits :data:`QR_FLOPS`: VGG13's 25088 -> 4096
    classifier (looks-linear half 12544 x 2048) took 10 s of a 13 s call, while VGG16, one layer short of
    the plain-chain rule, took 0.1 s. A Gaussian of the same variance keeps the plan's second moments."""
    return 2.0 * max(rows, cols) * min(rows, cols) ** 2 <= QR_FLOPS


def odd_linear_factor(act: Activation | None) -> float | None:
    """``c`` when ``phi(u) - phi(-u) = c u`` (ReLU 1, leaky ReLU 1 + s, GELU and SiLU 1), else None."""
    if act is None:
        return None
    x = np.linspace(0.1, 4.0, 40)
    try:
        diff = np.asarray(act(x), dtype=float) - np.asarray(act(-x), dtype=float)
    except Exception:
        return None
    c = float(diff[0] / x[0])
    return c if c > 0 and np.allclose(diff, c * x, rtol=1e-6, atol=1e-9) else None


def _rnn_second_moment(module: nn.Module | None, steps: int = 20) -> float:
    """Mean-field E[h^2] of a recurrent layer whose gate pre-activations get unit variance from the input and
    orthogonal recurrent weights (stationary over ``steps``)."""
    from .propagate import act_moments as am

    mode = getattr(module, "mode", None) or type(module).__name__
    sig2 = lambda q: am(None, "sigmoid", q)[1]  # noqa: E731
    tanh2 = lambda q: am(None, "tanh", q)[1]  # noqa: E731
    q_h, q_c = 0.0, 0.0
    for _ in range(steps):
        qz = 1.0 + q_h
        if "LSTM" in mode:
            f2 = am(None, "sigmoid", qz)[1]  # forget bias 1 ignored: a lower bound on memory
            q_c = f2 * q_c + sig2(qz) * tanh2(qz)
            q_h = sig2(qz) * tanh2(q_c)
        elif "GRU" in mode:
            z2 = sig2(qz)
            q_h = (1 - z2) * tanh2(qz) + z2 * q_h
        else:
            q_h = tanh2(qz)
    return max(q_h, 1e-6)

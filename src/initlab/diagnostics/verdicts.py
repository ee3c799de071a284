"""Verdicts: what the measurements say is wrong, the evidence, and a fix naming a scheme or ``init_model``.

Each rule reads only the per-layer numbers, so the same rules judge a fresh diagnosis, a loaded JSON report
and a training-time snapshot from ``monitor``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from ..catalog.activations import relu_like_names
from .format import fmt
from .records import LayerStats, growth_rate

VANISH = 1e-3  # signal or gradient below this fraction of its reference has vanished
EXPLODE = 1e3
DEAD_LAYER = 0.5  # a layer with more than half its units dead...
DEAD_LAYERS = 0.25  # ...in more than a quarter of the layers, or
DEAD_MEAN = 0.4  # this fraction dead on average (deep He-ReLU nets reach ~0.3 on a small batch)
SATURATED_LAYER = 0.5
SATURATED_MEAN = 0.25
SHIFT_HIGH = 0.5  # |mean| / RMS of the deepest layers' outputs
SHIFT_RISE = 0.3
SHIFT_NOISE = 3.5  # a shift below 3.5 / sqrt(units) is within the noise of a random zero-mean layer
ISOMETRY_DB = 60.0

RELU_LIKE = relu_like_names()  # the catalog's activation table says which are rectifiers


Severity = Literal["problem", "warning"]


@dataclass
class Verdict:
    code: str
    severity: Severity
    title: str
    evidence: str
    fix: str
    layers: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(
    layers: Sequence[LayerStats], input_rms: float | None = None, jacobian: dict[str, Any] | None = None
) -> list[Verdict]:
    """Every verdict the measurements support, most serious first."""
    rules = (
        _forward_signal(layers, input_rms),
        _gradients(layers),
        _dead(layers),
        _saturation(layers),
        _symmetry(layers),
        _mean_shift(layers),
        _isometry(jacobian),
    )
    found = [v for group in rules for v in group]
    return sorted(found, key=lambda v: v.severity != "problem")


def _family(layers: Sequence[LayerStats]) -> str:
    names = Counter((layer.activation or "linear").split("(")[0] for layer in layers)
    return names.most_common(1)[0][0] if names else "linear"


def _scheme_for(layers: Sequence[LayerStats]) -> str:
    family = _family(layers)
    if family in RELU_LIKE:
        return (
            f'initlab.init_model(model, "he_normal") (variance gain²/fan_in with the gain of {family}), '
            f'or init_model(model, "auto")'
        )
    if family in ("tanh", "sigmoid", "softsign", "hardtanh"):
        return (
            f'initlab.init_model(model, "auto") (orthogonal at the edge of chaos for {family}), or '
            f'init_model(model, "lecun_normal") (variance 1/fan_in)'
        )
    return 'initlab.init_model(model, "lecun_normal") (variance 1/fan_in keeps the RMS constant), or "auto"'


def _per_layer(rate: float | None) -> str:
    return "underflows to zero or overflows" if rate is None else f"changes by a factor {fmt(rate)} per layer"


def _label(layer: LayerStats) -> str:
    return f"layer {layer.index}" + ("" if layer.name == str(layer.index) else f" ({layer.name})")


def _forward_signal(layers: Sequence[LayerStats], input_rms: float | None) -> list[Verdict]:
    track = [la for la in layers if not math.isnan(la.output.rms)]
    if not track:
        return []
    ref = input_rms if input_rms and math.isfinite(input_rms) and input_rms > 0 else track[0].output.rms
    if not (math.isfinite(ref) and ref > 0):
        return []
    ratios = [la.output.rms / ref for la in track]
    rate = growth_rate([la.output.rms for la in track])
    out = []
    low = next((i for i, r in enumerate(ratios) if r < VANISH), None)
    high = next((i for i, r in enumerate(ratios) if not r <= EXPLODE), None)
    scheme = _scheme_for(layers)
    if low is not None:
        la = track[low]
        out.append(
            Verdict(
                "vanishing_signal",
                "problem",
                "Forward signal vanishes",
                f"the RMS of the layer outputs {_per_layer(rate)}; it falls below {VANISH:g} of the "
                f"input's at {_label(la)} (RMS {fmt(la.output.rms)}) and reaches {fmt(track[-1].output.rms)} "
                f"at the last layer",
                f"scale the weights up: {scheme}",
                [la.index],
            )
        )
    if high is not None:
        la = track[high]
        out.append(
            Verdict(
                "exploding_signal",
                "problem",
                "Forward signal explodes",
                f"the RMS of the layer outputs {_per_layer(rate)}; it exceeds {EXPLODE:g}× the "
                f"input's at {_label(la)} (RMS {fmt(la.output.rms)}) and reaches {fmt(track[-1].output.rms)} "
                f"at the last layer",
                f"scale the weights down: {scheme}",
                [la.index],
            )
        )
    return out


def _gradients(layers: Sequence[LayerStats]) -> list[Verdict]:
    track = [la for la in layers if la.grad_rms is not None and not math.isnan(la.grad_rms)]
    if len(track) < 2:
        return []
    ref = track[-1].grad_rms
    assert ref is not None
    if not (math.isfinite(ref) and ref > 0):
        return []
    rate = growth_rate([la.grad_rms or 0.0 for la in reversed(track)])
    scheme = _scheme_for(layers)
    out = []
    for code, title, crossed in (
        ("vanishing_gradient", "Gradients vanish", lambda r: r < VANISH),
        ("exploding_gradient", "Gradients explode", lambda r: not r <= EXPLODE),
    ):
        hit = next((la for la in reversed(track) if crossed((la.grad_rms or 0.0) / ref)), None)
        if hit is None:
            continue
        bound = f"below {VANISH:g}×" if code.startswith("vanishing") else f"above {EXPLODE:g}×"
        out.append(
            Verdict(
                code,
                "problem",
                title,
                f"going back from the output the gradient RMS {_per_layer(rate)}; it is {bound} the "
                f"last layer's ({fmt(ref)}) from {_label(hit)} down "
                f"(first layer: {fmt(track[0].grad_rms or 0.0)})",
                f'{scheme}; for deep tanh/linear nets an orthogonal init ("orthogonal") keeps every singular '
                f"value of the input-output Jacobian near 1",
                [hit.index],
            )
        )
    return out


def _dead(layers: Sequence[LayerStats]) -> list[Verdict]:
    track = [la for la in layers if la.dead is not None]
    if not track:
        return []
    fractions = [la.dead or 0.0 for la in track]
    bad = [la for la in track if (la.dead or 0.0) > DEAD_LAYER]
    if len(bad) <= DEAD_LAYERS * len(track) and statistics.fmean(fractions) <= DEAD_MEAN:
        return []
    worst = max(track, key=lambda la: la.dead or 0.0)
    biases = [p.mean for la in track for p in la.params if p.name.endswith("bias") and p.mean is not None]
    bias_note = ""
    if biases and statistics.fmean(biases) < 0:
        bias_note = f"; the biases are negative (mean {fmt(statistics.fmean(biases))})"
    return [
        Verdict(
            "dead_units",
            "problem",
            "Dead units",
            f"{len(bad)} of {len(track)} {worst.activation} layers have more than {DEAD_LAYER:.0%} of their "
            f"units never active on this batch (mean {statistics.fmean(fractions):.0%}; "
            f"worst {_label(worst)}: "
            f"{worst.dead:.0%}){bias_note}",
            'zero biases and He-scaled weights: initlab.init_model(model, "he_normal") (or "auto"); a '
            "leaky_relu activation keeps a gradient on the negative side",
            [la.index for la in bad] or [worst.index],
        )
    ]


def _saturation(layers: Sequence[LayerStats]) -> list[Verdict]:
    track = [la for la in layers if la.saturated is not None]
    if not track:
        return []
    mean = statistics.fmean(la.saturated or 0.0 for la in track)
    bad = [la for la in track if (la.saturated or 0.0) > SATURATED_LAYER]
    if not bad and mean <= SATURATED_MEAN:
        return []
    worst = max(track, key=lambda la: la.saturated or 0.0)
    return [
        Verdict(
            "saturation",
            "problem",
            "Saturated units",
            f"{mean:.0%} of the pre-activations of the {len(track)} {worst.activation} layers lie where the "
            f"derivative is below 5% of its peak; {len(bad)} layers are more than {SATURATED_LAYER:.0%} "
            f"saturated (worst {_label(worst)}: {worst.saturated:.0%}, "
            f"pre-activation std {fmt(worst.output.std)})",
            'keep pre-activations in the linear range: initlab.init_model(model, "auto") or '
            'init_model(model, "lecun_normal") (weight variance 1/fan_in, not 1)',
            [la.index for la in bad] or [worst.index],
        )
    ]


def _symmetry(layers: Sequence[LayerStats]) -> list[Verdict]:
    bad = [
        la for la in layers if la.symmetry is not None and la.symmetry.units > 1 and la.symmetry.twinned > 0
    ]
    if not bad:
        return []
    full = [la for la in bad if la.symmetry is not None and la.symmetry.groups == 1]
    first = bad[0]
    assert first.symmetry is not None
    return [
        Verdict(
            "symmetry",
            "problem",
            "Unbroken symmetry",
            f"{len(bad)} layers have units with identical incoming weights that receive identical gradients, "
            f"so training can never tell them apart; {len(full)} layers are a single group "
            f"(e.g. {_label(first)}: "
            f"{first.symmetry.units} units in {first.symmetry.groups} group(s), effective rank "
            f"{fmt(first.effective_rank if first.effective_rank is not None else math.nan)})",
            'draw the weights at random: initlab.init_model(model, "auto") or any random scheme such as '
            '"glorot_uniform"; constant and all-equal inits (e.g. "constant(0.5)") never break symmetry',
            [la.index for la in bad],
        )
    ]


def _units(layer: LayerStats) -> int:
    """Output units (channels for convolutions): the mean over few units is noisy."""
    shape = layer.shape
    if len(shape) < 2:
        return max(1, shape[0] if shape else 1)
    return max(1, shape[1] if layer.kind.startswith("conv") else shape[-1])


def _mean_shift(layers: Sequence[LayerStats]) -> list[Verdict]:
    track = [la for la in layers if math.isfinite(la.mean_shift)]
    if len(track) < 3:
        return []
    third = max(1, len(track) // 3)
    early = min(la.mean_shift for la in track[:third])
    # a zero-mean layer with n units has |mean| / RMS ~ |N(0, 1)| / sqrt(n) from its random per-unit offsets
    late_layer = max(track[-third:], key=lambda la: la.mean_shift - SHIFT_NOISE / math.sqrt(_units(la)))
    late = late_layer.mean_shift
    if late <= max(SHIFT_HIGH, SHIFT_NOISE / math.sqrt(_units(late_layer))) or late - early <= SHIFT_RISE:
        return []
    return [
        Verdict(
            "mean_shift",
            "warning",
            "Mean shift grows with depth",
            f"|mean| / RMS of the layer outputs rises from {early:.2f} early in the network to "
            f"{late:.2f} at {_label(late_layer)}: the signal turns into a constant offset the next layers "
            "must undo",
            'use zero-mean weights and zero biases: initlab.init_model(model, "auto"); schemes drawn from '
            'U(0, a) (e.g. "jax:uniform", torch.nn.init.uniform_ with its default bounds) shift the mean',
            [late_layer.index],
        )
    ]


def _isometry(jacobian: dict[str, Any] | None) -> list[Verdict]:
    if not jacobian or not (jacobian.get("spread_db", 0.0) > ISOMETRY_DB):
        return []
    return [
        Verdict(
            "isometry",
            "warning",
            "Far from dynamical isometry",
            f"the singular values of the input-output Jacobian span {jacobian['spread_db']:.0f} dB "
            f"(max {fmt(jacobian['max'])}, min {fmt(jacobian['min'])})",
            'orthogonal weights keep the spectrum concentrated: initlab.init_model(model, "orthogonal") '
            '(for tanh nets with the gain at the edge of chaos, or "auto")',
            [],
        )
    ]

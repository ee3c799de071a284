"""The coordinate check (Tensor Programs V, section 7 / the ``mup`` package's ``coord_check``): does each
layer's activation size, and its change after a few optimizer steps, stay put as the model gets wider?

For each width the model is built by ``make_model(width)``, initialized (standard parametrization: the base
scheme; ``"mup"``/``"spectral"``: :mod:`._transform` with the model at ``widths[0]`` on meta as the base),
trained ``steps`` steps on ``batch`` with Adam or SGD (μP: :func:`mup_param_groups`). Recorded per module
that holds parameters: the RMS of its output at init, of its output's change after the steps (same batch),
and of the loss gradient with respect to its output at init. The fitted exponent ``a`` in
``size ~ width^a`` (least squares on log-log) and the max/min ratio over widths make the verdict. The model
runs in eval mode (no dropout: nothing draws from torch's global RNG).

What to expect under μP: every layer's init size and change stay put; the per-coordinate gradient of hidden
activations shrinks as 1/width by design (the readout is O(1/width)), so "grad" is informative for SP only."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..errors import InitlabValueError

Parametrization = Literal["sp", "mup", "spectral"]
QUANTITIES = ("init", "delta", "grad")


@dataclass
class CoordCheck:
    """RMS per layer (module name; ``"<output>"`` for the model output) and width, mean over seeds."""

    widths: list[int]
    parametrization: str
    steps: int
    optimizer: str
    lr: float
    layers: list[str] = field(default_factory=list)
    init: dict[str, list[float]] = field(default_factory=dict)
    delta: dict[str, list[float]] = field(default_factory=dict)
    grad: dict[str, list[float]] = field(default_factory=dict)

    def series(self, quantity: str) -> dict[str, list[float]]:
        if quantity not in QUANTITIES:
            raise InitlabValueError(f"quantity is one of {QUANTITIES}, got {quantity!r}")
        return dict(getattr(self, quantity))

    def exponent(self, layer: str, quantity: str = "delta") -> float:
        """``a`` in RMS ~ width^a, fitted on log-log."""
        y = np.asarray(self.series(quantity)[layer], dtype=float)
        if np.any(y <= 0) or not np.all(np.isfinite(y)):
            return math.nan
        return float(np.polyfit(np.log(self.widths), np.log(y), 1)[0])

    def ratio(self, layer: str, quantity: str = "delta") -> float:
        """max / min over the widths."""
        y = np.asarray(self.series(quantity)[layer], dtype=float)
        return float(y.max() / y.min()) if np.all(y > 0) else math.inf

    def verdict(self, quantity: str = "delta", tolerance: float = 2.0) -> list[str]:
        """One line per layer: stable (varies < ``tolerance`` x), or grows/shrinks with its exponent."""
        lines = []
        for layer in self.layers:
            if not any(self.series(quantity)[layer]):
                lines.append(f"{layer}: zero at every width")
                continue
            r, a = self.ratio(layer, quantity), self.exponent(layer, quantity)
            word = "stable" if r < tolerance else ("grows" if a > 0 else "shrinks")
            lines.append(f"{layer}: {word} (x{r:.2f} over widths {self.widths[0]}-{self.widths[-1]}, "
                         f"width^{a:+.2f})")
        return lines

    def unstable(self, quantity: str = "delta", tolerance: float = 2.0) -> list[str]:
        return [lay for lay in self.layers if not self.ratio(lay, quantity) < tolerance]

    def __str__(self) -> str:
        head = (f"coord check ({self.parametrization}, {self.optimizer} lr {self.lr:g}, {self.steps} steps, "
                f"widths {', '.join(map(str, self.widths))})")
        parts = [head]
        for q, title in (("init", "activation RMS at init"), ("delta", f"change after {self.steps} steps"),
                         ("grad", "output-gradient RMS at init")):
            parts.append(f"  {title}:")
            parts += [f"    {line}" for line in self.verdict(q)]
        return "\n".join(parts)

    def plot(self, path: str | None = None) -> Any:
        """Log-log plot of the three quantities against width, one line per layer; saved if ``path``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        for ax, q, title in zip(axes, QUANTITIES, ("RMS at init", f"RMS of change after {self.steps} steps",
                                                    "output-gradient RMS at init"), strict=True):
            data = self.series(q)
            for k, layer in enumerate(self.layers):  # same colour per layer in every panel
                if layer in data and any(data[layer]):
                    ax.plot(self.widths, data[layer], marker="o", label=layer, color=f"C{k % 10}")
            ax.set(xscale="log", yscale="log", xlabel="width", title=f"{self.parametrization}: {title}")
            ax.minorticks_off()
            ax.set_xticks(self.widths, [str(w) for w in self.widths])
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=110)
            plt.close(fig)
        return fig


def _loss(out: torch.Tensor, batch: Any) -> torch.Tensor:
    if isinstance(batch, tuple | list) and len(batch) == 2:
        y = batch[1]
        if not y.is_floating_point():
            return nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]).float(), y.reshape(-1))
        return nn.functional.mse_loss(out.float(), y.float())
    return out.float().mean()  # a fixed linear functional: gradients flow even through a zero readout


def _inputs(batch: Any) -> Any:
    return batch[0] if isinstance(batch, tuple | list) else batch


def _record(model: nn.Module, batch: Any, grads: bool) -> dict[str, torch.Tensor | float]:
    """Each parameter-holding module's output (detached), and with ``grads`` the RMS of d loss / d output."""
    outs: dict[str, torch.Tensor] = {}
    grad_rms: dict[str, float] = {}
    handles = []

    def hook(name: str) -> Callable[..., None]:
        def fn(module: nn.Module, args: Any, out: Any) -> None:
            t = out[0] if isinstance(out, tuple) else out
            if not isinstance(t, torch.Tensor):
                return
            outs[name] = t.detach().clone()
            if grads and t.requires_grad:
                t.register_hook(lambda g: grad_rms.__setitem__(name, _rms(g)))
        return fn

    for name, module in model.named_modules():
        if name and any(True for _ in module.parameters(recurse=False)):
            handles.append(module.register_forward_hook(hook(name)))
    try:
        out = model(_inputs(batch))
        outs["<output>"] = out.detach().clone()
        if grads:
            out.register_hook(lambda g: grad_rms.__setitem__("<output>", _rms(g)))
            _loss(out, batch).backward()
            model.zero_grad(set_to_none=True)
    finally:
        for h in handles:
            h.remove()
    return {**outs, **{f"grad:{k}": v for k, v in grad_rms.items()}}


def _prepare(make_model: Callable[[int], nn.Module], width: int, base_width: int, parametrization: str,
             optimizer: str, lr: float, seed: int, init_options: dict[str, Any]) -> tuple[nn.Module, Any]:
    from ..model import init_model
    from ._groups import mup_param_groups

    with torch.random.fork_rng(devices=[]):  # the factory's own init draws from the global RNG
        model = make_model(width)
    if parametrization == "sp":
        init_model(model, init_options.get("base_scheme", "torch:default"), seed=seed)
        groups: Any = model.parameters()
    else:
        with torch.device("meta"):
            base = make_model(base_width)
        init_model(model, parametrization, base=base, seed=seed, **init_options)
        groups = mup_param_groups(model, lr, "sgd" if optimizer == "sgd" else "adam", base=base)
    opt = torch.optim.SGD(groups, lr=lr) if optimizer == "sgd" else torch.optim.Adam(groups, lr=lr)
    return model.eval(), opt


def _rms(t: torch.Tensor) -> float:
    return float(t.float().square().mean().sqrt())


def coord_check(make_model: Callable[[int], nn.Module], widths: Sequence[int], batch: Any, steps: int = 5,
                optimizer: Literal["adam", "sgd"] = "adam", *, lr: float = 1e-2,
                parametrization: Parametrization = "mup", seeds: Sequence[int] = (0,),
                **init_options: Any) -> CoordCheck:
    """Per-layer activation RMS at init, its change after ``steps`` optimizer steps and the output gradient's
    RMS, across ``widths`` (the first is μP's base width). ``batch``: an input, or ``(input, target)``
    (integer targets: cross-entropy; float: MSE; no target: the mean output as the loss).
    ``init_options`` reach ``init_model`` (``readout="zero"``, ``base_scheme=...``)."""
    widths = sorted(int(w) for w in widths)
    if len(widths) < 2:
        raise InitlabValueError(f"coord_check needs at least two widths, got {widths}")
    if parametrization not in ("sp", "mup", "spectral"):
        raise InitlabValueError(f"parametrization is 'sp', 'mup' or 'spectral', got {parametrization!r}")
    result = CoordCheck(widths, parametrization, steps, optimizer, lr)
    sums: dict[str, dict[str, list[float]]] = {q: {} for q in QUANTITIES}
    for k, width in enumerate(widths):
        for seed in seeds:
            model, opt = _prepare(make_model, width, widths[0], parametrization, optimizer, lr, seed,
                                  init_options)
            before = _record(model, batch, grads=True)
            for _ in range(steps):
                opt.zero_grad(set_to_none=True)
                _loss(model(_inputs(batch)), batch).backward()
                opt.step()
            with torch.no_grad():
                after = _record(model, batch, grads=False)
            for name, value in before.items():
                if name.startswith("grad:"):
                    q, layer, v = "grad", name[5:], float(value)
                else:
                    assert isinstance(value, torch.Tensor)
                    sums["init"].setdefault(name, [0.0] * len(widths))[k] += _rms(value) / len(seeds)
                    q, layer = "delta", name
                    v = _rms(after[name] - value) if name in after else math.nan
                sums[q].setdefault(layer, [0.0] * len(widths))[k] += v / len(seeds)
    result.layers = list(sums["init"])
    result.init, result.delta, result.grad = sums["init"], sums["delta"], sums["grad"]
    return result

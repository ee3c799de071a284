"""Figure helpers on matplotlib's object API (no pyplot, no global backend switch): PNGs only."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def figure(ncols: int = 1, *, width: float = 5.0, height: float = 3.6) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def save(fig: Figure, out: Path, name: str) -> str:
    fig.savefig(Path(out) / name, dpi=110)
    return name


def band(ax: Axes, x: Sequence[float], runs: Sequence[Sequence[float]], label: str) -> None:
    """Mean over runs with a shaded min–max band."""
    a = np.asarray(runs, dtype=np.float64)
    line = ax.plot(x, np.nanmean(a, axis=0), label=label)[0]
    if len(a) > 1:
        ax.fill_between(x, np.nanmin(a, axis=0), np.nanmax(a, axis=0), color=line.get_color(), alpha=0.2)

"""Number formatting shared by the terminal table, the verdicts and the HTML page."""

from __future__ import annotations

import math


def fmt(x: float | None, digits: int = 3) -> str:
    """Three significant digits; scientific notation outside 1e-3..1e5; '-' for a missing value."""
    if x is None:
        return "-"
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}" if 1e-3 <= abs(x) < 1e5 else f"{x:.{max(digits - 1, 1)}e}"


def pct(x: float | None, decimals: int = 0) -> str:
    return "-" if x is None else f"{100 * x:.{decimals}f}%"

"""Two-sample comparison of initializer draws: the checks every conformance test makes.

``same_law(ours, theirs)`` passes when the two samples come from the same distribution as far as n draws can
tell: means and standard deviations within 5 standard errors (the SE of a sample std from the sample's own
kurtosis), a two-sample KS p-value above 1e-4, the same support (the largest |value| within 2% when the
framework's draw is bounded, i.e. max|x|/std < 3.5 on >= 20000 draws), and exact equality for constants.
``same_structure`` compares what makes orthogonal draws orthogonal: the singular values of the flattened
matrix when the framework's are all equal."""

from __future__ import annotations

import numpy as np
from scipy import stats

SE = 5.0
KS_P = 1e-4


def _std_se(x: np.ndarray) -> float:
    n = x.size
    s = x.std()
    if s == 0:
        return 0.0
    kurt = float(np.mean(((x - x.mean()) / s) ** 4))
    return float(s * np.sqrt(max(kurt - 1.0, 1e-12) / (4.0 * n)))


def law_mismatch(ours: np.ndarray, theirs: np.ndarray) -> str:
    """Why the two samples differ ("" when they agree)."""
    a = np.asarray(ours, dtype=np.float64).ravel()
    b = np.asarray(theirs, dtype=np.float64).ravel()
    if not np.isfinite(a).all():
        return "left untouched (not finite)"
    if b.std() == 0 or a.std() == 0:
        if not np.allclose(a, b.mean(), rtol=1e-6, atol=1e-12) or not np.allclose(
            b, a.mean(), rtol=1e-6, atol=1e-12
        ):
            return f"constants differ: ours {np.unique(a)[:4]} vs {np.unique(b)[:4]}"
        return ""
    se_std = np.hypot(_std_se(a), _std_se(b))
    if abs(a.std() - b.std()) > SE * se_std:
        return (
            f"std {a.std():.6g} vs {b.std():.6g} (ratio {a.std() / b.std():.4f}, {SE} SE = {SE * se_std:.2g})"
        )
    se_mean = np.sqrt(a.var() / a.size + b.var() / b.size)
    if abs(a.mean() - b.mean()) > SE * se_mean:
        return f"mean {a.mean():.6g} vs {b.mean():.6g} ({SE} SE = {SE * se_mean:.2g})"
    p = stats.ks_2samp(a, b).pvalue
    if p < KS_P:
        return f"KS p = {p:.2g} (std ratio {a.std() / b.std():.4f})"
    if b.size >= 20000 and a.size >= 20000:
        ma, mb = np.abs(a).max(), np.abs(b).max()
        bounded_a, bounded_b = ma / a.std() < 3.5, mb / b.std() < 3.5
        if bounded_a != bounded_b or (bounded_b and abs(ma / mb - 1) > 0.02):
            return f"support: max|x| {ma:.6g} vs {mb:.6g}"
    return ""


def svals(m: np.ndarray) -> np.ndarray:
    return np.linalg.svd(np.asarray(m, dtype=np.float64), compute_uv=False)


def structure_mismatch(ours: np.ndarray, theirs: np.ndarray) -> str:
    """Orthogonality as the framework has it: its flattened matrix has equal singular values -> ours too."""
    so, st = svals(ours), svals(theirs)
    if st.max() - st.min() > 1e-3 * st.max():
        return ""
    if so.max() - so.min() > 1e-3 * max(so.max(), 1e-30) or abs(so.mean() / st.mean() - 1) > 1e-3:
        return f"singular values {so.min():.4g}..{so.max():.4g} vs the framework's {st.mean():.4g}"
    return ""

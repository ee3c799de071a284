import math

import numpy as np
import pytest
from scipy import stats as sps

from initlab.lab.stats import paired, summarize, welch


def test_summary_is_t_interval():
    s = summarize([1.0, 2.0, 3.0])
    assert s.mean == 2.0 and s.n == 3
    assert s.half_width == pytest.approx(sps.t.ppf(0.975, 2) * 1.0 / math.sqrt(3))
    assert str(s) == "2.000 ± 2.484"
    assert s.format(1, percent=True) == "200.0 ± 248.4%"


def test_single_value_has_no_interval_and_empty_is_an_error():
    assert math.isnan(summarize([0.5]).half_width)
    assert summarize([0.5]).format(2) == "0.50"
    with pytest.raises(ValueError):
        summarize([])


def test_interval_covers_the_mean_at_the_nominal_rate():
    rng = np.random.default_rng(0)
    trials = 2000
    covered = 0
    for _ in range(trials):
        s = summarize(rng.normal(3.0, 2.0, size=5))
        covered += s.low <= 3.0 <= s.high
    # binomial standard error of a 95% rate over 2000 trials is 0.49%; allow 5 of them
    assert abs(covered / trials - 0.95) < 5 * math.sqrt(0.95 * 0.05 / trials)


def test_paired_and_welch_match_scipy():
    a, b = [0.61, 0.64, 0.60, 0.66, 0.63], [0.58, 0.62, 0.59, 0.61, 0.60]
    c = paired(a, b)
    assert c.p_value == pytest.approx(sps.ttest_rel(a, b).pvalue)
    assert c.difference.mean == pytest.approx(np.mean(a) - np.mean(b))
    w = welch(a, b)
    assert w.p_value == pytest.approx(sps.ttest_ind(a, b, equal_var=False).pvalue)
    with pytest.raises(ValueError):
        paired([1.0, 2.0], [1.0])


def test_identical_samples_are_not_significant():
    c = paired([0.5, 0.6, 0.7], [0.5, 0.6, 0.7])
    assert c.p_value == 1.0 and not c.significant

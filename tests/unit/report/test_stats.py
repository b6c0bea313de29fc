"""Before/after means with 95% confidence intervals (values checked against hand computation
and textbook t quantiles)."""

from __future__ import annotations

import math

import pytest

from services.projection.report.stats import before_after, mean_ci, t95


def test_t_quantiles() -> None:
    assert t95(1) == 12.706
    assert t95(10) == 2.228
    assert t95(30) == 2.042
    assert t95(60) == pytest.approx(2.000, abs=0.001)
    assert t95(120) == pytest.approx(1.980, abs=0.001)
    assert t95(10.7) == 2.228  # fractional df round down: a wider, conservative interval


def test_mean_and_interval() -> None:
    m = mean_ci([2.1, 1.9, 2.1, 1.9])
    assert m is not None
    assert m.mean == pytest.approx(2.0)
    sd = math.sqrt(4 * 0.01 / 3)
    assert m.high == pytest.approx(2.0 + 3.182 * sd / 2)
    assert m.low == pytest.approx(2.0 - 3.182 * sd / 2)
    single = mean_ci([3.0])
    assert single is not None and single.low is None
    assert mean_ci([]) is None


def test_a_half_kilo_drop_is_found_with_its_interval() -> None:
    before = [2.1, 1.9] * 7
    after = [1.6, 1.4] * 7
    c = before_after(before, after)
    assert c is not None
    assert c.difference == pytest.approx(-0.5)
    assert c.low is not None and c.high is not None
    assert c.low < -0.5 < c.high < 0  # a clear drop: the interval excludes zero
    # equal variances and sizes: Welch df = 26, se = sqrt(2 * var / 14)
    var = 14 * 0.01 / 13
    assert c.high - c.difference == pytest.approx(2.056 * math.sqrt(2 * var / 14))
    assert before_after([], after) is None

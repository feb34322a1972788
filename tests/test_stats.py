"""Accuracy intervals against published values."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from nas.core.stats import Z_95, Accuracy, mean_interval


@pytest.mark.parametrize(
    ("correct", "total", "low", "high"),
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table I, method 3 (Wilson score, no continuity correction)
    [(81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718)],
)
def test_wilson_interval_matches_newcombe(correct, total, low, high):
    interval = Accuracy(correct, total).interval()
    assert interval == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_at_100_percent_of_300_files():
    assert pytest.approx(scipy_stats.norm.ppf(0.975), abs=1e-12) == Z_95
    low, high = Accuracy(300, 300).interval()
    assert high == pytest.approx(1.0) and low == pytest.approx(300 / (300 + Z_95**2))  # the interval README quotes as 98.7-100
    assert f"{100 * low:.1f}" == "98.7"


def test_mean_interval_is_a_t_interval_of_the_mean():
    mean, low, high = mean_interval([99.0, 100.0, 99.33])
    half = scipy_stats.t.ppf(0.975, 2) * scipy_stats.tstd([99.0, 100.0, 99.33]) / 3**0.5
    assert mean == pytest.approx(99.4433, abs=1e-4) and low == pytest.approx(mean - half) and high == 100.0  # clipped
    assert mean_interval([98.0]) == (98.0, 98.0, 98.0)


@pytest.mark.parametrize(("correct", "total"), [(0, 1), (1, 1), (7, 10), (295, 300), (500, 500), (1, 500)])
def test_wilson_interval_is_the_closed_form(correct, total):
    """The library's interval (scipy) against the Wilson score formula written out."""
    p, z = correct / total, Z_95
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    assert Accuracy(correct, total).interval() == pytest.approx((max(0.0, centre - half), min(1.0, centre + half)), abs=1e-12)


def test_mean_interval_of_equal_seeds_has_no_spread():
    assert mean_interval([98.0, 98.0, 98.0]) == (98.0, 98.0, 98.0)


def test_an_empty_part_has_no_accuracy():
    empty = Accuracy(0, 0)
    assert math.isnan(empty.value) and all(math.isnan(v) for v in empty.interval())


def test_two_seeds_have_an_interval():
    mean, low, high = mean_interval([98.0, 99.0])
    half = scipy_stats.t.ppf(0.975, 1) * scipy_stats.tstd([98.0, 99.0]) / 2**0.5
    assert mean == 98.5 and low == pytest.approx(98.5 - half) and high == 100.0  # 98.5 + 6.4, clipped
    assert mean_interval([0.0, 1.0])[1] == 0.0  # and clipped at 0%


def test_accuracies_pool_by_adding_counts():
    pooled = Accuracy(90, 100) + Accuracy(10, 50)
    assert pooled == Accuracy(100, 150) and pooled.value == pytest.approx(2 / 3)

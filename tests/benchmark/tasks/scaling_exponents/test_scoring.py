"""The interval score and the unranked family C of scaling-exponents (version 3)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.tasks.scaling_exponents.scorer import INTERVAL_WORST, interval_score

from .helpers import TASK, overall


def test_interval_score_is_lowest_at_the_true_quantiles():
    """Truths log-normal around 2 (sigma 0.1 in ln units): the 5-95% interval scores lower than one
    half as wide or twice as wide, or shifted by half a sigma (Gneiting & Raftery 2007: proper)."""
    rng = np.random.default_rng(0)
    truth = 2.0 * np.exp(0.1 * rng.standard_normal(200_000))
    z = 1.6448536269514722 * 0.1

    def expected(half_width: float, shift: float = 0.0) -> float:
        lo = np.full(truth.size, 2.0 * math.exp(shift - half_width))
        hi = np.full(truth.size, 2.0 * math.exp(shift + half_width))
        return interval_score(lo, hi, truth)
    best = expected(z)
    assert best < expected(z / 2) and best < expected(2 * z) and best < expected(z, 0.05)


def test_absurd_intervals_score_the_worst_value():
    truth = np.array([1.0, 2.0])
    assert interval_score(np.array([-1e300, 0.0]), np.array([1e300, 1e300]), truth) == INTERVAL_WORST
    assert interval_score(np.array([1e-300, 1e-300]), np.array([1e300, 1e300]), truth) == INTERVAL_WORST
    # zero width a factor e^0.1 off: 20 x 0.1 per query
    assert interval_score(truth * math.exp(0.1), truth * math.exp(0.1), truth) == pytest.approx(2.0)
    assert TASK.metadata.metric("interval_score").worst == INTERVAL_WORST


def test_family_c_is_a_sanity_row_left_out_of_the_overall_metrics():
    meta = TASK.metadata
    assert meta.unranked_groups == ["C"] and meta.unranked_because
    rows = [{"group": "A", "metrics": {"log_loss_error": 0.2, "exponent_error": 0.1, "interval_score": 1.0,
                                       "interval_coverage": 0.8}},
            {"group": "C", "metrics": {"log_loss_error": 0.0, "exponent_error": None, "interval_score": 0.0,
                                       "interval_coverage": 1.0}}]
    agg = overall(rows)
    assert agg["metrics"]["log_loss_error"]["value"] == 0.2 and agg["n_unranked"] == 1
    assert agg["groups"]["C"]["log_loss_error"] == 0.0


def test_under_coverage_is_flagged():
    """Coverage is a diagnostic with nominal rate 0.9: 20 instances covering half their queries are
    flagged below nominal; 20 covering all of them are not."""
    def rows(cov):
        return [{"group": "A", "metrics": {"log_loss_error": 0.1, "exponent_error": None, "interval_score": 1.0,
                                           "interval_coverage": cov}} for _ in range(20)]
    assert overall(rows(0.5))["metrics"]["interval_coverage"]["below_nominal"] is True
    assert overall(rows(1.0))["metrics"]["interval_coverage"]["below_nominal"] is False

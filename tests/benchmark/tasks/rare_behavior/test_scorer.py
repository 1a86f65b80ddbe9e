import math

import numpy as np
import pytest

from benchmark.dataset import InstanceRecord
from benchmark.stats import aggregate
from benchmark.task import AnswerError, get_task
from benchmark.tasks.rare_behavior.scorer import (ESTIMATE_CAP, IS_WORST, LOG10_FLOOR, PINBALL_WORST,
                                                  QUANTILE_SCORE_WORST, estimate_error, is_loss, pinball_log10,
                                                  quantile_score, score_answer)

TASKS = [get_task("rare-behavior"), get_task("rare-behavior-whitebox")]
RECORD = InstanceRecord(id="x", group="F1", public={})


def _answer(p_hat, upper):
    return {"p_hat": np.array(p_hat), "upper": np.array(upper)}


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
@pytest.mark.parametrize("p", [1e-12, 3.7e-8, 1e-3])
def test_oracle_answer_gets_the_best_score(task, p):
    scores = task.score(task.validate_answer(_answer(p, p), RECORD), {"p": np.array([p])}, RECORD)
    assert scores == {m.name: m.best for m in task.metadata.metrics}


@pytest.mark.parametrize("p", [1e-12, 1e-9, 1e-6])
def test_plain_monte_carlo_at_its_floor(p):
    """No hit in n = 2^16 draws: p_hat = 0, Clopper-Pearson u = 1 - 0.05^(1/n) ~ 3/n. The bound
    covers, and pays 0.05 per decade of slack; the estimate is the worst."""
    n = 2 ** 16
    u = 1 - 0.05 ** (1 / n)
    scores = score_answer(0.0, u, p)
    assert scores["coverage"] == 1.0
    assert scores["pinball"] == pytest.approx(0.05 * (math.log10(u) - math.log10(p)))
    assert scores["estimate_error"] == ESTIMATE_CAP and scores["is_loss"] == IS_WORST
    assert scores["pinball"] > score_answer(p, p * 10, p)["pinball"]  # one decade of slack is better


def test_pinball_is_asymmetric_and_floored():
    p = 1e-6
    assert pinball_log10(1e-5, p) == pytest.approx(0.05)       # one decade of slack
    assert pinball_log10(1e-7, p) == pytest.approx(0.95)       # one decade of miss
    assert pinball_log10(1e-300, 1e-3) == pytest.approx(0.95 * (-3 - LOG10_FLOOR))
    assert pinball_log10(1e-300, 1e-3) < PINBALL_WORST


def test_pinball_is_minimised_by_the_95_percent_quantile():
    """Proper for the 95% quantile: over uncertainty about log10 p, the bound with the lowest mean
    loss is the 95% quantile of that uncertainty, not the median and not a far-off bound."""
    log_p = np.random.default_rng(0).normal(-8.0, 1.0, 4000)
    candidates = np.linspace(-10, -4, 601)
    mean_loss = [np.mean([pinball_log10(10 ** c, 10 ** lp) for lp in log_p]) for c in candidates]
    best = candidates[int(np.argmin(mean_loss))]
    assert best == pytest.approx(np.quantile(log_p, 0.95), abs=0.05)


def test_quantile_score_is_minimised_by_the_median_and_the_95_percent_quantile():
    """Proper for the pair: over uncertainty about log10 p, the answer with the lowest mean headline
    puts p_hat at the median and the bound at the 95% quantile; a confident answer at the truth's
    centre (bound = estimate) and a far bound both score worse."""
    log_p = np.random.default_rng(1).normal(-8.0, 1.0, 3000)
    p = 10.0 ** log_p
    est = np.linspace(-10, -6, 81)
    ups = np.linspace(-8, -4, 81)
    mean = np.array([[np.mean([quantile_score(10 ** e, 10 ** max(u, e), q) for q in p[::6]]) for u in ups]
                     for e in est])
    i, j = np.unravel_index(np.argmin(mean), mean.shape)
    assert est[i] == pytest.approx(np.median(log_p), abs=0.1)
    assert ups[j] == pytest.approx(np.quantile(log_p, 0.95), abs=0.1)
    assert quantile_score(1e-8, 1e-8, 1e-8) == 0.0
    assert quantile_score(1e-7, 1e-6, 1e-8) == pytest.approx(0.5 * 1 + 0.05 * 2)   # one decade off, two of slack
    assert quantile_score(1e-9, 1e-9, 1e-8) == pytest.approx(0.5 * 1 + 0.95 * 1)   # one decade under, bound missed


def test_estimate_error_and_is_loss_stay_finite():
    assert estimate_error(0.0, 1e-9) == ESTIMATE_CAP
    assert estimate_error(1e-3, 1e-9) == pytest.approx(6.0)
    assert is_loss(0.0, 1e-9) == pytest.approx(IS_WORST)
    assert is_loss(1e-9 / 1e4, 1e-9) == pytest.approx(IS_WORST)         # > 3 decades under: clipped
    assert is_loss(1.0, 1e-15) == pytest.approx(1e-12 - math.log(1e-12) - 1)  # 12 decades over, clipped
    assert is_loss(2e-9, 1e-9) == pytest.approx(0.5 - math.log(0.5) - 1)


@pytest.mark.parametrize("answer, message", [
    ({"p_hat": np.array(0.1)}, "exactly the fields"),
    (_answer(np.nan, 0.1), "p_hat: is NaN"),
    (_answer(0.1, 1.5), r"upper: expected a value in \(0, 1\], got 1.5"),
    (_answer(0.0, 0.0), r"upper: expected a value in \(0, 1\], got 0.0"),
    (_answer(0.2, 0.1), "upper: 0.1 is below p_hat"),
    (_answer(np.ones(2), 0.1), "p_hat: expected a scalar"),
])
def test_answer_validation_names_the_field(answer, message):
    with pytest.raises(AnswerError, match=message):
        TASKS[0].validate_answer(answer, RECORD)


def test_failure_counts_worse_than_any_answer():
    failed = TASKS[0].failure_metrics(RECORD)
    assert failed == {"quantile_score": QUANTILE_SCORE_WORST, "pinball": PINBALL_WORST,
                      "estimate_error": ESTIMATE_CAP, "is_loss": IS_WORST, "coverage": 0.0}
    for p in (1e-12, 1e-3):
        for u in (1e-300, 1.0):
            assert score_answer(0.0, u, p)["pinball"] <= PINBALL_WORST
            assert score_answer(0.0, u, p)["quantile_score"] <= QUANTILE_SCORE_WORST


def test_coverage_below_nominal_is_flagged():
    meta = TASKS[0].metadata
    def rows(hits, n):
        return [{"group": "F1", "metrics": {"quantile_score": 0.0, "pinball": 0.0, "estimate_error": 0.0,
                                           "is_loss": 0.0, "coverage": float(i < hits)}} for i in range(n)]
    ok = aggregate(meta, rows(19, 20))["metrics"]["coverage"]
    bad = aggregate(meta, rows(12, 20))["metrics"]["coverage"]
    assert ok["below_nominal"] is False and ok["binom_p"] > 0.05
    assert bad["below_nominal"] is True and bad["binom_p"] < 0.001
    assert "below_nominal" not in aggregate(meta, rows(12, 20))["metrics"]["pinball"]

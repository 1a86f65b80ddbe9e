"""The scaling baselines stay sane (issue 15): on curves where an unconstrained fit goes wrong
(a negative exponent, an error rate above 1, an exponent at a bound of its fit) each baseline falls
back explicitly instead; on the dev split every answer obeys the rules and the 90% intervals cover
within 10 points of nominal."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from scipy.optimize import least_squares

from .helpers import TASK, dev_items, load_method, score

BASELINES = ("scaling-loglog", "scaling-approach3", "scaling-bnsl", "scaling-m4")

# error rates at 10 scales over 2 decades, queried 0.3-1.5 decades beyond
X = np.logspace(3, 5, 10)
QX = np.logspace(5.3, 6.5, 4)
RISING = [0.62, 0.55, 0.50, 0.47, 0.46, 0.47, 0.50, 0.55, 0.62, 0.70]   # overfitting: the rate turns up
INCREASING = [0.40, 0.41, 0.43, 0.44, 0.46, 0.47, 0.49, 0.50, 0.52, 0.53]
FLAT = [0.31, 0.30, 0.305, 0.30, 0.298, 0.303, 0.30, 0.301, 0.299, 0.302]


def _problem(y, rate=True):
    nan, qnan = np.full(X.size, np.nan), np.full(QX.size, np.nan)
    return {"family": "A", "variables": "D", "exponents": "alpha", "n_obs": X.size, "n_query": QX.size,
            "loss_is_rate": rate, "obs_N": nan, "obs_D": X.copy(), "obs_C": nan, "obs_step": nan,
            "obs_loss": np.asarray(y, float), "obs_run": np.arange(X.size), "query_N": qnan, "query_D": QX.copy(),
            "query_C": qnan, "query_step": qnan, "seed": 1, "instance_id": "trap", "group": "A", "device": "cpu"}


def assert_sane(answer, problem):
    """Exponents > 0; predictions finite, > 0, within the interval and non-increasing in scale
    (along the one variable, or in each of N and D); an error rate and its interval within [0, 1]."""
    for name in ("alpha", "beta"):
        if name in answer:
            assert answer[name] > 0, (name, answer[name])
    loss, low, high = (np.asarray(answer[k], float) for k in ("loss", "loss_low", "loss_high"))
    assert np.all(np.isfinite(loss) & (loss > 0)) and np.all((low <= loss) & (loss <= high))
    if problem.get("loss_is_rate"):
        assert loss.max() <= 1.0 and high.max() <= 1.0
    names = problem["variables"].split(",")
    qs = np.column_stack([np.asarray(problem["query_" + v], float) for v in names])
    bigger = np.all(qs[:, None, :] >= qs[None, :, :], axis=2)   # [i, j]: query i at least j's scale
    i, j = np.nonzero(bigger)
    assert np.all(loss[i] <= loss[j] * (1 + 1e-12))


def _run(name, problem):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        answer = load_method(name)(dict(problem))
    return answer, err.getvalue()


def test_loglog_does_not_report_a_negative_exponent():
    """An error rate that grows with scale: the unconstrained log-log slope gives alpha < 0."""
    slope = np.polyfit(np.log(X), np.log(INCREASING), 1)[0]
    assert -slope < 0
    problem = _problem(INCREASING)
    answer, log = _run("scaling-loglog", problem)
    assert_sane(answer, problem)
    assert "alpha" not in answer and "falling back" in log


def test_approach3_does_not_report_an_exponent_at_its_bound():
    """A flat curve: approach 3's fit sends alpha to its bound 6 (the term vanishes at once)."""
    from phasebench_baselines.approach3 import fit as a3
    lx = np.log(X) - np.log(X).mean()
    assert a3(lx[:, None], np.log(FLAT))[1] == pytest.approx(6.0)
    problem = _problem(FLAT)
    answer, log = _run("scaling-approach3", problem)
    assert_sane(answer, problem)
    assert "alpha" not in answer and "at a bound" in log


def _unconstrained(name, y, relax):
    """The baseline's own least squares from its own best start, with one bound relaxed: BNSL's
    asymptotic exponent down to -2 (the version-2 form, c1 >= -2), M4's c up to +2."""
    grid_fit = load_method(name, "method:fit")
    ls = load_method(name, "method:_resid"), load_method(name, "method:_jac")
    lx = np.log(X) - np.log(X).mean()
    ly = np.log(y)
    theta0 = grid_fit(lx[:, None], ly)
    if name == "scaling-bnsl":
        lo, hi = load_method(name, "method:_bounds")(lx, ly)
    else:
        lo, hi = load_method(name, "method:_bounds")(ly)
    lo, hi = lo.copy(), hi.copy()
    relax(lo, hi)
    best = None
    for start in (theta0, *(theta0 + d for d in np.eye(len(theta0)) * 0.3)):
        res = least_squares(ls[0], np.clip(start, lo + 1e-9, hi - 1e-9), jac=ls[1], bounds=(lo, hi),
                            args=(lx, ly, np.ones_like(ly)), loss="soft_l1", f_scale=1e-3, method="trf")
        if best is None or res.cost < best.cost:
            best = res
    lq = np.log(QX) - np.log(X).mean()
    return best.x, lq


def test_bnsl_does_not_predict_a_rate_above_one():
    """A rate that turns up: the broken power law with the version-2 bounds (c1 >= -2) fits a
    negative asymptotic exponent and predicts error rates above 1."""
    def relax(lo, hi):
        lo[3] = -2.0
    theta, lq = _unconstrained("scaling-bnsl", RISING, relax)
    predict = load_method("scaling-bnsl", "method:_log_predict")
    assert theta[3] < 0 and np.exp(predict(theta, lq)).max() > 1.0
    problem = _problem(RISING)
    answer, log = _run("scaling-bnsl", problem)
    assert_sane(answer, problem)
    assert "falling back" in log


def test_m4_does_not_report_an_exponent_at_its_bound():
    """A rate that turns up: M4's c sits at its bound 0 (alpha = 0); with c free to be positive
    the exponent is negative."""
    fit = load_method("scaling-m4", "method:fit")
    lx = np.log(X) - np.log(X).mean()
    assert -fit(lx[:, None], np.log(RISING))[3] < 1e-3

    def relax(lo, hi):
        hi[3] = 2.0
    theta, _ = _unconstrained("scaling-m4", RISING, relax)
    assert -theta[3] < 0
    problem = _problem(RISING)
    answer, log = _run("scaling-m4", problem)
    assert_sane(answer, problem)
    assert "M4: alpha" in log and "falling back" in log


@pytest.fixture(scope="module")
def dev_answers(dev_split_of):
    items = dev_items(dev_split_of("scaling-exponents"))
    out = {}
    for name in BASELINES:
        method = load_method(name)
        with contextlib.redirect_stderr(io.StringIO()):
            out[name] = [(rec, problem, truth, method(dict(problem))) for rec, problem, truth in items]
    return out


@pytest.mark.slow  # runs each scaling baseline over the dev split (33-36 s for bnsl and loglog)
@pytest.mark.parametrize("name", BASELINES)
def test_dev_answers_are_sane(dev_answers, name):
    for rec, problem, _truth, answer in dev_answers[name]:
        assert_sane(answer, problem)
        TASK.validate_answer(answer, rec)


@pytest.mark.slow  # shares the dev-split runs of test_dev_answers_are_sane (26-27 s of set-up apiece)
@pytest.mark.parametrize("name", BASELINES)
def test_dev_intervals_cover_within_ten_points_of_nominal(dev_answers, name):
    """Coverage of the 90% intervals over the ranked dev instances (the mean of the per-instance
    shares), not fitted on dev: each baseline's K was chosen on the train split."""
    cov = [score(answer, rec, truth)["interval_coverage"] for rec, _, truth, answer in dev_answers[name]
           if TASK.metadata.ranked(rec.group)]
    assert abs(np.mean(cov) - 0.9) <= 0.1, np.mean(cov)

"""scaling-exponents: what its baselines share (scaling-loglog, scaling-approach3, scaling-bnsl,
scaling-m4; each folder holds its own law and its interval multiplier k).

The rules every baseline's answer obeys:
  * a law is fitted, then checked: an exponent at a bound of its fit, a loss floor above the
    observations or a power-law term that has already vanished inside the data (its reducible loss
    below 0.1% of the loss at the largest observed scale) means the fit did not identify its
    exponent. The baseline then falls back, explicitly, to the next law of its chain, and in the
    end to the smallest observed loss with no exponent; every fallback is written to stderr (the
    evaluator's worker log) and returned with the answer by ``answer``.
  * exponents are > 0; predictions do not increase with scale; an error rate (``loss_is_rate``)
    is never predicted above 1, nor is its interval.
  * the 90% interval is ln L_hat +- k sqrt(s_noise^2 + s_fit^2 + (tau d)^2) in log space:
    s_noise the robust scale of the fit's log residuals (the held-out losses carry the same noise),
    s_fit the spread of the predictions over refits on runs resampled with replacement, d the
    decades of scale beyond the observations (scale = the sum of the log10 variables) and tau the
    error per decade of a backtest: the law fitted on the lower 65% of the observed scale range
    predicts the rest. k is one constant per baseline: the smallest (in steps of 0.1) whose
    intervals cover 85% of the held-out losses of the task's train split (68 instances of families A
    and B, public answers, no instance shared with dev or test; scaling-approach3/
    calibrate_intervals.py). The k that minimises the interval score there covers less.
``predict`` is a baseline's entry point around ``answer``: its fallbacks said on stderr under its
name, with one BLAS thread. ``soft_l1_least_squares`` and ``best_refinement`` are the robust
multi-start fit that scaling-bnsl, scaling-m4 and approach 3 run on their own laws and starts.
``rate_prior_key`` and ``rate_prior_answer`` are the floor scaling-floor-rate-prior: the smallest
observed loss falling at a constant rate per public key, no curve fitted.
numpy and scipy only (and threadpoolctl, shipped with scikit-learn, where present).
"""
from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.optimize import least_squares

try:  # shipped with scikit-learn, which every sandbox provides
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

ALL_VARS = ("N", "D", "C", "step")
LN10 = float(np.log(10.0))
Z90 = 1.6448536269514722
VANISHED = 1e-3
BOUND_TOL = 1e-3
BACKTEST_SPLIT = 0.65
N_BOOT = 30


# ----------------------------------------------------------------------------- the problem
def parse_problem(problem):
    """(names, X, y, run, Q): observations (k, p) > 0, losses (k,), run ids, queries (q, p)."""
    names = [v.strip() for v in str(problem.get("variables", "")).split(",") if v.strip()]
    if not names:  # guess: the variables whose observations are not all NaN and vary
        names = [v for v in ALL_VARS
                 if np.isfinite(np.asarray(problem.get("obs_" + v, [np.nan]), float)).all()
                 and np.ptp(np.asarray(problem["obs_" + v], float)) > 0]
    X = np.column_stack([np.asarray(problem["obs_" + v], dtype=float) for v in names])
    Q = np.column_stack([np.asarray(problem["query_" + v], dtype=float) for v in names])
    y = np.asarray(problem["obs_loss"], dtype=float)
    run = np.asarray(problem.get("obs_run", np.arange(len(y))))
    ok = np.isfinite(X).all(1) & (X > 0).all(1) & np.isfinite(y) & (y > 0)
    X, y, run = X[ok], y[ok], run[ok]
    # a query coordinate that is missing or non-positive is taken as the largest observed value
    for j in range(X.shape[1]):
        bad = ~np.isfinite(Q[:, j]) | (Q[:, j] <= 0)
        Q[bad, j] = X[:, j].max()
    return names, X, y, run, Q


def requested_exponents(problem):
    return [e.strip() for e in str(problem.get("exponents", "")).split(",") if e.strip()]


def is_rate(problem) -> bool:
    return bool(problem.get("loss_is_rate", False))


# ----------------------------------------------------------------------------- laws
@dataclass(frozen=True)
class Law:
    """A fitted form. ``fit(LX, ly, w)`` from scratch, ``refit(theta, LX, ly, w)`` warm-started;
    ``log_predict(theta, LX)``; ``exponents(theta)`` one per variable (alpha, beta); ``check(theta,
    LX, ly)`` None when the fit identifies its exponents, else the reason it does not. LX is the
    log of the variables (one variable: minus the mean of its logs)."""
    name: str
    # Any: each law's own numpy code returns arrays that its static types do not always say
    fit: Callable[..., Any]
    refit: Callable[..., Any]
    log_predict: Callable[..., Any]
    exponents: Callable[..., list]
    check: Callable[..., Any]


def exponent_at_bound(values, low, high, names=("alpha", "beta")):
    """The reason an exponent sits at (or within BOUND_TOL of) a bound of its fit, else None."""
    for name, v in zip(names, values):
        if not (low + BOUND_TOL < v < high - BOUND_TOL):
            return f"{name} = {v:.4g} at a bound of its fit [{low:g}, {high:g}]"
    return None


def vanished(shares, names=("alpha", "beta")):
    """The reason a law's term has flattened inside the data (share of the loss at the largest
    observed scale below VANISHED), else None."""
    for name, s in zip(names, shares):
        if not s >= VANISHED:
            return (f"the term of {name} is {s:.2g} of the loss at the largest observed scale: the law has "
                    "flattened inside the data, its exponent is not identified")
    return None


def soft_l1_least_squares(resid, jac, theta0, bounds, args, f_scale, tol, max_nfev):
    """(theta, cost): scipy's trust-region least squares of ``resid`` (Jacobian ``jac``) with the
    soft-L1 loss of scale ``f_scale``, from theta0 moved just inside ``bounds = (lo, hi)``."""
    lo, hi = bounds
    th0 = np.clip(theta0, lo + 1e-9, hi - 1e-9)
    res = least_squares(resid, th0, jac=jac, bounds=(lo, hi), args=args, loss="soft_l1", f_scale=f_scale,
                        method="trf", xtol=tol, ftol=tol, gtol=tol, max_nfev=max_nfev)
    return res.x, float(res.cost)


def best_refinement(starts, refine, tol):
    """The theta of the lowest cost among ``refine(start) -> (theta, cost)`` over the starts, in
    order; a later start replaces the best only with a cost lower by more than ``tol``."""
    best, best_f = None, np.inf
    for start in starts:
        th, f = refine(start)
        if f < best_f - tol:
            best, best_f = th, f
    return best


def scale_of(LX):
    """Decades of scale of each point: the sum over variables of log10 (log C for N and D)."""
    return LX.sum(axis=1) / LN10


# ----------------------------------------------------------------------------- the answer
def constant_answer(y, q, rate):
    """The smallest observed loss everywhere, with the floor's interval [min^2 / max, min]."""
    low, high = float(np.min(y)), float(np.max(y))
    loss = min(low, 1.0) if rate else low
    return {"loss": np.full(q, loss), "loss_low": np.full(q, loss * low / high), "loss_high": np.full(q, loss)}


def rate_prior_key(problem) -> str:
    """The public fields a rate-prior constant is looked up by: "family|variables|rate" or
    "family|variables|loss". Together they fix the law's kind (family A's one-variable laws excepted:
    a broken power law and M4 share a key), so one constant per key is a per-kind prior."""
    return f"{problem.get('family', '')}|{problem.get('variables', '')}|{'rate' if is_rate(problem) else 'loss'}"


def log_past_data(problem):
    """(past, y): each query's ln(query / largest observed value), averaged over the varying variables,
    and the observed losses."""
    _, X, y, _, Q = parse_problem(problem)
    return np.mean(np.log(Q) - np.log(X.max(axis=0)), axis=1), y


def rate_prior_answer(problem, k):
    """The smallest observed loss times (query / largest observed value)^-k (``log_past_data``); no
    curve is fitted. Interval as ``constant_answer``'s, moved with the prediction: [L_hat min / max,
    max(L_hat, min)]; a rate within (0, 1]."""
    past, y = log_past_data(problem)
    low, high = float(np.min(y)), float(np.max(y))
    loss = low * np.exp(-float(k) * past)
    top = np.maximum(loss, low)
    if is_rate(problem):
        loss, top = np.minimum(loss, 1.0), np.minimum(top, 1.0)
    return {"loss": loss, "loss_low": loss * low / high, "loss_high": top}


def interval_parts(law, theta, LX, ly, run, LQ, rng, n_boot=N_BOOT):
    """The three spreads of the interval (see the module doc), in ln units, at each query."""
    resid = ly - law.log_predict(theta, LX)
    s_noise = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    runs, inv = np.unique(run, return_inverse=True)
    preds = np.empty((n_boot, LQ.shape[0]))
    for b in range(n_boot):
        counts = np.bincount(rng.integers(0, len(runs), len(runs)), minlength=len(runs))
        w = counts[inv].astype(float)
        if (w > 0).sum() < max(2 * LX.shape[1] + 2, 5):
            w = np.ones_like(ly)
        preds[b] = law.log_predict(law.refit(theta, LX, ly, w), LQ)
    s_fit = np.std(preds, axis=0)
    u, uq = scale_of(LX), scale_of(LQ)
    d = np.maximum(uq - u.max(), 0.0)
    return {"s_noise": s_noise, "s_fit": s_fit, "tau": backtest_tau(law, LX, ly, s_noise), "d": d}


def backtest_tau(law, LX, ly, s_noise):
    """ln error per decade of scale of the law fitted on the lower BACKTEST_SPLIT of the observed
    scale range, on the points above it (net of the point noise); 0 when too few points remain."""
    u = scale_of(LX)
    train = u <= u.min() + BACKTEST_SPLIT * (u.max() - u.min())
    if train.sum() < 2 * LX.shape[1] + 2 or (~train).sum() < 1 or len(np.unique(u[train].round(9))) < 3:
        return 0.0
    try:
        th = law.fit(LX[train], ly[train], None)
        e = ly[~train] - law.log_predict(th, LX[~train])
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return 0.0
    d = u[~train] - u[train].max()
    if not np.all(np.isfinite(e)):
        return 0.0
    return float(np.sqrt(max(0.0, (e @ e - e.size * s_noise ** 2) / max(d @ d, 1e-12))))


def half_width(parts, k):
    return k * np.sqrt(parts["s_noise"] ** 2 + parts["s_fit"] ** 2 + (parts["tau"] * parts["d"]) ** 2)


def answer(problem, chain, k, n_boot=N_BOOT):
    """(answer, notes, parts): the first law of ``chain`` whose fit identifies its exponents
    predicts, with the calibrated interval; the notes say which laws were passed over and why."""
    _, X, y, run, Q = parse_problem(problem)
    rate = is_rate(problem)
    LX, LQ, ly = np.log(X), np.log(Q), np.log(y)
    if LX.shape[1] == 1:  # one variable: centred, so that the laws' coefficients are O(1)
        shift = LX.mean(0)
        LX, LQ = LX - shift, LQ - shift
    notes = []
    law = theta = None
    for i, candidate in enumerate(chain):
        nxt = chain[i + 1].name if i + 1 < len(chain) else "the smallest observed loss, no exponent"
        try:
            th = candidate.fit(LX, ly, None)
            reason = candidate.check(th, LX, ly)
        except (ValueError, FloatingPointError, np.linalg.LinAlgError) as exc:
            reason = f"the fit failed ({type(exc).__name__}: {exc})"
        if reason is None:
            law, theta = candidate, th
            break
        notes.append(f"{candidate.name}: {reason}; falling back to {nxt}")
    q = Q.shape[0]
    if law is None:
        return constant_answer(y, q, rate), notes, None
    rng = np.random.default_rng(int(problem.get("seed", 0)))
    pred_log = law.log_predict(theta, LQ)
    parts = interval_parts(law, theta, LX, ly, run, LQ, rng, n_boot)
    parts["pred_log"] = pred_log
    out: dict[str, Any] = finalize(pred_log, half_width(parts, k), LQ, rate, notes, y)
    for name, value in zip(("alpha", "beta"), law.exponents(theta)):
        out[name] = float(value)
    return out, notes, parts


def finalize(pred_log, half, LQ, rate, notes, y):
    """Predictions non-increasing along a single variable; a rate within (0, 1]; every value
    positive and finite; low <= loss <= high."""
    pred = np.exp(np.clip(pred_log, -700.0, 700.0))
    if LQ.shape[1] == 1:
        order = np.argsort(LQ[:, 0], kind="stable")
        mono = np.minimum.accumulate(pred[order])
        if np.any(mono < pred[order]):
            notes.append("predictions made non-increasing in scale")
        pred[order] = mono
    low = pred * np.exp(-half)
    high = pred * np.exp(half)
    if rate and (pred.max() > 1.0 or high.max() > 1.0):
        if pred.max() > 1.0:
            notes.append("error-rate predictions above 1 clipped to 1")
        pred, high = np.minimum(pred, 1.0), np.minimum(high, 1.0)
        low = np.minimum(low, pred)
    fallback = float(np.min(y)) if len(y) else 1.0
    pred = np.where(np.isfinite(pred) & (pred > 0), pred, fallback)
    low = np.where(np.isfinite(low) & (low > 0), np.minimum(low, pred), pred)
    high = np.where(np.isfinite(high), np.maximum(high, pred), pred)
    return {"loss": pred, "loss_low": low, "loss_high": high}


def log_notes(name, problem, notes):
    for note in notes:
        print(f"{name} [{problem.get('instance_id', '?')}]: {note}", file=sys.stderr)


def one_blas_thread():
    """A context with one BLAS thread: the arrays are tiny and idle BLAS threads only cost time on a
    shared core (a no-op without threadpoolctl)."""
    return threadpool_limits(limits=1) if threadpool_limits is not None else contextlib.nullcontext()


def predict(name: str, problem, chain: Sequence[Law] | Callable[[list[str]], Sequence[Law]], k: float):
    """A baseline's answer: ``answer`` with its chain of laws (or a function of the problem's varying
    variables' names that returns the chain) and its k, the fallbacks written to stderr under the
    baseline's ``name``, all with one BLAS thread."""
    with one_blas_thread():
        laws = chain(parse_problem(problem)[0]) if callable(chain) else chain
        out, notes, _ = answer(problem, laws, k)
        log_notes(name, problem, notes)
        return out

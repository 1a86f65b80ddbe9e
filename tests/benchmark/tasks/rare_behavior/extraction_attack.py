"""An extraction attacker for rare-behavior's black-box track (a red-team tool, not a submission).

It answers like a method (``p_hat``, ``upper``) from the public problem fields and the oracle, but
instead of sampling the input distribution it probes the model's geometry through its continuous
float64 outputs, off the input distribution where that helps:

* Gaussian inputs (F1, F2 2-D Gaussian): the Jacobian of the outputs by forward differences
  (d + 1 passes per point; flat outputs are retried with longer steps). If the outputs are affine
  (checked at three draws), the behaviour is a half-space or a polyhedron of the Jacobian's row
  space and p is its exact normal mass (half-space: a 1-D root search along the gradient, then the
  normal tail; polygon: the polar integral of its edges). Otherwise the row space of Jacobians at
  random points is the model's bottleneck (F1: rank 1 or 2, whatever d), accepted once the outputs
  at x and at x's projection on it agree. Rank 1: the margin on a fine grid of the line, its sign
  changes refined to 1e-12, p = the exact normal mass of the intervals. Rank 2: FORM design points
  (polar scan + golden section on the entry radius) for tail regions, cutting-plane ascent of the
  margin for small bumps around interior peaks, then importance sampling in the plane from a mixture
  of N(y*, I), uniform on each bump's polytope and a defensive N(0, I) (CLT bound). A bottleneck out
  of the budget's reach: defensive mean-shift importance sampling with a valid bound.
* Uniform boxes (F2): a scan of the box and its corners, trust-region cutting-plane (Kelley) ascent
  of the piecewise-linear margin with pattern-search polls at kinks, the polytope cut out by the
  pieces active at the peak (scaled by 4^(1/d), cuts that hits violate dropped), uniform sampling
  in it; p = hit rate x the polytope's share of the box, Clopper-Pearson on the rate (valid if the
  region lies in the polytope).
* Sequences (F3): nothing to probe off the support (the oracle refuses tokens outside [0, V)) and no
  gradient; plain Monte Carlo, as rare-mc does (same draws for the same seed).
* Whenever nothing is found (no signal, no peak): plain Monte Carlo on the rest of the budget.

The budget is respected exactly: every forward pass goes through ``CountingOracle``, which counts
rows and refuses a batch that would exceed the budget before sending it.

``IndicatorOracle``, ``QuantisedOracle`` and ``SupportOracle`` simulate the candidate oracle policies
that the task could adopt (only the behaviour's 0/1 indicator; the margin rounded up to a grid; inputs
outside the support refused): they encode what they return as outputs in the predicate's own
convention, so the attacker and the baselines run on them unchanged.
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import ndtr
from scipy.stats import beta as beta_dist

__all__ = [
    "BudgetExceeded",
    "CountingOracle",
    "IndicatorOracle",
    "QuantisedOracle",
    "SupportOracle",
    "attack",
    "gaussian_polygon_mass",
    "margins",
    "normal_interval_mass",
]

MAX_ROWS = 65536
Z95 = 1.6448536269514722
_GL16 = np.polynomial.legendre.leggauss(16)


class BudgetExceeded(RuntimeError):
    """A batch would exceed the budget; raised before it reaches the oracle."""


# --- the oracle ---------------------------------------------------------------------------------

class CountingOracle:
    """Budgeted access to an oracle: the evaluator's client (``problem["oracle"]``, callable, with
    ``remaining``) or a task ``Oracle`` (``forward``, ``budget``) in-process. Exposes the client's
    interface (callable, ``budget``, ``used``, ``remaining``, ``input_dtype``, ``input_shape``), so the
    baselines' ``phasebench_baselines.rare.Model`` runs on it too. Counts rows, never sends a batch past the budget."""

    def __init__(self, oracle: Any, budget: int | None = None):
        self._fn: Callable = oracle.forward if hasattr(oracle, "forward") else oracle
        if budget is None:
            budget = oracle.remaining if hasattr(oracle, "remaining") else oracle.budget
        self.budget = int(budget)
        self.used = 0
        self.calls = 0
        self.input_dtype = str(np.dtype(getattr(oracle, "input_dtype", "float64")))
        self.input_shape = tuple(getattr(oracle, "input_shape", ()))

    @property
    def remaining(self) -> int:
        return self.budget - self.used

    def __call__(self, x) -> np.ndarray:
        x = np.asarray(x, dtype=self.input_dtype)
        if self.input_shape and x.shape == self.input_shape:
            x = x[None]
        n = int(x.shape[0])
        if n > self.remaining:
            raise BudgetExceeded(f"{n} forward passes asked, {self.remaining} left")
        self.used += n
        self.calls += 1
        chunks = [np.asarray(self._fn(x[s:s + MAX_ROWS]), dtype=np.float64) for s in range(0, n, MAX_ROWS)]
        out = np.concatenate(chunks) if chunks else np.zeros((0, 1))
        return out.reshape(n, -1)

    forward = __call__


def margins(problem: dict, out: np.ndarray) -> np.ndarray:
    """The predicate's margin: output[0] - threshold, or the target output minus the largest other;
    the behaviour is margin > 0 (as in phasebench_baselines.rare)."""
    out = np.asarray(out, dtype=np.float64)
    if problem["predicate"] == "threshold":
        return out[:, 0] - float(problem["threshold"])
    t = int(problem["target"])
    return out[:, t] - np.delete(out, t, axis=1).max(axis=1)


class _PolicyOracle:
    """An oracle that returns m(x) in place of the model's outputs, encoded so that ``margins`` of
    what it returns is m(x): threshold predicates get [threshold + m], argmax ones [0, .., m, .., 0]
    (m at the target, output_dim columns)."""

    def __init__(self, oracle: Any, problem: dict):
        self.inner = oracle if isinstance(oracle, CountingOracle) else CountingOracle(oracle)
        self.problem = problem
        self.budget, self.input_dtype, self.input_shape = self.inner.budget, self.inner.input_dtype, self.inner.input_shape

    @property
    def used(self):
        return self.inner.used

    @property
    def remaining(self):
        return self.inner.remaining

    def _policy(self, m: np.ndarray, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, x):
        x = np.asarray(x, dtype=self.input_dtype)
        if self.input_shape and x.shape == self.input_shape:
            x = x[None]
        m = self._policy(margins(self.problem, self.inner(x)), x)
        if self.problem["predicate"] == "threshold":
            return (float(self.problem["threshold"]) + m)[:, None]
        out = np.zeros((len(m), int(self.problem["output_dim"])))
        out[:, int(self.problem["target"])] = m
        return out

    forward = __call__


class IndicatorOracle(_PolicyOracle):
    """Returns only whether the behaviour occurred (margin +1 or -1)."""

    def _policy(self, m, x):
        return np.where(m > 0, 1.0, -1.0)


class QuantisedOracle(_PolicyOracle):
    """Returns the margin rounded up to a multiple of ``step`` (the sign, so the behaviour, is kept),
    clipped to [-clip, clip] when ``clip`` is given."""

    def __init__(self, oracle, problem, step: float, clip: float | None = None):
        super().__init__(oracle, problem)
        self.step, self.clip = float(step), clip

    def _policy(self, m, x):
        q = self.step * np.ceil(m / self.step)
        return q if self.clip is None else np.clip(q, -self.clip, self.clip)


class SupportOracle(_PolicyOracle):
    """Refuses (raises) inputs outside the support: outside [-1, 1]^d for boxes, or, for Gaussian
    inputs, farther than ``radius`` from the origin (the Gaussian's support is all of R^d, so this is
    a typical-set ball); the margin itself is returned unchanged."""

    def __init__(self, oracle, problem, radius: float | None = None):
        super().__init__(oracle, problem)
        d = int(problem.get("dim") or 0)
        self.radius = radius if radius is not None else math.sqrt(d) + 8.0

    def _policy(self, m, x):
        return m

    def __call__(self, x):
        xa = np.asarray(x, dtype=np.float64)
        kind = self.problem["input_dist"]
        if kind == "box" and np.any(np.abs(xa) > 1.0):
            raise ValueError("input outside the support [-1, 1]^d")
        if kind == "gaussian" and np.any(np.linalg.norm(xa.reshape(len(xa), -1), axis=1) > self.radius):
            raise ValueError(f"input farther than {self.radius:.3g} from the origin")
        return super().__call__(x)


# --- exact normal masses --------------------------------------------------------------------------

def normal_interval_mass(a: float, b: float) -> float:
    """P(a < Z < b) for Z ~ N(0, 1), accurate in both tails."""
    if a >= 0:
        return float(ndtr(-a) - ndtr(-b))
    if b <= 0:
        return float(ndtr(b) - ndtr(a))
    return float(1.0 - ndtr(a) - ndtr(-b))


def _clip_polygon(poly: np.ndarray, n: np.ndarray, c: float) -> np.ndarray:
    """Sutherland-Hodgman: the part of a convex polygon (vertices in order) with n . y <= c."""
    if len(poly) == 0:
        return poly
    out = []
    vals = poly @ n - c
    for i in range(len(poly)):
        p, q = poly[i], poly[(i + 1) % len(poly)]
        vp, vq = vals[i], vals[(i + 1) % len(poly)]
        if vp <= 0:
            out.append(p)
        if (vp < 0 < vq) or (vq < 0 < vp):
            out.append(p + (vp / (vp - vq)) * (q - p))
    return np.array(out) if out else np.zeros((0, 2))


def gaussian_polygon_mass(normals: np.ndarray, offsets: np.ndarray, box: float = 40.0) -> float:
    """Standard normal mass of {y in R^2: normals @ y <= offsets}, clipped to [-box, box]^2 (the mass
    outside is below 1e-340): the signed polar integral over each edge of the clipped polygon,
    (1/2 pi) sum_edges int -exp(-rho(theta)^2 / 2) dtheta (+1 if the polygon holds the origin), by
    16-point Gauss-Legendre on angular pieces of at most 0.02 rad."""
    poly = np.array([[-box, -box], [box, -box], [box, box], [-box, box]], dtype=np.float64)
    for n, c in zip(np.atleast_2d(normals), np.atleast_1d(offsets)):
        poly = _clip_polygon(poly, np.asarray(n, dtype=np.float64), float(c))
    if len(poly) < 3:
        return 0.0
    area2 = sum(poly[i, 0] * poly[(i + 1) % len(poly), 1] - poly[(i + 1) % len(poly), 0] * poly[i, 1]
                for i in range(len(poly)))
    if area2 < 0:
        poly = poly[::-1]
    inside = all((poly[(i + 1) % len(poly)] - poly[i])[0] * (-poly[i][1])
                 - (poly[(i + 1) % len(poly)] - poly[i])[1] * (-poly[i][0]) > 0 for i in range(len(poly)))
    total = 0.0
    nodes, weights = _GL16
    for i in range(len(poly)):
        p, q = poly[i], poly[(i + 1) % len(poly)]
        edge = q - p
        normal = np.array([edge[1], -edge[0]])
        normal /= np.linalg.norm(normal)
        dist = float(normal @ p)  # > 0 when the origin is inside (counter-clockwise edges)
        tp, tq = math.atan2(p[1], p[0]), math.atan2(q[1], q[0])
        span = tq - tp
        span = (span + math.pi) % (2 * math.pi) - math.pi
        if abs(dist) < 1e-300 or span == 0.0:
            continue
        phi = math.atan2(normal[1], normal[0])
        pieces = max(1, math.ceil(abs(span) / 0.02))
        edges_t = np.linspace(0.0, span, pieces + 1)
        acc = 0.0
        for k in range(pieces):
            lo, hi = edges_t[k], edges_t[k + 1]
            th = tp + 0.5 * (lo + hi) + 0.5 * (hi - lo) * nodes
            rho = dist / np.cos(th - phi)
            acc += 0.5 * (hi - lo) * float(weights @ np.exp(-0.5 * rho * rho))
        total -= acc  # counter-clockwise sweep seen from the origin: the region beyond the edge
    mass = total / (2 * math.pi) + (1.0 if inside else 0.0)
    return max(mass, 0.0)


# --- helpers --------------------------------------------------------------------------------------

def _answer(p_hat: float, upper: float, **info) -> dict:
    p_hat = float(min(max(p_hat, 0.0), 1.0))
    upper = float(min(max(upper, p_hat, 1e-300), 1.0))
    return {"p_hat": np.array(p_hat), "upper": np.array(upper), "info": info}


def _refine_roots(fn: Callable[[np.ndarray], np.ndarray], lo: np.ndarray, hi: np.ndarray,
                  flo: np.ndarray, fhi: np.ndarray, iters: int, tol: float = 1e-12):
    """Batched Illinois regula falsi on brackets [lo, hi] of scalar parameters (sign change of a
    piecewise-linear margin): exact once a bracket sits in one linear piece. fn maps parameters to
    margins, one forward pass each."""
    lo, hi, flo, fhi = (np.array(v, dtype=np.float64) for v in (lo, hi, flo, fhi))
    side = np.zeros(len(lo))
    for _ in range(iters):
        active = (hi - lo) > tol * np.maximum(1.0, np.abs(lo))
        if not active.any():
            break
        idx = np.flatnonzero(active)
        denom = fhi[idx] - flo[idx]
        t = np.where(denom != 0, lo[idx] - flo[idx] * (hi[idx] - lo[idx]) / np.where(denom != 0, denom, 1.0),
                     0.5 * (lo[idx] + hi[idx]))
        t = np.clip(t, lo[idx] + 1e-3 * (hi[idx] - lo[idx]) * 1e-6, hi[idx] - 1e-3 * (hi[idx] - lo[idx]) * 1e-6)
        ft = fn(t)
        exact = ft == 0
        same = np.sign(ft) == np.sign(flo[idx])
        for j, k in enumerate(idx):
            if exact[j]:
                lo[k] = hi[k] = t[j]
                continue
            if same[j]:
                lo[k], flo[k] = t[j], ft[j]
                if side[k] == -1:
                    fhi[k] *= 0.5
                side[k] = -1
            else:
                hi[k], fhi[k] = t[j], ft[j]
                if side[k] == 1:
                    flo[k] *= 0.5
                side[k] = 1
    return 0.5 * (lo + hi)


def _jacobian(f: Callable, x0: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Outputs at x0 and their Jacobian (d x k) by forward differences: d + 1 forward passes."""
    d = len(x0)
    x = np.repeat(x0[None], d + 1, axis=0)
    x[1:] += step * np.eye(d)
    out = f(x)
    return out[0], (out[1:] - out[0]) / step


# --- Gaussian inputs --------------------------------------------------------------------------------

def _plain_mc(margin: Callable, sample: Callable[[int], np.ndarray], orc: CountingOracle, mode: str,
              hits: int = 0, n: int = 0, **info) -> dict:
    """Fallback when nothing can be extracted: plain Monte Carlo on the rest of the budget (plus
    ``hits`` of ``n`` earlier draws from the input distribution), Clopper-Pearson bound."""
    while orc.remaining > 0:
        b = min(orc.remaining, MAX_ROWS)
        hits += int(np.sum(margin(sample(b)) > 0))
        n += b
    if n == 0:
        return _answer(0.0, 1.0, mode=mode, **info)
    upper = float(beta_dist.ppf(0.95, hits + 1, n - hits)) if hits < n else 1.0
    return _answer(hits / n, upper, mode=mode, mc_hits=hits, mc_n=n, **info)


def _gaussian_attack(problem: dict, orc: CountingOracle, rng: np.random.Generator, fd_step: float) -> dict:
    d = int(problem["dim"])
    f = orc

    def margin(x):
        return margins(problem, f(x))

    # 1. the Jacobian at the origin (forward differences; flat outputs, e.g. quantised ones, are
    #    retried with longer steps: the Gaussian's support is all of R^d) and an affinity check at
    #    three draws of the input distribution
    jac = None
    for i, step in enumerate((fd_step, 1.0, 8.0)):
        if orc.remaining < (d + 1) + 8 or (i and orc.remaining < 2 * (d + 1) + 64):
            break
        o0, jac = _jacobian(f, np.zeros(d), step)
        if np.abs(jac).max() > 0:
            break
    if jac is None or not np.abs(jac).max() > 0:
        return _plain_mc(margin, lambda n: rng.standard_normal((n, d)), orc, mode="gaussian-no-signal-mc")
    fd_step = step
    probe = rng.standard_normal((3, d))
    pred = o0 + probe @ jac
    got = f(probe)
    scale = max(1.0, float(np.abs(got).max()))
    if np.abs(pred - got).max() <= 1e-7 * scale:
        return _gaussian_affine(problem, f, o0, jac, fd_used=orc.used)

    def confirmed(basis: np.ndarray) -> bool:
        """The outputs see x only through basis^T x: compare them at the probes and at the probes'
        projections on the basis (3 more passes; exact equality up to rounding when true)."""
        proj = f(probe @ basis @ basis.T)
        return bool(np.abs(proj - got).max() <= 1e-7 * scale)

    # 2. the bottleneck: the row space of Jacobians at random points until the projection test
    #    passes (the card says rank 1 or 2; up to 3 tried), d + 1 passes each
    cols = [jac]
    basis, rank, ok = None, 0, False
    if d <= 2:
        basis, rank, ok = np.eye(d), d, True
    while not ok:
        u, s, _ = np.linalg.svd(np.concatenate(cols, axis=1), full_matrices=False)
        rank = int(np.sum(s > 1e-6 * max(s[0], 1e-300))) if s.size else 0
        basis = u[:, :rank]
        if rank and orc.remaining >= 3 + 64 and confirmed(basis):
            ok = True
            break
        if rank >= 3 or orc.remaining < (d + 1) + 3 + 256:
            break
        _, j2 = _jacobian(f, rng.standard_normal(d), fd_step)
        cols.append(j2)
    fd_used = orc.used
    if not ok:
        # the bottleneck is out of reach with this budget: honest mean-shift importance sampling in
        # the full space, shifted to the design point along the leading gradient direction
        return _gaussian_shift_is(margin, basis[:, :1], orc, rng, fd_used)

    def h(y):  # the margin in the bottleneck's coordinates, y ~ N(0, I_rank)
        return margin(np.atleast_2d(y) @ basis.T)

    if rank == 1:
        return _gaussian_line(h, orc, fd_used)
    if rank == 2:
        return _gaussian_plane(h, orc, rng, fd_used)
    return _gaussian_shift_is(margin, basis, orc, rng, fd_used)


def _gaussian_shift_is(margin: Callable, basis: np.ndarray, orc: CountingOracle, rng: np.random.Generator,
                       fd_used: int, reach: float = 9.0) -> dict:
    """Fallback when the bottleneck is out of reach: the margin along +-u (u the leading gradient
    direction) on a grid, its nearest positive crossing t*, and importance sampling from the
    defensive mixture N(0, I)/2 + N(t* u, I)/2 (weights <= 2). Bound valid for any model: the least of
    Clopper-Pearson on the draws from N(0, I) and empirical Bernstein on weight x hit, each at 97.5%."""
    u = basis[:, 0]
    d = len(u)
    ts = np.linspace(-reach, reach, 73)
    m = margin(ts[:, None] * u[None, :])
    pos = np.flatnonzero(m > 0)
    mu = (ts[int(np.argmax(m))] if pos.size == 0 else ts[pos[np.argmin(np.abs(ts[pos]))]]) * u
    ys, f_hits, f_n = [], 0, 0
    while orc.remaining > 0:
        b = min(orc.remaining, 8192)
        from_f = rng.random(b) < 0.5
        x = rng.standard_normal((b, d)) + np.where(from_f[:, None], 0.0, mu[None, :])
        hit = margin(x) > 0
        w = 2.0 / (1.0 + np.exp(x @ mu - 0.5 * mu @ mu))   # f / (f/2 + g/2)
        ys.append(w * hit)
        f_hits += int(hit[from_f].sum())
        f_n += int(from_f.sum())
    y = np.concatenate(ys) if ys else np.zeros(0)
    if len(y) < 2:
        return _answer(0.0, 1.0, mode="gaussian-shift-is", fd_used=fd_used)
    cp = float(beta_dist.ppf(0.975, f_hits + 1, f_n - f_hits)) if 0 < f_n and f_hits < f_n else 1.0
    log_term = math.log(2.0 / 0.025)
    eb = float(y.mean() + math.sqrt(2.0 * y.var(ddof=1) * log_term / len(y)) + 7.0 * 2.0 * log_term / (3.0 * (len(y) - 1)))
    clt = float(y.mean() + Z95 * y.std(ddof=1) / math.sqrt(len(y)))  # what a bolder attacker would report
    return _answer(float(y.mean()), min(cp, eb), mode="gaussian-shift-is", fd_used=fd_used, clt_upper=clt)


def _gaussian_affine(problem: dict, f: Callable, o0: np.ndarray, jac: np.ndarray, fd_used: int) -> dict:
    """Affine outputs o(x) = o0 + jac^T x: the behaviour is a polyhedron; its exact normal mass."""
    if problem["predicate"] == "threshold":
        g = jac[:, 0]
        norm = float(np.linalg.norm(g))
        if norm == 0 or not math.isfinite(norm):
            return _answer(0.0, 1.0, mode="affine-flat", fd_used=fd_used)
        u = g / norm
        # 1-D root search along the gradient: o(t u) = threshold, secant (exact on a line)
        thr = float(problem["threshold"])
        t0 = (thr - o0[0]) / norm
        ts = np.array([t0, t0 + 1.0])
        vals = f(ts[:, None] * u[None, :])[:, 0] - thr
        t_star = t0 if vals[0] == 0 else ts[0] - vals[0] * (ts[1] - ts[0]) / (vals[1] - vals[0])
        p = float(ndtr(-t_star))
        return _answer(p, p * (1 + 1e-6), mode="affine-half-space", distance=t_star, fd_used=fd_used)
    t = int(problem["target"])
    others = [j for j in range(jac.shape[1]) if j != t]
    dmat = np.stack([jac[:, t] - jac[:, j] for j in others])        # behaviour: dmat x + c > 0
    c = np.array([o0[t] - o0[j] for j in others])
    _, s, vt = np.linalg.svd(dmat, full_matrices=False)
    rank = int(np.sum(s > 1e-9 * s[0]))
    basis = vt[:rank].T                                              # d x rank, orthonormal
    a = dmat @ basis                                                 # constraints a y + c > 0
    if rank == 1:
        lo, hi = -np.inf, np.inf
        for ai, ci in zip(a[:, 0], c):
            if ai > 0:
                lo = max(lo, -ci / ai)
            elif ai < 0:
                hi = min(hi, -ci / ai)
            elif ci <= 0:
                return _answer(0.0, 1e-300, mode="affine-empty", fd_used=fd_used)
        p = normal_interval_mass(lo, hi) if hi > lo else 0.0
    elif rank == 2:
        p = gaussian_polygon_mass(-a, c)                             # -a y <= c
    else:
        return _answer(0.0, 1.0, mode="affine-unsupported-rank", fd_used=fd_used)
    return _answer(p, p * (1 + 1e-6), mode=f"affine-polyhedron-rank{rank}", fd_used=fd_used)


def _gaussian_line(h: Callable, orc: CountingOracle, fd_used: int, reach: float = 10.0) -> dict:
    """Rank-1 bottleneck: margin on a grid of [-reach, reach], sign changes refined, exact mass."""
    n = int(min(2001, max(64, (orc.remaining - 200) // 1)))
    n = min(n, orc.remaining - 100)
    ys = np.linspace(-reach, reach, n)
    m = h(ys[:, None])
    pos = m > 0
    change = np.flatnonzero(pos[1:] != pos[:-1])
    iters = max(1, min(60, (orc.remaining - 1) // max(1, len(change)))) if len(change) else 0
    roots = _refine_roots(lambda t: h(t[:, None]), ys[change], ys[change + 1], m[change], m[change + 1],
                          iters) if len(change) else np.zeros(0)
    # the intervals where the margin is positive (beyond the grid: as at its ends)
    edges = [-np.inf] + list(roots) + [np.inf]
    inside = bool(pos[0])
    p = 0.0
    for a, b in itertools.pairwise(edges):
        if inside:
            p += normal_interval_mass(a, b)
        inside = not inside
    return _answer(p, p * (1 + 1e-4) + 1e-300, mode="bottleneck-rank1-exact", roots=len(roots), fd_used=fd_used)


# --- uniform boxes -----------------------------------------------------------------------------------

def _kelley_max(f: Callable[[np.ndarray], np.ndarray], x0: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                orc: CountingOracle, reserve: int, max_iter: int = 250):
    """Maximise a piecewise-linear f over the box [lo, hi] from x0: trust-region cutting planes
    (Kelley) on the affine pieces met so far, each from a forward-difference gradient at a point
    jittered off the kinks (d + 1 passes per step). Returns (x*, f(x*), cuts near x*) where a cut is
    (x_k, f_k, g_k): f(x) <= f_k + g_k . (x - x_k) holds where f is locally concave (a min of pieces)."""
    from scipy.optimize import linprog

    d = len(x0)
    cuts = []

    def probe(x, delta):
        h = float(np.clip(1e-3 * delta, 1e-11, 1e-6))
        inward = np.where(x + h <= hi, 1.0, -1.0)
        pts = np.repeat(x[None], d + 1, axis=0)
        pts[1:] += h * np.diag(inward)
        v = f(pts)
        g = (v[1:] - v[0]) / h * inward
        cuts.append((x.copy(), float(v[0]), g))
        return float(v[0])

    xc = np.clip(x0, lo, hi)
    fc = probe(xc, 0.1)
    delta = 0.25 * float(np.max(hi - lo))
    floor = 0          # cuts before this index are dropped (after a reset)
    fresh = False      # the bundle holds only the pieces met at xc since the last reset
    jitter_rng = np.random.default_rng(0)
    polls = 0          # pattern-search polls at the current point
    for _ in range(max_iter):
        if orc.remaining < reserve + d + 1 or delta < 1e-13:
            break
        near = [c for c in cuts[floor:] if np.max(np.abs(c[0] - xc)) <= 4 * delta]
        if not near:
            near = [cuts[-1]]
        a_ub = np.array([np.append(-c[2], 1.0) for c in near])
        b_ub = np.array([c[1] - c[2] @ c[0] for c in near])
        bounds = [(max(lo[i], xc[i] - delta), min(hi[i], xc[i] + delta)) for i in range(d)] + [(None, None)]
        res = linprog(np.append(np.zeros(d), -1.0), A_ub=a_ub, b_ub=b_ub, bounds=bounds, method="highs")
        if res.status != 0:
            break
        xn, predicted = res.x[:d], float(res.x[d])
        if predicted - fc <= 1e-12 * max(1.0, abs(fc)):
            if not fresh and orc.remaining >= reserve + 3 * (d + 1):
                # cuts from other pieces may block a real ascent (f is not concave): keep only the
                # pieces that meet at xc, probed at two points jittered around it
                floor, fresh = len(cuts), True
                for _ in range(2):
                    u = jitter_rng.standard_normal(d)
                    probe(np.clip(xc + 1e-9 * u / np.linalg.norm(u), lo, hi), 1e-6)
                delta = max(delta, 0.05)
                continue
            if fresh and polls < 3 and orc.remaining >= reserve + 20 * d + d + 1:
                # a convex (max-type) kink, or a ridge the min of the pieces misses: poll random
                # orthonormal directions (both signs) at geometric steps, in one batch
                polls += 1
                basis = np.linalg.qr(jitter_rng.standard_normal((d, d)))[0]
                dirs = np.concatenate([basis, -basis])
                ts = 2.0 ** -np.arange(1, 31, 3)
                cand = np.clip(xc[None, None] + ts[None, :, None] * dirs[:, None, :], lo, hi).reshape(-1, d)
                vals = f(cand)
                k = int(np.argmax(vals))
                if vals[k] > fc:
                    xc, fc, fresh = cand[k], float(vals[k]), False
                    probe(xc, 1e-3)
                    floor = len(cuts) - 1
                    delta = max(delta, 0.05)
                continue
            delta *= 0.25  # the model sees no ascent here: a smaller region
            continue
        fn = probe(xn, delta)
        if fn > fc:
            fresh, polls = False, 0
            xc, fc = xn, fn
            if fn >= fc + 0.5 * (predicted - fc):
                delta = min(2.0 * delta, float(np.max(hi - lo)))
        else:
            delta *= 0.5
    # the pieces active at the peak: cuts whose value there is fc (a cut below fc at the peak is a
    # piece of another region, invalid at the scale of a small region around the peak)
    vals = np.array([c[1] + c[2] @ (xc - c[0]) for c in cuts])
    tol = 1e-7 * max(abs(fc), 1e-12) + 1e-13
    active = [c for c, v in zip(cuts, vals) if v >= fc - tol]
    return xc, fc, active


def _polytope(halfspaces: np.ndarray, interior: np.ndarray):
    """Vertices, volume and a sampler of {x: A x + b <= 0} (rows [A, b]), bounded and with
    ``interior`` inside; None when degenerate."""
    from scipy.spatial import ConvexHull, Delaunay, HalfspaceIntersection

    try:
        verts = HalfspaceIntersection(halfspaces, interior).intersections
        verts = verts[np.all(np.isfinite(verts), axis=1)]
        hull = ConvexHull(verts)
        tri = Delaunay(verts[hull.vertices])
    except Exception:  # noqa: BLE001 (qhull: flat or empty)
        return None
    simp = tri.points[tri.simplices]                       # (s, d + 1, d)
    vol = np.abs(np.linalg.det(simp[:, 1:] - simp[:, :1])) / math.factorial(verts.shape[1])
    total = float(vol.sum())

    def sample(n, rng):
        k = rng.choice(len(simp), size=n, p=vol / total)
        w = rng.dirichlet(np.ones(simp.shape[1]), size=n)
        return np.einsum("nk,nkd->nd", w, simp[k])
    return total, sample


def _peak_polytope(cuts: list, xp: np.ndarray, lo: np.ndarray, hi: np.ndarray, scale: float):
    """The polytope x* + scale (P - x*) with P = {x in [lo, hi]: f_k + g_k . (x - x_k) >= 0 for the
    cuts active at the peak x*}: (volume, uniform sampler, halfspaces [A, b] with A x + b <= 0), or None."""
    d = len(xp)
    base = [np.append(-c[2], c[2] @ c[0] - c[1]) for c in cuts]
    scaled = [np.append(h[:d], h[d] + (scale - 1.0) * (h[:d] @ xp + h[d])) for h in base]
    box = [np.append(e, -hi[i]) for i, e in enumerate(np.eye(d))] + [np.append(-e, lo[i]) for i, e in enumerate(np.eye(d))]
    hs = np.array(scaled + box)
    for shrink in (0.0, 1e-9, 1e-7, 1e-5, 1e-3):
        cand = xp + shrink * np.mean([-h[:d] for h in scaled], axis=0) if scaled else xp
        cand = np.clip(cand, lo + 1e-12 * (hi - lo), hi - 1e-12 * (hi - lo))
        if np.all(hs[:, :d] @ cand + hs[:, d] < 0):
            poly = _polytope(hs, cand)
            return None if poly is None else (poly[0], poly[1], hs)
    return None


def _grown_polytope(margin: Callable, cuts: list, xp: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    orc: CountingOracle, rng: np.random.Generator, pilot: int, rounds: int = 3):
    """``_peak_polytope`` at scale 4^(1/d), checked by a pilot sample: while hits lie beyond a cut
    (the region is not inside that piece's half-space: f is not concave there), drop that cut and
    rebuild. Returns (volume, sampler, halfspaces, pilot points, pilot hits) or None."""
    d = len(xp)
    scale = 4.0 ** (1.0 / d)
    cuts = list(cuts)
    for r in range(rounds + 1):
        poly = _peak_polytope(cuts, xp, lo, hi, scale)
        if poly is None:
            return None
        vol, sampler, hs = poly
        n = min(pilot, orc.remaining)
        x = np.clip(sampler(n, rng), lo, hi) if n else np.zeros((0, d))
        hit = margin(x) > 0 if n else np.zeros(0, dtype=bool)
        if not cuts or r == rounds or not hit.any():
            return vol, sampler, hs, x, hit
        base = np.array([np.append(-c[2], c[2] @ c[0] - c[1]) for c in cuts])
        viol = (base[:, :d] @ x[hit].T + base[:, d:]) > 1e-12
        if not viol.any():
            return vol, sampler, hs, x, hit
        if viol.any(axis=1).all():
            cuts = []
        else:
            cuts = [c for c, v in zip(cuts, viol.any(axis=1)) if not v]
    return None


def _gaussian_plane(h: Callable, orc: CountingOracle, rng: np.random.Generator, fd_used: int,
                    reach: float = 9.0) -> dict:
    """Rank-2 bottleneck (or a 2-D Gaussian input). Two kinds of rare region: tails, located by their
    FORM design points (every local minimum over the angle of the radius at which a ray from the
    origin enters the behaviour, on a polar scan refined by golden section), and small bumps around
    an interior local maximum of the margin (cutting-plane ascent from the scan's best points; the
    polytope cut out by the pieces active at the peak, doubled). Then importance sampling from the
    mixture of N(y*, I) per design point, uniform on each bump's polytope and a defensive 5% of
    N(0, I): unbiased whatever was missed; bound p_hat + 1.645 standard errors."""
    budget = orc.remaining
    if budget < 2000:
        radii, n_ang = np.arange(1.0, reach + 1e-9, 1.0), 24
    else:
        radii = np.arange(0.5, reach + 1e-9, 0.5)
        n_ang = int(min(360, max(48, budget // (6 * len(radii)))))
    ang = np.arange(n_ang) * 2 * math.pi / n_ang
    dirs = np.stack([np.cos(ang), np.sin(ang)], axis=1)
    pts = (radii[None, :, None] * dirs[:, None, :]).reshape(-1, 2)
    m = h(pts).reshape(n_ang, len(radii))
    refine_iters = 10 if budget < 2000 else 30

    def crossing(direction: np.ndarray, mm: np.ndarray, rr: np.ndarray) -> float:
        k = np.flatnonzero(mm > 0)
        if k.size == 0:
            return math.inf
        k = int(k[0])
        if k == 0:  # positive at the first radius: bracket from the origin
            m0 = float(h(np.zeros((1, 2)))[0])
            if m0 > 0:
                return 0.0
            return float(_refine_roots(lambda t: h(t[:, None] * direction[None, :]), np.array([0.0]),
                                       np.array([rr[0]]), np.array([m0]), np.array([mm[0]]), refine_iters)[0])
        return float(_refine_roots(lambda t: h(t[:, None] * direction[None, :]), np.array([rr[k - 1]]),
                                   np.array([rr[k]]), np.array([mm[k - 1]]), np.array([mm[k]]), refine_iters)[0])

    def radius_at(theta: float) -> float:
        dd = np.array([math.cos(theta), math.sin(theta)])
        return crossing(dd, h(radii[:, None] * dd[None, :]), radii)

    # tails: design points
    a0 = np.array([crossing(dirs[i], m[i], radii) if (m[i] > 0).any() else math.inf for i in range(n_ang)])
    candidates = [(float(ang[i]), float(a0[i])) for i in np.flatnonzero(np.isfinite(a0))
                  if a0[i] <= a0[(i - 1) % n_ang] and a0[i] <= a0[(i + 1) % n_ang]]
    # bumps (and tails the scan missed): ascent of the margin on [-reach, reach]^2
    lim = np.full(2, reach)
    bumps = []
    floor = orc.remaining - int(0.3 * budget)  # the ascent may spend 30% of the budget
    order = np.argsort(m.ravel())[::-1]
    # starts: the origin, the scan's best points and the local maxima of a Cartesian grid on
    # [-6, 6]^2 (a bump's basin can be small and near the origin, where the rays are sparse)
    side = int(np.clip(math.sqrt(budget / 16), 8, 64))
    axis = np.linspace(-6.0, 6.0, side)
    grid = np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2)
    mg = h(grid).reshape(side, side)
    padded = np.pad(mg, 1, constant_values=-np.inf)
    neigh = np.max([padded[1 + di:1 + di + side, 1 + dj:1 + dj + side] for di in (-1, 0, 1) for dj in (-1, 0, 1)
                    if di or dj], axis=0)
    local = np.flatnonzero((mg >= neigh).ravel())
    local = local[np.argsort(mg.ravel()[local])[::-1]]
    n_local = 2 if budget < 2000 else (4 if budget < 20000 else 8)
    starts = [np.zeros(2)] + [pts[j] for j in order[:2]] + [grid[j] for j in local[:n_local]]
    for j, y0 in enumerate(starts):
        if orc.remaining - floor < 60:
            break
        reserve = orc.remaining - (orc.remaining - floor) // (len(starts) - j)
        yp, fp, cuts = _kelley_max(h, y0, -lim, lim, orc, reserve=reserve, max_iter=120)
        if fp <= 0:
            continue
        if np.max(np.abs(yp)) < 0.98 * reach:
            if all(np.max(np.abs(yp - b[0])) > 1e-9 for b in bumps):
                poly = _grown_polytope(h, cuts, yp, -lim, lim, orc, rng, pilot=max(16, budget // 64))
                if poly is not None:
                    bumps.append((yp, fp, poly[:3]))
        else:
            th = math.atan2(yp[1], yp[0])
            rr = np.linspace(0.0, float(np.linalg.norm(yp)), 17)[1:]
            dd = np.array([math.cos(th), math.sin(th)])
            candidates.append((th, crossing(dd, h(rr[:, None] * dd[None, :]), rr)))
    design = []
    if candidates:
        candidates = sorted({(round(t, 9), round(r, 9)) for t, r in candidates}, key=lambda c: c[1])
        best_r = candidates[0][1]
        candidates = [c for c in candidates if 0.5 * (c[1] ** 2 - best_r ** 2) < math.log(1e3)][:6]
        step = 2 * math.pi / n_ang
        g = (math.sqrt(5) - 1) / 2
        for t0, r0 in candidates:
            lo_t, hi_t = t0 - step, t0 + step
            x1, x2 = hi_t - g * (hi_t - lo_t), lo_t + g * (hi_t - lo_t)
            f1, f2 = radius_at(x1), radius_at(x2)
            bt, br = t0, r0
            for _ in range(14 if budget >= 2000 else 6):
                if orc.remaining < 2 * len(radii) + 400:
                    break
                if f1 < f2:
                    hi_t, x2, f2 = x2, x1, f1
                    x1 = hi_t - g * (hi_t - lo_t)
                    f1 = radius_at(x1)
                else:
                    lo_t, x1, f1 = x1, x2, f2
                    x2 = lo_t + g * (hi_t - lo_t)
                    f2 = radius_at(x2)
            for tt, rr in ((x1, f1), (x2, f2)):
                if rr < br:
                    bt, br = tt, rr
            if all(abs(bt - t1) > 1e-6 or abs(br - r1) > 1e-6 for t1, r1 in design):
                design.append((bt, br))
    if not design and not bumps:
        design = []  # only the defensive component: plain Monte Carlo in the plane
    # the mixture: (kind, parameters, weight); weights from each component's mass proxy
    comps = []
    for t, r in design:
        comps.append(("normal", np.array([r * math.cos(t), r * math.sin(t)]), float(ndtr(-r))))
    for yp, _fp, (vol, sampler, hs) in bumps:
        comps.append(("poly", (vol, sampler, hs), vol * math.exp(-0.5 * yp @ yp) / (2 * math.pi)))
    proxy = np.array([c[2] for c in comps]) if comps else np.zeros(0)
    weights = 0.95 * proxy / proxy.sum() if comps else np.zeros(0)
    comps.append(("normal", np.zeros(2), 0.0))
    weights = np.append(weights, 0.05 if len(comps) > 1 else 1.0)
    n = orc.remaining
    if n < 2:
        return _answer(0.0, 1.0, mode="bottleneck-rank2-no-budget", fd_used=fd_used)
    counts = rng.multinomial(n, weights / weights.sum())
    ys = []
    for (kind, par, _), c in zip(comps, counts):
        if c:
            ys.append(par[None] + rng.standard_normal((c, 2)) if kind == "normal" else par[1](c, rng))
    y = np.concatenate(ys)
    q = np.zeros(len(y))
    for (kind, par, _), wk in zip(comps, weights):
        if kind == "normal":
            q += wk * np.exp(-0.5 * np.sum((y - par) ** 2, axis=1)) / (2 * math.pi)
        else:
            vol, _, hs = par
            inside = np.all(y @ hs[:, :2].T + hs[:, 2] <= 1e-12, axis=1)
            q += wk * inside / vol
    hit = h(y) > 0
    w = np.exp(-0.5 * np.sum(y * y, axis=1)) / (2 * math.pi) / q * hit
    p_hat = float(w.mean())
    se = float(w.std(ddof=1) / math.sqrt(len(w)))
    upper = p_hat + Z95 * se if p_hat > 0 else 3.0 / (0.05 * len(w))
    return _answer(p_hat, upper, mode="bottleneck-rank2-mixture-is",
                   design=[(round(float(t), 4), round(float(r), 4)) for t, r in design],
                   bumps=[(np.round(b[0], 4).tolist(), float(b[1])) for b in bumps], hits=int(hit.sum()),
                   n_is=len(w), fd_used=fd_used)


def _box_attack(problem: dict, orc: CountingOracle, rng: np.random.Generator, fd_step: float) -> dict:
    """Uniform inputs on [-1, 1]^d: find the margin's peak, cut out the region with the peak's
    affine pieces, and sample uniformly inside that polytope (grown until no hit lies outside the
    inner copy)."""
    d = int(problem["dim"])
    ones = np.ones(d)

    def margin(x):
        return margins(problem, orc(np.clip(np.atleast_2d(x), -1.0, 1.0)))

    budget = orc.budget
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * d, indexing="ij")).reshape(d, -1).T
    n_scan = int(min(max(64, budget // 16), 1024))
    scan = np.concatenate([corners, rng.uniform(-1, 1, (n_scan, d))])
    ms = margin(scan)
    order = np.argsort(ms)[::-1]
    starts = [scan[order[0]]]
    n_starts = int(np.clip(budget // 700, 3, 12))
    for i in order[1:]:
        if len(starts) >= n_starts:
            break
        if all(np.max(np.abs(scan[i] - s)) > 0.3 for s in starts):
            starts.append(scan[i])
    peaks = []
    reserve = max(256, budget // 3)
    for x0 in starts:
        if orc.remaining < reserve + 4 * (d + 1):
            break
        xp, fp, cuts = _kelley_max(margin, x0, -ones, ones, orc, reserve)
        if fp > 0 and all(np.max(np.abs(xp - q[0])) > 1e-6 for q in peaks):
            peaks.append((xp, fp, cuts))
    if not peaks:
        rand = ms[len(corners):]
        return _plain_mc(margin, lambda n: rng.uniform(-1, 1, (n, d)), orc, mode="box-none-found-mc",
                         hits=int(np.sum(rand > 0)), n=len(rand))
    xp, fp, cuts = max(peaks, key=lambda q: q[1])
    # the outer polytope: the box and, per cut, f_k + g_k . (x - x_k) >= 0 (as A x + b <= 0)
    base = [np.append(-c[2], c[2] @ c[0] - c[1]) for c in cuts]
    box = [np.append(e, -1.0) for e in np.eye(d)] + [np.append(-e, -1.0) for e in np.eye(d)]
    interior = xp.copy()
    # a strictly interior point: a step into the box and up the region from the peak
    interior = np.clip(interior, -1 + 1e-9, 1 - 1e-9)
    mode = "box-polytope"
    scale = 4.0 ** (1.0 / d)
    for attempt in range(4):
        if not base:
            break
        scaled = [np.append(h[:d], h[d] + (scale - 1.0) * (h[:d] @ xp + h[d])) for h in base]  # x* + s (P - x*)
        # the interior point must satisfy every scaled cut strictly: search along the cuts' mean ascent
        poly = None
        hs = np.array(scaled + box)
        for shrink in (0.0, 1e-9, 1e-7, 1e-5, 1e-3):
            cand = np.clip(xp + shrink * np.mean([-h[:d] for h in scaled], axis=0), -1 + 1e-12, 1 - 1e-12)
            if np.all(hs[:, :d] @ cand + hs[:, d] < 0):
                poly = _polytope(hs, cand)
                break
        if poly is None:
            mode = "box-polytope-degenerate"
            break
        vol, sampler = poly
        left = orc.remaining
        n = left if attempt == 3 else max(64, left // 3)
        x = np.clip(sampler(n, rng), -1, 1)
        hit = margin(x) > 0
        viol = np.array(base)[:, :d] @ x[hit].T + np.array(base)[:, d:] > 1e-12   # (cuts, hits)
        inner = ~viol.any(axis=0)
        if inner.all() or attempt == 3 or viol.any(axis=1).all():
            if attempt < 3 and orc.remaining > 0:
                x2 = np.clip(sampler(orc.remaining, rng), -1, 1)
                hit = np.concatenate([hit, margin(x2) > 0])
            k, n = int(hit.sum()), len(hit)
            share = vol / 2.0 ** d
            p_hat = share * k / n
            upper = share * (float(beta_dist.ppf(0.95, k + 1, n - k)) if k < n else 1.0)
            return _answer(p_hat, upper, mode=mode, share=share, hits=k, n_final=n, peaks=len(peaks),
                           cuts=len(cuts), peak_margin=fp, grown=attempt)
        # hits beyond a cut: that piece does not bound the region (f is not concave there): drop it
        base = [h for h, v in zip(base, viol.any(axis=1)) if not v]
    # degenerate polytope: plain Monte Carlo on what is left, honest fallback
    return _plain_mc(margin, lambda n: rng.uniform(-1, 1, (n, d)), orc, mode=mode)


# --- sequences -------------------------------------------------------------------------------------

def _sequence_fallback(problem: dict, orc: CountingOracle, seed: int, max_passes: int | None) -> dict:
    """Plain Monte Carlo with the whole budget (or ``max_passes``) and phasebench_baselines.rare's sampler (the
    same draws as rare-mc)."""
    rng = np.random.default_rng(seed)
    probs = np.asarray(problem["token_probs"], dtype=np.float64)
    length, vocab = probs.shape
    hits = n = 0
    limit = orc.remaining if max_passes is None else min(orc.remaining, int(max_passes))
    while n < limit:
        b = min(limit - n, MAX_ROWS)
        x = np.stack([rng.choice(vocab, size=b, p=probs[j]) for j in range(length)], axis=1)
        hits += int(np.sum(margins(problem, orc(x)) > 0))
        n += b
    upper = float(beta_dist.ppf(0.95, hits + 1, n - hits)) if hits < n else 1.0
    return _answer(hits / n, upper, mode="sequence-plain-mc", hits=hits)


# --- entry point ------------------------------------------------------------------------------------

def attack(problem: dict, oracle: Any = None, seed: int | None = None, fd_step: float = 1e-4,
           max_sequence_passes: int | None = None) -> dict:
    """Estimate and bound p for one instance. ``oracle``: defaults to ``problem["oracle"]``; wrapped
    in ``CountingOracle`` (an existing one is used as is). Returns {"p_hat", "upper", "info"}; info
    holds the mode, the forward passes used (``used``; ``fd_used``: those spent before the region
    search) and the budget. ``max_sequence_passes`` caps the plain Monte Carlo on sequences (tests:
    fewer passes can only make the attacker lose)."""
    raw = oracle if oracle is not None else problem["oracle"]
    orc = raw if isinstance(raw, (CountingOracle, _PolicyOracle)) else CountingOracle(raw)
    seed = int(problem.get("seed", 0) if seed is None else seed)
    rng = np.random.default_rng(seed)
    kind = problem["input_dist"]
    if kind == "tokens":
        result = _sequence_fallback(problem, orc, seed, max_sequence_passes)
    elif kind == "gaussian":
        result = _gaussian_attack(problem, orc, rng, fd_step)
    elif kind == "box":
        result = _box_attack(problem, orc, rng, fd_step)
    else:
        raise ValueError(f"unknown input_dist {kind!r}")
    result["info"].update(used=int(orc.used), budget=int(orc.budget))
    return result

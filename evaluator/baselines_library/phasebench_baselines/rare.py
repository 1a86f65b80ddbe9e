"""rare-behavior: what its baselines share. Black-box: every forward pass goes through
problem["oracle"]; white-box: the same methods query the float64 forward pass of the public weights,
with a fixed number of forward passes (WHITEBOX_BUDGET) instead of the oracle's budget.

The score s(x) is the predicate's margin: output[0] - threshold, or the target logit minus the
largest other logit; the behaviour is s(x) > 0 (a tie at the argmax counts for the first index,
which the margin's > 0 reproduces up to a measure-zero set for real inputs).

The task draws each instance's target log10 p uniformly on LOG10_P_RANGE. Where a sample holds no
hit, every method's estimate is the median of p given its draws under that prior
(``posterior_median``), never 0: the headline scores log10 p_hat, and a zero estimate says
"infinitely rare", which no finite sample supports. The bounds are not capped at the range's top:
the model is tuned to the drawn target, so a realised p may sit a little above it.

The estimators themselves live in their submission folders (rare-mc, rare-ce-is, rare-ams,
rare-itgis, rare-ibp-bound); ``monte_carlo_hits`` and ``mc_answer`` are here because the white-box
baselines fall back to plain Monte Carlo where their own method does not apply.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import betaincinv, xlog1py, xlogy

CONFIDENCE = 0.95
#: The announced range of log10 p (the task's description); a test checks it against the task.
LOG10_P_RANGE = (-12.0, -3.0)
_PRIOR_GRID = 4001
MAX_ROWS = 65536
WHITEBOX_BUDGET = {"F1": 1 << 19, "F2": 1 << 19, "F3": 1 << 17}


# --- the model ------------------------------------------------------------------------------------

def _softmax(s, axis=-1):
    s = s - s.max(axis=axis, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=axis, keepdims=True)


def mlp_forward(m, x):
    h = np.asarray(x, dtype=np.float64)
    n = sum(1 for k in m if k.startswith("w") and k[1:].isdigit())
    for i in range(n):
        h = h @ m[f"w{i}"].T + m[f"b{i}"]
        if i < n - 1:
            h = np.maximum(h, 0.0)
    return h


#: Sequences per block of ``transformer_forward``: its (block, length, width) intermediates stay a few
#: MB, which the allocator reuses, where whole-batch ones (hundreds of MB each) were fresh pages every time.
TRANSFORMER_BLOCK = 1024


def transformer_forward(m, tokens):
    tokens = np.asarray(tokens, dtype=np.int64)
    n_layers, n_heads = int(m["n_layers"].reshape(-1)[0]), int(m["n_heads"].reshape(-1)[0])
    batch, length = tokens.shape
    width = m["embed"].shape[-1]
    dh = width // n_heads
    mask = np.triu(np.full((length, length), -np.inf), k=1)
    # Every step up to the last position's state is per sequence (numpy's stacked matmul is one
    # product per sequence, softmax and the rest elementwise or per row), so computing it a block of
    # sequences at a time gives the same bits as the whole batch at once. The unembedding, a single
    # (batch, width) product, is still made on the whole batch.
    last_h = np.empty((batch, width))
    for start in range(0, batch, TRANSFORMER_BLOCK):
        tb = tokens[start:start + TRANSFORMER_BLOCK]
        nb = len(tb)
        h = m["embed"][tb] + m["pos"][None, :length]
        for layer in range(n_layers):
            p = f"l{layer}."
            last = layer == n_layers - 1
            q_in = h[:, -1:] if last else h
            q = (q_in @ m[p + "wq"]).reshape(nb, q_in.shape[1], n_heads, dh).transpose(0, 2, 1, 3)
            k = (h @ m[p + "wk"]).reshape(nb, length, n_heads, dh).transpose(0, 2, 1, 3)
            v = (h @ m[p + "wv"]).reshape(nb, length, n_heads, dh).transpose(0, 2, 1, 3)
            s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + (mask[-1:] if last else mask)
            att = (_softmax(s) @ v).transpose(0, 2, 1, 3).reshape(nb, q_in.shape[1], width)
            h = q_in + att @ m[p + "wo"]
            h = h + np.maximum(h @ m[p + "w_in"] + m[p + "b_in"], 0.0) @ m[p + "w_out"] + m[p + "b_out"]
        last_h[start:start + nb] = h[:, -1]
    return last_h @ m["unembed"]


class Budget(RuntimeError):
    """Raised by ``Model`` before a call that would exceed the budget (never sent to the oracle)."""


class Model:
    """Budgeted forward passes, through the oracle (black-box) or the public weights (white-box)."""

    def __init__(self, problem):
        self.problem = problem
        self.oracle = problem.get("oracle")
        if self.oracle is not None:
            self.budget = int(self.oracle.remaining)
            self.dtype = np.dtype(self.oracle.input_dtype)
        else:
            self.weights = {k[6:]: np.asarray(v, dtype=np.float64) if v.dtype.kind == "f" else v
                            for k, v in problem.items() if isinstance(k, str) and k.startswith("model.")}
            self.budget = WHITEBOX_BUDGET[problem["family"]]
            self.dtype = np.dtype(np.int64 if problem["architecture"] == "transformer" else np.float64)
        self.used = 0

    @property
    def remaining(self):
        return self.budget - self.used

    def outputs(self, x):
        x = np.asarray(x, dtype=self.dtype)
        if len(x) > self.remaining:
            raise Budget(f"{len(x)} forward passes asked, {self.remaining} left")
        self.used += len(x)
        chunks = []
        for start in range(0, len(x), MAX_ROWS):
            xb = x[start:start + MAX_ROWS]
            if self.oracle is not None:
                chunks.append(np.asarray(self.oracle(xb), dtype=np.float64))
            elif self.problem["architecture"] == "transformer":
                chunks.append(transformer_forward(self.weights, xb))
            else:
                chunks.append(mlp_forward(self.weights, xb))
        return np.concatenate(chunks) if chunks else np.zeros((0, 1))

    def margins(self, x):
        out = self.outputs(x)
        if self.problem["predicate"] == "threshold":
            return out[:, 0] - float(self.problem["threshold"])
        t = int(self.problem["target"])
        others = np.delete(out, t, axis=1)
        return out[:, t] - others.max(axis=1)


# --- the input distribution ---------------------------------------------------------------------

class Inputs:
    """Sampler and log-density of the public input distribution."""

    def __init__(self, problem):
        self.kind = problem["input_dist"]
        if self.kind == "tokens":
            self.probs = np.asarray(problem["token_probs"], dtype=np.float64)
            self.length, self.vocab = self.probs.shape
            self.log_probs = np.log(self.probs)
        else:
            self.dim = int(problem["dim"])

    def sample(self, n, rng, out=None):
        """n inputs. ``out``: a float64 C-contiguous buffer of at least n rows that Gaussian draws are
        written to (its first n rows are returned); the same draws as without, no fresh array."""
        if self.kind == "gaussian":
            if out is not None:
                return rng.standard_normal(out=out[:n])
            return rng.standard_normal((n, self.dim))
        if self.kind == "box":
            return rng.uniform(-1.0, 1.0, (n, self.dim))
        return np.stack([rng.choice(self.vocab, size=n, p=self.probs[j]) for j in range(self.length)], axis=1)

    def log_density(self, x):
        if self.kind == "gaussian":
            return -0.5 * row_sum_of_squares(x) - 0.5 * self.dim * math.log(2 * math.pi)
        if self.kind == "box":
            inside = np.all(np.abs(x) <= 1.0, axis=1)
            return np.where(inside, -self.dim * math.log(2.0), -np.inf)
        return self.log_probs[np.arange(self.length)[None, :], x].sum(axis=1)


#: Rows per block of ``row_sum_of_squares`` (a few MB of scratch at the widest inputs).
SQUARES_BLOCK = 1024


def row_sum_of_squares(x, shift=None):
    """np.sum((x - shift) ** 2, axis=1) as ``np.sum(d * d, axis=1)`` computes it (d = x, or x - shift),
    bit for bit (each row is its own reduction), a block of rows at a time through one small scratch
    array instead of two temporaries the size of x."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(len(x))
    scratch = np.empty((min(len(x), SQUARES_BLOCK), *x.shape[1:]))
    for start in range(0, len(x), SQUARES_BLOCK):
        xb = x[start:start + SQUARES_BLOCK]
        d = scratch[:len(xb)]
        if shift is None:
            np.multiply(xb, xb, out=d)
        else:
            np.subtract(xb, shift, out=d)
            np.multiply(d, d, out=d)
        np.sum(d, axis=1, out=out[start:start + len(xb)])
    return out


# --- bounds -------------------------------------------------------------------------------------

def clopper_pearson_upper(hits, n, confidence=CONFIDENCE):
    """One-sided exact binomial upper bound (3/n-ish when nothing is hit)."""
    if hits >= n:
        return 1.0
    # The Beta(hits + 1, n - hits) quantile: scipy.stats.beta.ppf's value (equal on 37,197 checked
    # cases), without importing scipy.stats, which cost every sandboxed instance 0.5 s.
    return float(betaincinv(hits + 1, n - hits, confidence))


def empirical_bernstein_upper(y, bound, confidence=CONFIDENCE):
    """Maurer & Pontil (2009) one-sided upper bound on the mean of i.i.d. values in [0, bound]."""
    n = len(y)
    if n < 2:
        return 1.0
    delta = 1.0 - confidence
    log_term = math.log(2.0 / delta)
    var = float(np.var(y, ddof=1))
    return float(np.mean(y) + math.sqrt(2.0 * var * log_term / n) + 7.0 * bound * log_term / (3.0 * (n - 1)))


def posterior_median(hits, n, scale=1.0):
    """The median of p = scale * q given ``hits`` in ``n`` Bernoulli(q) draws, under the announced prior
    (log10 p uniform on LOG10_P_RANGE). scale = 1: plain Monte Carlo (about (k - 1/3) / n with k hits;
    the middle of the range below about 1 / n without); scale < 1: draws made inside a region of known
    mass ``scale`` (a splitting level, undecided cells), q the hit rate there."""
    lo, hi = LOG10_P_RANGE
    shift = math.log10(scale)
    if lo - shift >= min(hi - shift, 0.0):
        return float(scale)  # a region lighter than the range's bottom: p <= scale is all there is
    t = np.linspace(lo - shift, min(hi - shift, 0.0), _PRIOR_GRID)  # log10 q, uniform prior on it
    q = 10.0 ** t
    loglik = xlogy(hits, q) + xlog1py(n - hits, -q)
    w = np.exp(loglik - loglik.max())
    cdf = np.cumsum(w)
    return float(scale * 10.0 ** np.interp(0.5 * cdf[-1], cdf, t))


def answer(p_hat, upper):
    p_hat = float(min(max(p_hat, 0.0), 1.0))
    upper = float(min(max(upper, p_hat, 1e-300), 1.0))
    return {"p_hat": np.array(p_hat), "upper": np.array(upper)}


def mc_answer(hits, n):
    """Plain Monte Carlo's answer from its hit count: the posterior median and Clopper-Pearson."""
    return answer(posterior_median(hits, n), clopper_pearson_upper(hits, n))


# --- plain Monte Carlo's pieces -----------------------------------------------------------------

def monte_carlo_hits(problem):
    """(hits, n): the whole budget spent on i.i.d. inputs from the public distribution (seeded by
    problem["seed"]), every one a forward pass, and how many show the behaviour."""
    rng = np.random.default_rng(problem["seed"])
    model, inputs = Model(problem), Inputs(problem)
    # Gaussian draws go to one buffer, reused: a fresh (MAX_ROWS, dim) array per batch is mostly page faults
    buf = np.empty((min(model.remaining, MAX_ROWS), inputs.dim)) if inputs.kind == "gaussian" else None
    hits, n = 0, 0
    while model.remaining > 0:
        batch = min(model.remaining, MAX_ROWS)
        hits += int(np.sum(model.margins(inputs.sample(batch, rng, out=buf)) > 0))
        n += batch
    return hits, n

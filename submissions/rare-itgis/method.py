"""Gradient-informed importance sampling (ITGIS, after Wu & Hilton 2024), white-box.

Sequences (F3): the margin s(x) = target logit - largest other logit is linearised in the one-hot
tokens, s(x) ~ s0 + sum_j G[j, x_j], with G the gradient of s with respect to the one-hot inputs,
averaged over the current proposal's samples (torch autograd through the float64 forward). The
proposal is the product distribution q_j(v) ∝ f_j(v) exp(lam * G[j, v]) (a per-position token tilt);
lam is solved so that the linearised margin's mean under q is 0 (the rare event made typical), and
G, lam are refitted for a few rounds on the new proposal's samples. Gaussian inputs (F1, F2
Gaussian): the same with a mean shift mu = lam * mean gradient. Uniform boxes: plain Monte Carlo.

Final sample: n i.i.d. draws from the defensive mixture m = f/2 + q/2. Estimate: the unbiased
importance-sampling mean of w(x) 1{s(x) > 0}, w = f / m <= 2. Bound, valid without assumption on
the model: the smaller of (a) the Clopper-Pearson bound on the draws that came from f (plain Monte
Carlo) and (b) the Maurer-Pontil empirical-Bernstein bound on w * hit in [0, 2], each at level
0.025 (a union bound makes the minimum a 95% bound).
"""
from __future__ import annotations

import math

import numpy as np

from phasebench_baselines.rare import (MAX_ROWS, Inputs, Model, answer, clopper_pearson_upper,
                                       empirical_bernstein_upper, mc_answer, monte_carlo_hits,
                                       posterior_median, row_sum_of_squares)

__all__ = ["estimate", "itgis", "DELTA_SPLIT"]

# torch and scipy.optimize are imported where they are used, not here: the uniform-box instances run
# plain Monte Carlo and need neither, and the two imports are ~1.1 s of every sandboxed instance's start.

DELTA_SPLIT = 0.025  # each of the two bounds' miss probability; their minimum misses with at most 0.05
ROUNDS = 8
ROUND_SAMPLES = 2048
SMOOTHING = 0.1
SEQUENCE_BLOCK = 1024  # sequences per forward pass of the final sample's margins (no gradient)
DRAW_BLOCK = 4096  # rows of the draws from f written at a time into the final sample's buffer (Gaussian)


# --- float64 torch forward passes (for the gradients) ----------------------------------------------

def _tensors(problem):
    import torch
    return {k[6:]: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in problem.items()
            if isinstance(k, str) and k.startswith("model.") and np.asarray(v).dtype.kind == "f"}


def _transformer_from_onehot(t, n_layers, n_heads, onehot):
    """The card's transformer with h = onehot @ embed + pos, so the output is differentiable in the tokens."""
    return _transformer_from_embedded(t, n_layers, n_heads, onehot @ t["embed"] + t["pos"][:onehot.shape[1]])


def _transformer_from_tokens(t, n_layers, n_heads, tokens):
    """The same forward pass from token ids: embed[tokens] is onehot @ embed exactly (one term 1.0 * e, the
    others exact zeros), without the one-hot array and its product."""
    return _transformer_from_embedded(t, n_layers, n_heads, t["embed"][tokens] + t["pos"][:tokens.shape[1]])


def _transformer_from_embedded(t, n_layers, n_heads, h):
    import torch
    batch, length, width = h.shape
    dh = width // n_heads
    mask = torch.triu(torch.full((length, length), float("-inf"), dtype=h.dtype), diagonal=1)
    for layer in range(n_layers):
        p = f"l{layer}."
        last = layer == n_layers - 1
        q_in = h[:, -1:] if last else h
        q = (q_in @ t[p + "wq"]).view(batch, q_in.shape[1], n_heads, dh).transpose(1, 2)
        k = (h @ t[p + "wk"]).view(batch, length, n_heads, dh).transpose(1, 2)
        v = (h @ t[p + "wv"]).view(batch, length, n_heads, dh).transpose(1, 2)
        s = q @ k.transpose(-1, -2) / math.sqrt(dh) + (mask[-1:] if last else mask)
        att = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(batch, q_in.shape[1], width)
        h = q_in + att @ t[p + "wo"]
        h = h + torch.relu(h @ t[p + "w_in"] + t[p + "b_in"]) @ t[p + "w_out"] + t[p + "b_out"]
    return h[:, -1] @ t["unembed"]


def _mlp(t, x):
    import torch
    n = sum(1 for k in t if k.startswith("w") and k[1:].isdigit())
    h = x
    for i in range(n):
        h = h @ t[f"w{i}"].T + t[f"b{i}"]
        if i < n - 1:
            h = torch.relu(h)
    return h


class _Net:
    """Margins and their input gradients; every call is counted against the Model's budget."""

    def __init__(self, problem, model):
        self.problem, self.model = problem, model
        self.t = _tensors(problem)
        if problem["architecture"] == "transformer":
            self.n_layers = int(np.asarray(problem["model.n_layers"]).reshape(-1)[0])
            self.n_heads = int(np.asarray(problem["model.n_heads"]).reshape(-1)[0])
            self.vocab = int(problem["vocab"])

    def _margin(self, out):
        import torch
        if self.problem["predicate"] == "threshold":
            return out[:, 0] - float(self.problem["threshold"])
        tgt = int(self.problem["target"])
        others = torch.cat([out[:, :tgt], out[:, tgt + 1:]], dim=1)
        return out[:, tgt] - others.max(dim=1).values

    def _out(self, x):
        if self.problem["architecture"] == "transformer":
            if x.dtype.is_floating_point:  # one-hot rows (the gradient rounds)
                return _transformer_from_onehot(self.t, self.n_layers, self.n_heads, x)
            return _transformer_from_tokens(self.t, self.n_layers, self.n_heads, x)
        return _mlp(self.t, x)

    def margins(self, x):
        import torch
        if len(x) > self.model.remaining:
            raise RuntimeError(f"{len(x)} passes asked, {self.model.remaining} left")
        self.model.used += len(x)
        # sequences a block at a time: whole-chunk intermediates (hundreds of MB each) cost more in fresh
        # pages than in arithmetic. Per sequence the same operations; MKL's products may round a logit
        # differently in the last bit for another row count, which moves a hit only at a margin within
        # rounding of 0 (the dev split's answers are bit for bit those of whole chunks)
        block = SEQUENCE_BLOCK if self.problem["architecture"] == "transformer" else MAX_ROWS
        with torch.no_grad():
            return np.concatenate([self._margin(self._out(torch.as_tensor(x[i:i + block]))).numpy()
                                   for i in range(0, len(x), block)])

    def margins_and_gradients(self, x):
        """s(x) and ds/d(input): one-hot (batch, L, V) for sequences, (batch, dim) for vectors."""
        import torch
        if len(x) > self.model.remaining:
            raise RuntimeError(f"{len(x)} passes asked, {self.model.remaining} left")
        self.model.used += len(x)
        xt = torch.as_tensor(x)
        if self.problem["architecture"] == "transformer":
            xt = torch.nn.functional.one_hot(xt, self.vocab).double()
        xt.requires_grad_(True)
        s = self._margin(self._out(xt))
        (grad,) = torch.autograd.grad(s.sum(), xt)
        return s.detach().numpy(), grad.numpy()


# --- proposals --------------------------------------------------------------------------------------

class _TokenTilt:
    """q_j(v) ∝ f_j(v) exp(lam G[j, v]), independent positions."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.log_q = inputs.log_probs.copy()
        self.grad_sum, self.grad_count = np.zeros_like(inputs.log_probs), 0

    def tilted(self, grad_mean, lam):
        z = self.inputs.log_probs + lam * grad_mean
        z = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
        # keep SMOOTHING of the base distribution at every position: without it the tilt collapses
        # onto the linear surrogate's best sequence, whose gradients then never change
        return np.logaddexp(math.log1p(-SMOOTHING) + z, math.log(SMOOTHING) + self.inputs.log_probs)

    def fit(self, s, grads):
        """Solve lam so that the linearised margin's mean under the new tilt is 0."""
        from scipy.optimize import brentq
        # the running mean of the gradients over every round (as in ITGIS): one round's gradient
        # alone flips between the competitors of the target logit and the tilt oscillates
        self.grad_sum += grads.sum(axis=0)
        self.grad_count += len(grads)
        g = self.grad_sum / self.grad_count  # (L, V)
        cur = float(np.sum(np.exp(self.log_q) * g))

        def predicted(lam):
            return float(np.mean(s)) + float(np.sum(np.exp(self.tilted(g, lam)) * g)) - cur

        if predicted(0.0) >= 0:
            lam = 0.0
        else:
            hi = 1.0
            while predicted(hi) < 0 and hi < 1e6:
                hi *= 2.0
            lam = brentq(predicted, 0.0, hi) if predicted(hi) >= 0 else hi
        self.log_q = self.tilted(g, lam)

    def sample(self, n, rng):
        q = np.exp(self.log_q)
        return np.stack([rng.choice(self.inputs.vocab, size=n, p=q[j] / q[j].sum())
                         for j in range(self.inputs.length)], axis=1)

    def log_density(self, x):
        return self.log_q[np.arange(self.inputs.length)[None, :], x].sum(axis=1)


class _MeanShift:
    """q = N(mu, I): the Gaussian tilt along the mean gradient."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.mu = np.zeros(inputs.dim)

    def fit(self, s, grads):
        g = grads.mean(axis=0)
        gg = float(g @ g)
        if gg > 0:
            # linearised mean margin under N(mu', I): mean(s) + g . (mu' - mu), with mu' = mu + lam g
            self.mu = self.mu + max(0.0, -float(np.mean(s))) / gg * g

    def sample(self, n, rng, out=None):
        """N(mu, I) draws; into ``out``'s first n rows where given (the same draws, no fresh array)."""
        if out is None:
            return rng.standard_normal((n, self.inputs.dim)) + self.mu
        x = rng.standard_normal(out=out[:n])
        x += self.mu
        return x

    def log_density(self, x):
        return -0.5 * row_sum_of_squares(x, self.mu) - 0.5 * self.inputs.dim * math.log(2 * math.pi)


# --- the method ---------------------------------------------------------------------------------------

def itgis(problem, rounds=ROUNDS, round_samples=ROUND_SAMPLES):
    rng = np.random.default_rng(problem["seed"])
    model, inputs = Model(problem), Inputs(problem)
    net = _Net(problem, model)
    prop = _TokenTilt(inputs) if inputs.kind == "tokens" else _MeanShift(inputs)
    for _ in range(rounds):
        x = prop.sample(round_samples, rng)
        s, grads = net.margins_and_gradients(x)
        prop.fit(s, grads)
    ys, f_hits, f_n = [], 0, 0
    # Gaussian: every chunk's draws go to one buffer (the largest chunk comes first), the draws from f
    # a block at a time, in the order of one call: the same inputs without fresh arrays of hundreds of MB
    gaussian = isinstance(prop, _MeanShift)
    buf = np.empty((min(model.remaining, MAX_ROWS), inputs.dim)) if gaussian else None
    scratch = np.empty((min(model.remaining, DRAW_BLOCK), inputs.dim)) if gaussian else None
    while model.remaining > 0:  # in chunks: 2^19 inputs of dimension 784 would not fit in memory
        n = min(model.remaining, MAX_ROWS)
        from_f = rng.random(n) < 0.5
        if gaussian:
            x = prop.sample(n, rng, out=buf)
            rows = np.flatnonzero(from_f)
            for start in range(0, len(rows), DRAW_BLOCK):
                block = rows[start:start + DRAW_BLOCK]
                x[block] = inputs.sample(len(block), rng, out=scratch)
        else:
            x = prop.sample(n, rng)
            x[from_f] = inputs.sample(int(from_f.sum()), rng)
        hits = net.margins(x) > 0
        log_f, log_q = inputs.log_density(x), prop.log_density(x)
        w = np.exp(log_f - np.logaddexp(math.log(0.5) + log_f, math.log(0.5) + log_q))  # f / m, at most 2
        ys.append(w * hits)
        f_hits, f_n = f_hits + int(hits[from_f].sum()), f_n + int(from_f.sum())
    y = np.concatenate(ys)
    bound_mc = clopper_pearson_upper(f_hits, f_n, 1 - DELTA_SPLIT)
    bound_is = empirical_bernstein_upper(y, 2.0, 1 - DELTA_SPLIT)
    p_hat = float(np.mean(y))
    if p_hat == 0:
        p_hat = posterior_median(0, f_n)  # no hit at all: what the draws from f alone say
    return answer(p_hat, min(bound_mc, bound_is))


def estimate(problem):
    if problem.get("oracle") is not None:
        raise ValueError("rare-itgis is a white-box method: it needs the weights (model.*), not an oracle")
    if problem["input_dist"] == "box":
        # no gradient tilt of the uniform box here: plain Monte Carlo, the floor (documented)
        return mc_answer(*monte_carlo_hits(problem))
    return itgis(problem)

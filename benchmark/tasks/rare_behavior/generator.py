"""Instances of rare-behavior: a model, an input distribution, a predicate and its exact probability.

Families:

* F1: x ~ N(0, I_d), d in 64..784. The first layer is ``A Q^T`` with Q a random d x r orthonormal
  frame (r = 1 or 2), so the model sees x only through z = Q^T x ~ N(0, I_r) (Q is rounded to
  float32; the truth uses z's exact covariance Q^T Q through its Cholesky factor). Linear scores
  (no hidden layer) or ReLU MLPs with 1-3 hidden layers. Truth: region enumeration in the r-D
  bottleneck (``regions.py``).
* F2: low-dimensional inputs: 2-D, uniform on the box [-1, 1]^2 or standard normal, and 3-D to
  6-D, uniform on the box [-1, 1]^d (no exact Gaussian polytope mass there); ReLU MLPs, 1-2
  hidden layers. Truth: region enumeration (polygon areas, the polar Gaussian integral of each
  polygon, or polytope volumes).
* F3: token sequences with independent per-position distributions q_j = softmax(beta g_j);
  tiny causal transformers; predicate: argmax of the last position's logits = target. Truth:
  every sequence enumerated (float32 torch; logit gaps under 1e-3 recomputed in float64) and
  p = sum of the sequences' probabilities over those whose argmax is the target.

The predicate's threshold (or the target logit's bias, or beta) is tuned so that log10 p lands
near the instance's requested decade, then rounded, and the truth is computed at the rounded value
(rounded again to 12 significant digits, so a build is byte-identical across processors).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, cast

import numpy as np
from scipy.optimize import brentq

from .enumerate import enumerate_argmax_by_prefix
from .models import TorchTransformer, mlp_layers, transformer_arrays, transformer_forward
from .regions import linear_regions, probability, root_cells

__all__ = ["RareInstance", "make_instance", "enumerate_argmax", "enumerate_argmax_reference",
           "sequence_probabilities", "TokenMasses", "TIE_GAP", "round_sig"]

TIE_GAP = 1e-3            # float32 logit gaps below this are recomputed in float64
_ATTEMPTS = 20
_SEARCH_NODES = np.polynomial.legendre.leggauss(12)


def _brentq(f: Callable[[float], float], lo: float, hi: float, **options: Any) -> float:
    """scipy's brentq root (without full_output it is the root alone, which its stubs do not say)."""
    return cast(float, brentq(f, lo, hi, **options))


def round_sig(x: float, digits: int) -> float:
    return float(f"{x:.{digits}g}")


@dataclass
class RareInstance:
    family: str
    architecture: str
    model: dict[str, np.ndarray]
    public: dict[str, Any]                  # predicate, input distribution, shapes
    public_arrays: dict[str, np.ndarray]    # the input distribution's arrays (token_probs)
    p: float
    info: dict[str, Any] = field(default_factory=dict)
    #: Not stored with the answer: figures that may differ with the processor's float32 kernels (so a
    #: split built elsewhere, on a GPU say, would differ in bytes for them alone).
    diagnostics: dict[str, Any] = field(default_factory=dict)


# --- F1 and F2: ReLU networks, region enumeration -----------------------------------------------

def _orthonormal_frame(rng: np.random.Generator, d: int, r: int) -> np.ndarray:
    """A random d x r frame by Gram-Schmidt with elementwise float64 ops (no BLAS: the same bits
    on every processor), rounded to float32 values."""
    cols = []
    for _ in range(r):
        v = rng.standard_normal(d)
        for c in cols:
            v = v - math.fsum(v * c) * c
        cols.append(v / math.sqrt(math.fsum(v * v)))
    return np.stack(cols, axis=1).astype(np.float32).astype(np.float64)


def _mlp_params(rng: np.random.Generator, in_dim: int, widths: list[int], out_dim: int,
                first_scale: float = 1.0) -> list[tuple[np.ndarray, np.ndarray]]:
    dims = [in_dim, *widths, out_dim]
    layers = []
    for i in range(len(dims) - 1):
        scale = first_scale if i == 0 else 1.0 / math.sqrt(dims[i])
        w = (rng.standard_normal((dims[i + 1], dims[i])) * scale).astype(np.float32).astype(np.float64)
        b = (rng.standard_normal(dims[i + 1]) * (0.5 if i == 0 else 0.1)).astype(np.float32).astype(np.float64)
        layers.append((w, b))
    return layers


def _tune(f, lo: float, hi: float, target: float, increasing: bool) -> float:
    """x in [lo, hi] with f(x) ~ target for a monotone f (log10 p); the bracket is widened first."""
    g = (lambda x: f(x) - target) if increasing else (lambda x: target - f(x))
    for _ in range(60):
        if g(lo) < 0:
            break
        lo -= (hi - lo)
    for _ in range(60):
        if g(hi) > 0:
            break
        hi += (hi - lo)
    return _brentq(g, lo, hi, xtol=1e-9, rtol=1e-9, maxiter=200)


def _relu_instance(params: dict[str, Any], rng: np.random.Generator, family: str) -> RareInstance:
    dist = params["input_dist"]
    r = params["rank"] if "rank" in params else params["dim"]
    d = params["dim"]
    widths = [params["width"]] * params["hidden_layers"]
    out_dim = params.get("classes", 1)
    predicate = "argmax" if out_dim > 1 else "threshold"
    layers = _mlp_params(rng, r, widths, out_dim, first_scale=params.get("first_scale", 1.0))
    if family == "F1":
        q = _orthonormal_frame(rng, d, r)
        chol = np.linalg.cholesky(q.T @ q)  # z = Q^T x ~ N(0, Q^T Q) = chol u, u ~ N(0, I)
        a = layers[0][0]
        w0 = sum(a[:, k:k + 1] * q[:, k][None, :] for k in range(r))  # A Q^T, elementwise
        stored = [(w0, layers[0][1]), *layers[1:]]
        exact = [(a @ chol, layers[0][1]), *layers[1:]]
    else:
        stored = exact = layers
    regions = linear_regions(exact, root_cells(r, dist))
    target_class = 0
    threshold = 0.0
    log_target = params["log10_p"]
    quad: dict[str, Any] = {"nodes": _SEARCH_NODES[0], "weights": _SEARCH_NODES[1]} if dist == "gaussian" and r == 2 else {}

    def log_p(**kw) -> float:
        return math.log10(max(probability(regions, predicate, dist, **kw, **quad), 1e-300))
    if predicate == "threshold":
        peak = max(float((reg.cell.vertices @ reg.out_w[0] + reg.out_b[0]).max()) for reg in regions)
        threshold = round_sig(_tune(lambda t: log_p(threshold=t), peak - 1.0, peak, log_target, increasing=False), 6)
    else:
        target_class = int(rng.integers(out_dim))
        base = [reg.out_b[target_class] for reg in regions]

        def shifted(delta: float) -> float:
            for reg, b in zip(regions, base):
                reg.out_b[target_class] = b + delta
            return log_p(target=target_class)
        delta = round_sig(_tune(shifted, -1.0, 0.0, log_target, increasing=True), 6)
        shifted(delta)
        stored[-1][1][target_class] += delta
    p = probability(regions, predicate, dist, threshold=threshold, target=target_class)
    model = {}
    for i, (w, b) in enumerate(stored):
        model[f"w{i}"], model[f"b{i}"] = w, b
    public = {"input_dist": dist, "dim": d, "predicate": predicate, "threshold": threshold,
              "target": target_class, "output_dim": out_dim, "n_layers": len(stored),
              "width": int(widths[0]) if widths else 0}
    info = {"rank": r, "n_regions": len(regions)}
    return RareInstance(family, "mlp", model, public, {}, round_sig(p, 12), info)


# --- F3: tiny transformers, exhaustive enumeration ----------------------------------------------

def _all_sequences(start: int, stop: int, vocab: int, length: int) -> np.ndarray:
    """Sequences number start..stop-1 in lexicographic order (position 0 most significant)."""
    idx = np.arange(start, stop, dtype=np.int64)
    powers = vocab ** np.arange(length - 1, -1, -1, dtype=np.int64)
    return (idx[:, None] // powers[None, :]) % vocab


def enumerate_argmax(model: dict[str, np.ndarray], vocab: int, length: int, device: str = "cpu",
                     batch: int | None = None, progress=None) -> tuple[np.ndarray, int]:
    """The argmax of the last position's logits for every sequence (uint8, lexicographic order),
    and how many near-ties were recomputed in float64: the prefix-table enumerator (``enumerate.py``),
    which gives the same result as ``enumerate_argmax_reference`` many times faster. ``batch``: the
    most sequences per chunk (default: per device)."""
    return enumerate_argmax_by_prefix(model, vocab, length, TIE_GAP, device=device, batch=batch, progress=progress)


def enumerate_argmax_reference(model: dict[str, np.ndarray], vocab: int, length: int, device: str = "cpu",
                               batch: int = 1 << 16, progress=None) -> tuple[np.ndarray, int]:
    """The reference for ``enumerate_argmax``: every full sequence through the float32 torch model
    (near-ties recomputed in float64), kept for tests and perf."""
    import torch

    net = TorchTransformer(model, device=device)
    total = vocab ** length
    out = np.empty(total, dtype=np.uint8)
    n_ties = 0
    starts = range(0, total, batch)
    with torch.inference_mode():
        for start in (progress(starts) if progress else starts):
            stop = min(start + batch, total)
            seqs = _all_sequences(start, stop, vocab, length)
            logits = net(torch.as_tensor(seqs, device=device))
            top = torch.topk(logits, 2, dim=1).values
            arg = logits.argmax(dim=1).cpu().numpy()
            close = ((top[:, 0] - top[:, 1]) < TIE_GAP).cpu().numpy()
            if close.any():
                arg[close] = transformer_forward(model, seqs[close]).argmax(axis=1)
                n_ties += int(close.sum())
            out[start:stop] = arg
    return out, n_ties


def sequence_probabilities(token_probs: np.ndarray, seq_index: np.ndarray) -> np.ndarray:
    """Probability of each numbered sequence under independent per-position distributions."""
    length, vocab = token_probs.shape
    prob = np.ones(seq_index.shape, dtype=np.float64)
    rest = seq_index.copy()
    for pos in range(length - 1, -1, -1):
        prob *= token_probs[pos, rest % vocab]
        rest //= vocab
    return prob


#: Most sequences per chunk of ``TokenMasses`` (the chunk is a power of vocab): the chunk's temporaries
#: stay in cache (vocab 8, 8^8 sequences: 32768 rows took 0.17 CPU-s per beta, 262144 rows 0.29), and
#: every bucket's partial sum of mantissa halves (below 2^27 each) stays below 2^53, exact in float64.
_MASS_CHUNK = 1 << 16
_MANTISSA_HALF_BITS = 26
_EXPONENT_BUCKETS = 2048  # the biased exponents of float64


class TokenMasses:
    """For given per-position token probabilities, the total probability of the sequences whose argmax
    is each token: ``math.fsum(sequence_probabilities(token_probs, np.flatnonzero(argmax == t)))`` for
    every t, bit for bit, in one vectorised pass over all sequences.

    Why the same bits: each sequence's probability is the same float64 product as in
    ``sequence_probabilities`` (the same factors in the same order, last position first; IEEE
    multiplication is commutative, so a factor table times a vector is the same as the vector times
    it), and the sum is exact before its one rounding. Every probability is an integer mantissa M
    (below 2^53) times a power of two given by its biased exponent; M is split into halves below 2^27,
    each half summed per (token, exponent) bucket by ``np.bincount`` (float64 sums of integers, exact
    below 2^53: at most ``_MASS_CHUNK`` = 2^16 terms per chunk), then the buckets are combined as
    Python integers and divided by 2^1074 with int / int, which CPython rounds correctly (half to
    even). ``math.fsum`` returns the correctly rounded sum too, so both are the exact sum rounded once."""

    def __init__(self, argmax: np.ndarray, vocab: int, length: int):
        self.argmax = argmax
        self.vocab, self.length = vocab, length
        self.counts = np.bincount(argmax, minlength=vocab)
        # the trailing positions whose product table is one chunk
        self.table_positions = 1
        while self.table_positions < length and vocab ** (self.table_positions + 1) <= _MASS_CHUNK:
            self.table_positions += 1

    def _probabilities(self, token_probs: np.ndarray):
        """(start, probabilities) of consecutive chunks of sequences, lexicographic."""
        length, vocab, k = self.length, self.vocab, self.table_positions
        table = token_probs[length - 1].copy()
        for pos in range(length - 2, length - 1 - k, -1):
            table = (token_probs[pos][:, None] * table[None, :]).ravel()
        prefix_len = length - k
        for number in range(vocab ** prefix_len):
            prob = table
            rest = number
            for pos in range(length - 1 - k, -1, -1):  # the prefix's factors, last position first
                prob = prob * token_probs[pos, rest % vocab]
                rest //= vocab
            yield number * table.size, prob

    def __call__(self, token_probs: np.ndarray) -> list[float]:
        half = _MANTISSA_HALF_BITS
        high_sums = np.zeros(self.vocab * _EXPONENT_BUCKETS, dtype=np.int64)
        low_sums = np.zeros_like(high_sums)
        for start, prob in self._probabilities(token_probs):
            bits = prob.view(np.uint64)                       # probabilities are >= 0: no sign bit
            biased = bits >> np.uint64(52)
            mantissa = (bits & np.uint64((1 << 52) - 1)) | ((biased != 0).astype(np.uint64) << np.uint64(52))
            bucket = self.argmax[start:start + prob.size].astype(np.intp) * _EXPONENT_BUCKETS + biased.astype(np.intp)
            n = high_sums.size
            high_sums += np.bincount(bucket, weights=(mantissa >> np.uint64(half)).astype(np.float64),
                                     minlength=n).astype(np.int64)
            low_sums += np.bincount(bucket, weights=(mantissa & np.uint64((1 << half) - 1)).astype(np.float64),
                                    minlength=n).astype(np.int64)
        masses = []
        for t in range(self.vocab):
            rows = slice(t * _EXPONENT_BUCKETS, (t + 1) * _EXPONENT_BUCKETS)
            exact = 0  # the sum in units of 2^-1074, the smallest subnormal
            for b in np.flatnonzero(high_sums[rows] | low_sums[rows]):
                scaled = (int(high_sums[rows][b]) << half) + int(low_sums[rows][b])
                exact += scaled << max(int(b) - 1, 0)  # biased exponent b >= 1 weighs 2^(b - 1)
            masses.append(exact / (1 << 1074))
        return masses


def _token_probs(scores: np.ndarray, beta: float) -> np.ndarray:
    """softmax(beta * scores) per position, rounded to 10 digits and renormalised exactly."""
    z = beta * scores
    e = np.exp(z - z.max(axis=1, keepdims=True))
    q = np.array([[round_sig(v, 10) for v in row / math.fsum(row)] for row in e])
    return np.array([row / math.fsum(row) for row in q])


def _transformer_instance(params: dict[str, Any], rng: np.random.Generator, device: str) -> RareInstance:
    vocab, length = params["vocab"], params["length"]
    model = transformer_arrays(rng, vocab, length, params["width"], params["n_layers"], params["n_heads"])
    argmax, n_ties = enumerate_argmax(model, vocab, length, device=device)
    scores = rng.standard_normal((length, vocab))
    token_masses = TokenMasses(argmax, vocab, length)
    masses_at: dict[float, list[float]] = {}  # beta -> every token's p: the grid scans all tokens
    target_log = params["log10_p"]

    def log_p(t: int, beta: float) -> float:
        if token_masses.counts[t] == 0:
            return -300.0
        if beta not in masses_at:
            masses_at[beta] = token_masses(_token_probs(scores, beta))
        return math.log10(max(masses_at[beta][t], 1e-300))
    betas = np.geomspace(0.25, 64.0, 25)
    best = None  # (miss in decades, token, bracket)
    for t in range(vocab):
        curve = [log_p(t, b) for b in betas]
        for i in range(len(betas) - 1):
            lo_v, hi_v = curve[i] - target_log, curve[i + 1] - target_log
            if lo_v == 0 or lo_v * hi_v < 0:
                best = (0.0, t, (betas[i], betas[i + 1])) if best is None or best[0] > 0 else best
        j = int(np.argmin(np.abs(np.array(curve) - target_log)))
        miss = abs(curve[j] - target_log)
        if best is None or miss < best[0]:
            best = (miss, t, (betas[j], betas[j]))
    assert best is not None, "the temperature grid is not empty"
    _, target, (b_lo, b_hi) = best
    beta = b_lo if b_lo == b_hi else _brentq(lambda b: log_p(target, b) - target_log, b_lo, b_hi, xtol=1e-6)
    beta = round_sig(beta, 6)
    token_probs = _token_probs(scores, beta)
    p = token_masses(token_probs)[target]
    public = {"input_dist": "tokens", "vocab": vocab, "seq_len": length, "predicate": "argmax",
              "threshold": 0.0, "target": target, "output_dim": vocab, "n_layers": params["n_layers"],
              "width": params["width"], "n_heads": params["n_heads"]}
    info = {"beta": beta, "n_sequences": vocab ** length}
    # the count of near-ties depends on the float32 kernels (a gap within ~1e-6 of TIE_GAP); the argmax
    # and p do not
    return RareInstance("F3", "transformer", model, public, {"token_probs": token_probs},
                        round_sig(p, 12), info, diagnostics={"near_ties_recomputed": n_ties})


def make_instance(family: str, params: dict[str, Any], seed: int, device: str = "cpu") -> RareInstance:
    rng = np.random.default_rng(seed)
    if family in ("F1", "F2"):
        # A model whose output is flat at its maximum (dead units) makes p jump there, and the
        # requested decade may fall in the jump: draw the next model instead (deterministically).
        for attempt in range(_ATTEMPTS):
            inst = _relu_instance(params, rng, family)
            if inst.p > 0 and abs(math.log10(inst.p) - params["log10_p"]) <= 0.5:
                inst.info["attempt"] = attempt
                return inst
        raise RuntimeError(f"{family} {params}: no model within half a decade of the requested p "
                           f"in {_ATTEMPTS} draws")
    if family == "F3":
        return _transformer_instance(params, rng, device)
    raise ValueError(f"unknown family {family!r}")


def mlp_layer_count(model: dict[str, np.ndarray]) -> int:
    return len(mlp_layers(model))

"""The exact truth: region enumeration and sequence enumeration against closed forms and Monte Carlo."""
import math

import numpy as np
import pytest
from scipy.stats import norm

from benchmark.tasks.rare_behavior.generator import enumerate_argmax, make_instance, sequence_probabilities
from benchmark.tasks.rare_behavior.models import TorchTransformer, forward, transformer_arrays, transformer_forward
from benchmark.tasks.rare_behavior.regions import (Polygon, linear_regions, probability, root_cells)

_GL96 = np.polynomial.legendre.leggauss(96)


def _halfplane_mass(direction, t, nodes=None):
    cells = [c.clip(np.asarray(direction), -t) for c in root_cells(2, "gaussian")]
    kw = {} if nodes is None else {"nodes": nodes[0], "weights": nodes[1]}
    return math.fsum(c.gaussian_measure(**kw) for c in cells if c is not None)


@pytest.mark.parametrize("t", [0.5, 3.0, 5.5, 7.0])
def test_polygon_gaussian_mass_matches_the_normal_tail_to_ten_digits(t):
    u = np.array([0.28, -0.96])  # unit vector: P(u . z > t) = Phi(-t)
    assert _halfplane_mass(u, t) == pytest.approx(norm.sf(t), rel=1e-10)
    assert norm.sf(7.0) < 1.3e-12  # the deepest case is in the task's rarest decade


def test_polygon_mass_of_a_far_small_triangle_agrees_across_quadrature_orders():
    tri = Polygon(np.array([[5.0, 4.0], [5.3, 4.1], [5.1, 4.4]]))
    a, b = tri.gaussian_measure(), tri.gaussian_measure(*_GL96)
    assert 0 < a < 1e-9 and a == pytest.approx(b, rel=1e-12)
    # against a product-rule integral of the density over the triangle (fine grid, midpoint)
    xs = np.linspace(5.0, 5.3, 1201)
    ys = np.linspace(4.0, 4.4, 1601)
    gx, gy = np.meshgrid(0.5 * (xs[1:] + xs[:-1]), 0.5 * (ys[1:] + ys[:-1]))
    v = tri.vertices
    inside = np.ones_like(gx, dtype=bool)
    for i in range(3):
        (x0, y0), (x1, y1) = v[i], v[(i + 1) % 3]
        inside &= (x1 - x0) * (gy - y0) - (y1 - y0) * (gx - x0) >= 0
    grid = np.sum(np.exp(-0.5 * (gx ** 2 + gy ** 2)) * inside) / (2 * math.pi) * (xs[1] - xs[0]) * (ys[1] - ys[0])
    assert a == pytest.approx(grid, rel=2e-3)


def _random_mlp(rng, in_dim, widths, out_dim):
    dims = [in_dim, *widths, out_dim]
    return [(rng.standard_normal((dims[i + 1], dims[i])) / math.sqrt(max(dims[i], 1) / 2),
             rng.standard_normal(dims[i + 1]) * 0.3) for i in range(len(dims) - 1)]


def _as_arrays(layers):
    out = {}
    for i, (w, b) in enumerate(layers):
        out[f"w{i}"], out[f"b{i}"] = w, b
    return out


@pytest.mark.parametrize("dim, dist, classes", [(1, "gaussian", 1), (2, "gaussian", 1), (2, "gaussian", 3),
                                                (2, "box", 1), (2, "box", 4)])
def test_region_enumeration_matches_monte_carlo_at_moderate_p(dim, dist, classes):
    """Probabilities 1e-2 to 1e-4, where 4M samples pin p within a few percent (5 sigma)."""
    rng = np.random.default_rng(dim * 10 + classes)
    layers = _random_mlp(rng, dim, [10, 10], classes)
    regions = linear_regions(layers, root_cells(dim, dist))
    n = 1 << 22
    x = rng.standard_normal((n, dim)) if dist == "gaussian" else rng.uniform(-1, 1, (n, dim))
    out = forward("mlp", _as_arrays(layers), x)
    if classes == 1:
        for q in (1e-2, 1e-3, 1e-4):
            tau = float(np.quantile(out[:, 0], 1 - q))
            exact = probability(regions, "threshold", dist, threshold=tau)
            mc = float(np.mean(out[:, 0] > tau))
            assert abs(exact - mc) < 5 * math.sqrt(exact / n), (q, exact, mc)
    else:
        arg = out.argmax(axis=1)
        for t in range(classes):
            exact = probability(regions, "argmax", dist, target=t)
            mc = float(np.mean(arg == t))
            assert abs(exact - mc) < 5 * math.sqrt(max(exact, 1e-7) / n) + 1e-7, (t, exact, mc)


def test_f1_bottleneck_truth_matches_monte_carlo_in_the_full_dimension():
    """The model sees a 128-D Gaussian; the truth is computed in its 2-D bottleneck."""
    inst = make_instance("F1", {"input_dist": "gaussian", "dim": 128, "rank": 2, "hidden_layers": 2, "width": 12,
                                "classes": 3, "log10_p": -2.5}, seed=3)
    assert math.log10(inst.p) == pytest.approx(-2.5, abs=0.5)
    rng = np.random.default_rng(0)
    hits, n = 0, 0
    for _ in range(8):
        x = rng.standard_normal((1 << 18, 128))
        hits += int(np.sum(forward("mlp", inst.model, x).argmax(axis=1) == inst.public["target"]))
        n += len(x)
    assert abs(hits / n - inst.p) < 5 * math.sqrt(inst.p / n)
    w0 = inst.model["w0"]
    assert np.linalg.matrix_rank(w0, tol=1e-9 * np.abs(w0).max()) == 2


def test_f3_enumeration_matches_monte_carlo_and_float64():
    """Enumerated argmax equals the float64 forward on every sequence; p matches sampling."""
    inst = make_instance("F3", {"vocab": 4, "length": 6, "n_layers": 2, "width": 16, "n_heads": 2,
                                "log10_p": -2.5}, seed=5)
    vocab, length = 4, 6
    arg, _ = enumerate_argmax(inst.model, vocab, length, batch=1000)
    seqs = (np.arange(vocab ** length)[:, None] // vocab ** np.arange(length - 1, -1, -1)) % vocab
    assert np.array_equal(arg, transformer_forward(inst.model, seqs).argmax(axis=1))
    probs = inst.public_arrays["token_probs"]
    assert np.allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-15)
    target = inst.public["target"]
    assert inst.p == pytest.approx(math.fsum(sequence_probabilities(probs, np.flatnonzero(arg == target))), rel=1e-11)
    rng = np.random.default_rng(1)
    n = 1 << 18
    sample = np.stack([rng.choice(vocab, size=n, p=probs[j]) for j in range(length)], axis=1)
    mc = float(np.mean(transformer_forward(inst.model, sample).argmax(axis=1) == target))
    assert abs(mc - inst.p) < 5 * math.sqrt(inst.p / n)


def test_torch_enumeration_model_agrees_with_the_float64_reference():
    import torch

    rng = np.random.default_rng(0)
    arrays = transformer_arrays(rng, 8, 7, 32, 2, 4)
    tokens = rng.integers(0, 8, (500, 7))
    ref = transformer_forward(arrays, tokens)
    fast = TorchTransformer(arrays)(torch.as_tensor(tokens)).numpy()
    assert np.abs(ref - fast).max() < 1e-4  # well under the 1e-3 gap that triggers a float64 recompute


@pytest.mark.parametrize("family, params", [
    ("F1", {"input_dist": "gaussian", "dim": 64, "rank": 1, "hidden_layers": 0, "width": 8, "classes": 1,
            "log10_p": -11.0}),
    ("F2", {"input_dist": "box", "dim": 2, "hidden_layers": 2, "width": 8, "classes": 1, "log10_p": -9.0}),
    ("F2", {"input_dist": "box", "dim": 4, "hidden_layers": 2, "width": 6, "classes": 3, "log10_p": -6.0}),
    ("F2", {"input_dist": "box", "dim": 6, "hidden_layers": 1, "width": 8, "classes": 1, "log10_p": -10.0}),
])
def test_generation_is_deterministic_and_lands_near_the_requested_decade(family, params):
    a, b = make_instance(family, params, 11), make_instance(family, params, 11)
    assert a.p == b.p and all(np.array_equal(a.model[k], b.model[k]) for k in a.model)
    assert math.log10(a.p) == pytest.approx(params["log10_p"], abs=0.5)
    if family == "F1":  # a linear score: p = Phi(-(tau - b) / |w|) in closed form
        w, bias = a.model["w0"][0], a.model["b0"][0]
        assert a.p == pytest.approx(norm.sf((a.public["threshold"] - bias) / np.linalg.norm(w)), rel=1e-6)

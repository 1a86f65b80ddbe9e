import numpy as np

from benchmark.stats import aggregate, bootstrap_ci
from benchmark.task import get_task


def test_bootstrap_interval_brackets_the_mean():
    x = np.random.default_rng(0).normal(0.5, 0.1, size=50)
    point, lo, hi = bootstrap_ci(x)
    assert lo < point < hi
    assert abs(point - x.mean()) < 1e-12
    assert 0.02 < hi - lo < 0.1  # about 2 * 1.96 * 0.1 / sqrt(50) = 0.055


def test_single_instance_has_a_degenerate_interval():
    assert bootstrap_ci([0.3]) == (0.3, 0.3, 0.3)


def test_aggregate_counts_failures_at_the_worst_value_and_per_group():
    meta = get_task("planted-features").metadata
    ok = {m.name: 1.0 for m in meta.metrics}
    failed = {m.name: m.worst for m in meta.metrics}
    rows = [{"group": "T1", "metrics": ok}, {"group": "T1", "metrics": failed}, {"group": "T2", "metrics": ok}]
    out = aggregate(meta, rows)
    assert out["metrics"]["recall@0.9"]["value"] == 2 / 3
    assert out["groups"]["T1"]["recall@0.9"] == 0.5 and out["groups"]["T1"]["n"] == 2
    assert out["groups"]["T2"]["recall@0.9"] == 1.0


def test_metrics_that_do_not_apply_are_skipped_not_zeroed():
    meta = get_task("planted-features").metadata
    full = {m.name: 0.5 for m in meta.metrics}
    rows = [{"group": "T1", "metrics": full},
            {"group": "T2", "metrics": {**full, "mmcs": None}}]
    out = aggregate(meta, rows)
    assert out["metrics"]["mmcs"] == {"value": 0.5, "ci_low": 0.5, "ci_high": 0.5, "n": 1}
    assert out["groups"]["T2"]["mmcs"] is None and out["groups"]["T2"]["recall@0.9"] == 0.5
    assert out["metrics"]["recall@0.9"]["n"] == 2

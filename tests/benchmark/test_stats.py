import numpy as np
import pytest

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


def test_auroc_aggregation_reads_the_class_from_the_details():
    """An 'auroc' metric is the Mann-Whitney AUROC of its per-instance scores against the 0/1 class
    in each row's details (sklearn agrees), overall and per group; undefined with one class."""
    from sklearn.metrics import roc_auc_score

    from benchmark.metadata import Metric, TaskMetadata

    base = get_task("planted-features").metadata.model_dump()
    meta = TaskMetadata(**{**base, "metrics": [
        Metric(name="err", description="e", higher_is_better=False, best=0, worst=1),
        Metric(name="auc", description="a", higher_is_better=True, best=1, worst=0, aggregation="auroc", label="cls")],
        "headline": "err", "plots": []})
    rng = np.random.default_rng(1)
    cls = rng.integers(0, 2, 40)
    score = np.round(cls + rng.normal(size=40), 1)   # rounded: ties count one half
    rows = [{"group": "g" if i < 20 else "h", "metrics": {"err": 0.5, "auc": float(score[i])},
             "details": {"cls": int(cls[i])}} for i in range(40)]
    rows.append({"group": "h", "metrics": {"err": 1.0, "auc": None}, "details": None})  # no score: skipped
    out = aggregate(meta, rows)
    auc = out["metrics"]["auc"]
    assert auc["value"] == pytest.approx(roc_auc_score(cls, score)) and auc["n"] == 40
    assert auc["ci_low"] < auc["value"] < auc["ci_high"]
    assert out["groups"]["g"]["auc"] == pytest.approx(roc_auc_score(cls[:20], score[:20]))
    one_class = [{"group": "g", "metrics": {"err": 0.0, "auc": 1.0}, "details": {"cls": 1}}] * 3
    assert aggregate(meta, one_class)["metrics"]["auc"] == {"value": None, "ci_low": None, "ci_high": None, "n": 3}
    with pytest.raises(ValueError, match="needs a label"):
        Metric(name="auc", description="a", higher_is_better=True, best=1, worst=0, aggregation="auroc")


def test_breakdown_slices_by_a_detail_key_with_each_metrics_own_aggregation():
    """rare-behavior's decade breakdown: every instance lands in the slice its details name (failed
    ones too, at their worst values), slices come in numeric order, and each metric is aggregated
    as declared (is_loss: median)."""
    meta = get_task("rare-behavior").metadata
    assert [b.name for b in meta.breakdowns] == ["decade"]
    worst = {m.name: m.worst for m in meta.metrics}

    def row(decade, pinball, is_loss, covered, failed=False):
        metrics = worst if failed else {"pinball": pinball, "estimate_error": 0.0, "is_loss": is_loss,
                                        "coverage": covered}
        return {"group": "F1", "metrics": metrics, "details": {"decade": decade, "p_true": 10.0 ** decade}}
    rows = [row(-10, 0.1, 1.0, 1.0), row(-10, 0.3, 2.0, 0.0), row(-10, 0.2, 9.0, 1.0),
            row(-3, 0.0, 0.0, 1.0), row(-3, 0, 0, 0, failed=True),
            {"group": "F1", "metrics": worst, "details": None}]   # no decade: in no slice
    out = aggregate(meta, rows)
    decades = out["breakdowns"]["decade"]
    assert list(decades) == ["-10", "-3"]
    assert decades["-10"]["n"] == 3 and decades["-3"]["n"] == 2
    assert decades["-10"]["pinball"] == pytest.approx(0.2)
    assert decades["-10"]["is_loss"] == 2.0                  # the median, not the mean (4.0)
    assert decades["-10"]["coverage"] == pytest.approx(2 / 3)
    assert decades["-3"]["pinball"] == pytest.approx(meta.metric("pinball").worst / 2)
    assert out["n_instances"] == 6


def test_tasks_without_breakdowns_store_no_breakdown_key():
    meta = get_task("planted-features").metadata
    assert not meta.breakdowns
    rows = [{"group": "T1", "metrics": {m.name: 0.5 for m in meta.metrics}}]
    assert "breakdowns" not in aggregate(meta, rows)

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


# --- stratified resampling, declared aggregation, skill against a floor (issue 15) -----------------
def _metric(**kw):
    from benchmark.metadata import Metric
    return Metric(**{"name": "m", "description": "d", "higher_is_better": True, "best": 1.0, "worst": 0.0, **kw})


def test_stratified_resamples_keep_every_groups_size():
    from benchmark.stats import resample_indices

    strata = ["a"] * 3 + ["b"] * 17
    draws = resample_indices(20, 500, 1, strata)
    assert ((draws[:, :3] < 3).all() and (draws[:, 3:] >= 3).all())
    # unstratified draws do not: some resamples have no instance of the small group at all
    plain = resample_indices(20, 500, 1)
    assert ((plain < 3).sum(axis=1) == 0).any()


def test_stratification_removes_between_group_spread_from_the_interval():
    # two groups far apart, no spread inside each: only stratified resampling knows the mean exactly
    values = [0.0] * 10 + [1.0] * 10
    groups = ["easy"] * 10 + ["hard"] * 10
    _, lo, hi = bootstrap_ci(values, strata=groups)
    assert lo == hi == 0.5
    _, lo, hi = bootstrap_ci(values)
    assert hi - lo > 0.3


def test_paired_difference_uses_the_declared_median_not_the_mean_of_differences():
    """The compare page once averaged per-instance differences for a median metric and declared a
    winner: here A's mean is far better (one huge value) but the medians are equal."""
    from benchmark.stats import paired_difference

    a = [0.0] * 9 + [100.0] * 2 + [0.0] * 9
    b = [0.0] * 20
    pairs = list(zip(a, b))
    mean = paired_difference(pairs, "mean")
    median = paired_difference(pairs, "median")
    assert mean.diff == pytest.approx(10.0)
    assert median.diff == 0.0 and not median.significant and median.aggregation == "median"


def test_paired_difference_of_aurocs_reads_the_labels():
    from benchmark.stats import paired_difference

    labels = [0, 1] * 20
    a = [float(y) for y in labels]                 # separates perfectly: AUROC 1
    b = [0.5] * 40                                 # constant: AUROC 0.5
    d = paired_difference(list(zip(a, b)), "auroc", labels=labels)
    assert d.value_a == 1.0 and d.value_b == 0.5 and d.diff == 0.5 and d.significant


def test_skill_is_zero_at_the_floor_one_at_the_best_and_direction_free():
    from benchmark.stats import skill_against_floor

    ids = [f"i{k}" for k in range(30)]
    rng = np.random.default_rng(3)
    floor = {i: float(v) for i, v in zip(ids, rng.uniform(0.2, 0.4, 30))}
    assert skill_against_floor(floor, floor, _metric()).value == 0.0
    perfect = {i: 1.0 for i in ids}
    s = skill_against_floor(perfect, floor, _metric())
    assert s.value == 1.0 and s.beats_floor
    # a loss (lower is better, best 0): halving the floor's loss is skill 0.5, whatever the scale
    loss = _metric(higher_is_better=False, best=0.0, worst=10.0)
    half = {i: v / 2 for i, v in floor.items()}
    s = skill_against_floor(half, floor, loss)
    assert s.value == pytest.approx(0.5) and s.ci_low > 0 and s.gain.diff > 0
    worse = {i: v * 2 for i, v in floor.items()}
    s = skill_against_floor(worse, floor, loss)
    assert s.value == pytest.approx(-1.0) and s.ci_high < 0 and not s.beats_floor and s.gain.diff < 0


def test_skill_only_over_shared_instances_and_none_when_the_floor_is_perfect():
    from benchmark.stats import skill_against_floor

    s = skill_against_floor({"a": 1.0, "b": 0.0}, {"a": 0.5}, _metric())
    assert s.n == 1 and s.value == 1.0
    assert skill_against_floor({"a": 1.0}, {"a": 1.0}, _metric()).value is None


def test_unranked_groups_are_group_rows_but_not_in_the_overall_metrics():
    meta = get_task("planted-features").metadata
    meta = meta.model_copy(update={"unranked_groups": ["T2"], "unranked_because": "published data"})
    ok = {m.name: 1.0 for m in meta.metrics}
    zero = {m.name: 0.0 for m in meta.metrics}
    out = aggregate(meta, [{"group": "T1", "metrics": zero}, {"group": "T2", "metrics": ok}])
    assert out["metrics"]["recall@0.9"]["value"] == 0.0 and out["n_instances"] == 2 and out["n_unranked"] == 1
    assert out["metrics"]["recall@0.9"]["n"] == 1
    assert out["groups"]["T2"]["recall@0.9"] == 1.0


def test_unranked_groups_must_be_groups_and_say_why():
    from pydantic import ValidationError

    from benchmark.metadata import TaskMetadata

    base = get_task("planted-features").metadata.model_dump()
    with pytest.raises(ValidationError, match="not among the groups"):
        TaskMetadata(**{**base, "unranked_groups": ["nope"], "unranked_because": "x"})
    with pytest.raises(ValidationError, match="say why"):
        TaskMetadata(**{**base, "unranked_groups": [base["groups"][0]]})

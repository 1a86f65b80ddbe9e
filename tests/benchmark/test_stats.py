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


# --- rank intervals against the straightforward implementation ----------------------------------
# The leaderboard's rank intervals are computed by a faster route (one sort per resample on a
# contiguous copy, order statistics read from rank counts, ties decided by counting): it must give
# exactly what the plain route gives: scipy's rankdata over the resamples, np.quantile of the ranks
# and of the paired differences, the bootstrap statistic by two full matrix products.
def _reference_value_matrix(per_instance, groups):
    import math
    ids = sorted({i for d in per_instance for i in d})
    col = {iid: k for k, iid in enumerate(ids)}
    values = np.full((len(per_instance), len(ids)), np.nan)
    for r, d in enumerate(per_instance):
        for iid, v in d.items():
            if v is not None and math.isfinite(v):
                values[r, col[iid]] = v
    strata = None if groups is None else [groups.get(i) for i in ids]
    return values, ~np.isnan(values), strata


def _reference_boot_stat(values, mask, draws, aggregation, counts=None):
    from benchmark.stats import _draw_counts, _nan_median_last
    rows, n = values.shape
    if aggregation == "median":
        out = np.empty((rows, draws.shape[0]))
        masked = np.where(mask, values, np.nan)
        for start in range(0, draws.shape[0], 64):
            out[:, start:start + 64] = _nan_median_last(masked[:, draws[start:start + 64]])
        return out
    counts = _draw_counts(draws, n) if counts is None else counts
    filled = np.where(mask, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (filled @ counts.T) / (mask.astype(float) @ counts.T)


def _reference_rank_intervals(per_instance, higher_is_better, aggregation="mean", n_boot=2000,
                              seed=20250101, level=0.95, groups=None):
    from scipy.stats import rankdata

    from benchmark.stats import RankInterval, _draw_counts, resample_indices
    rows = len(per_instance)
    if rows == 0:
        return []
    values, mask, strata = _reference_value_matrix(per_instance, groups)
    if values.shape[1] == 0:
        return [RankInterval(1, rows) for _ in range(rows)]
    draws = resample_indices(values.shape[1], n_boot, seed, strata)
    counts = None if aggregation == "median" else _draw_counts(draws, values.shape[1])
    stat = _reference_boot_stat(values, mask, draws, aggregation, counts)
    score = stat if higher_is_better else -stat
    score = np.where(np.isnan(score), -np.inf, score)
    ranks = rankdata(-score, method="min", axis=0)
    alpha = (1 - level) / 2
    low_q, high_q = np.quantile(ranks, [alpha, 1 - alpha], axis=1)
    lows, highs = np.floor(low_q).astype(int), np.ceil(high_q).astype(int)
    tied = [False] * rows
    if rows > 1:
        shared = mask[1:] & mask[:-1]
        pairs = np.concatenate([np.where(shared, values[1:], np.nan), np.where(shared, values[:-1], np.nan)])
        stats = _reference_boot_stat(pairs, np.concatenate([shared, shared]), draws, aggregation, counts)
        diffs = stats[:rows - 1] - stats[rows - 1:]
        bounds = np.full((rows - 1, 2), np.nan)
        for r in range(rows - 1):
            d = diffs[r][~np.isnan(diffs[r])]
            if d.size:
                bounds[r] = np.quantile(d, [alpha, 1 - alpha])
        for r in range(1, rows):
            lo, hi = bounds[r - 1]
            tied[r] = bool(np.isnan(lo) or lo <= 0.0 <= hi)
    return [RankInterval(int(lo), int(hi), t) for lo, hi, t in zip(lows, highs, tied)]


def _board(rng, rows, n, *, levels=None, missing=0.0, none=0.0, inf=0.0, empty_rows=0, copies=0):
    """Rows of {instance: value}: values from a few levels (ties), some instances missing or None
    or infinite, some rows with no value at all, some rows exact copies of others."""
    base = rng.uniform(0, 1, rows)[:, None] + rng.normal(0, 0.3, (rows, n))
    if levels:
        base = np.round(base * levels) / levels
    out = []
    for r in range(rows):
        d: dict[str, float | None] = {}
        for k in range(n):
            u = rng.uniform()
            if u < missing:
                continue
            d[f"i{k:03d}"] = None if u < missing + none else (np.inf if u < missing + none + inf else float(base[r, k]))
        out.append(d)
    for r in rng.choice(rows, size=min(empty_rows, rows), replace=False):
        out[r] = {k: None for k in out[r]}
    for _ in range(copies):
        out[rng.integers(rows)] = dict(out[rng.integers(rows)])
    return out


CASES = [
    # rows, n, n_boot, level, board options, strata
    (12, 30, 2000, 0.95, {}, False),
    (40, 25, 2000, 0.95, {"levels": 4, "copies": 6}, True),
    (25, 20, 500, 0.9, {"levels": 2, "missing": 0.2, "none": 0.1, "inf": 0.02, "empty_rows": 2}, True),
    (30, 8, 301, 0.8, {"levels": 3, "missing": 0.5}, False),           # pairs that share nothing
    (60, 15, 25, 0.95, {"levels": 5, "copies": 10}, True),             # more rows than resamples
    (7, 40, 1, 0.95, {"levels": 3}, False),
    (9, 12, 2, 0.5, {"levels": 2, "none": 0.3}, True),
    (150, 30, 2000, 0.95, {"levels": 20, "copies": 30, "missing": 0.05}, True),
]


@pytest.mark.parametrize("case", range(len(CASES)))
@pytest.mark.parametrize("aggregation", ["mean", "median"])
def test_rank_intervals_equal_the_reference(case, aggregation):
    from benchmark.stats import rank_intervals
    rows, n, n_boot, level, options, stratified = CASES[case]
    rng = np.random.default_rng(100 + case)
    per = _board(rng, rows, n, **options)
    groups = None
    if stratified:
        groups = {f"i{k:03d}": ("T1", "T2", "T3")[k % 3] for k in range(n)}
    if aggregation == "median" and rows * n * n_boot > 2_000_000:
        n_boot = 200          # the reference's median is slow; the fast route is the same code
    for higher in (True, False):
        for seed in (20250101, 7):
            got = rank_intervals(per, higher, aggregation, n_boot, seed, level, groups)
            want = _reference_rank_intervals(per, higher, aggregation, n_boot, seed, level, groups)
            assert got == want, (case, aggregation, higher, seed)
    ivs = rank_intervals(per, True, aggregation, n_boot, 20250101, level, groups)
    assert any(iv.low != iv.high for iv in ivs) or rows * n_boot < 100


def test_rank_intervals_equal_the_reference_at_leaderboard_size():
    from benchmark.stats import rank_intervals
    rng = np.random.default_rng(5)
    per = _board(rng, 400, 100, levels=50, copies=40, missing=0.01)
    groups = {f"i{k:03d}": f"T{k % 4}" for k in range(100)}
    got = rank_intervals(per, True, groups=groups)
    assert got == _reference_rank_intervals(per, True, groups=groups)
    assert sum(iv.tied_with_previous for iv in got) > 10 and sum(not iv.tied_with_previous for iv in got) > 10


def test_boot_stat_is_bit_identical_to_the_two_products():
    from benchmark.stats import _boot_stat, _draw_counts, resample_indices
    rng = np.random.default_rng(11)
    values = rng.normal(size=(50, 40))
    mask = rng.uniform(size=values.shape) > 0.1
    mask[:20] = True                                   # many rows share one mask
    draws = resample_indices(40, 300, 3)
    got = _boot_stat(values, mask, draws, "mean", _draw_counts(draws, 40))
    want = _reference_boot_stat(values, mask, draws, "mean")
    assert got.tobytes() == want.tobytes()


def test_rank_bounds_are_the_quantiles_of_rankdata():
    from scipy.stats import rankdata

    from benchmark.stats import _rank_bounds
    rng = np.random.default_rng(12)
    for rows, n_boot, alpha in [(30, 2000, 0.025), (200, 50, 0.05), (5, 7, 0.25), (1, 3, 0.025), (40, 1, 0.025)]:
        score = np.round(rng.normal(size=(rows, n_boot)), 1)
        score[rng.uniform(size=score.shape) < 0.05] = -np.inf
        low_q, high_q = np.quantile(rankdata(-score, method="min", axis=0), [alpha, 1 - alpha], axis=1)
        lows, highs = _rank_bounds(score, alpha)
        assert lows.tolist() == np.floor(low_q).astype(int).tolist()
        assert highs.tolist() == np.ceil(high_q).astype(int).tolist()


def test_lerp_of_order_statistics_is_numpy_quantile():
    from benchmark.stats import _lerp, _quantile_neighbours
    rng = np.random.default_rng(13)
    for n in [1, 2, 3, 7, 40, 301, 2000]:
        x = np.sort(rng.integers(1, 60, size=(n, 30)), axis=0)
        for q in [0.0, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.975, 1.0]:
            a, b, t = _quantile_neighbours(n, q)
            got = _lerp(x[a].astype(float), x[b].astype(float), t)
            assert got.tobytes() == np.quantile(x, q, axis=0).tobytes(), (n, q)


def test_interval_covers_zero_decides_as_the_quantiles_do():
    from benchmark.stats import _interval_covers_zero, _quantile_neighbours
    rng = np.random.default_rng(14)
    for n, alpha in [(2000, 0.025), (301, 0.1), (40, 0.025), (3, 0.25), (1, 0.025)]:
        # small integers around 0: many rows whose quantile neighbours straddle or touch 0
        diffs = rng.integers(-3, 4, size=(400, n)) + rng.integers(-6, 7, size=(400, 1))
        diffs = diffs.astype(float) * rng.choice([1.0, 1e-300, 1e300], size=(400, 1))
        diffs[::7] = np.where(diffs[::7] == 0, -0.0, diffs[::7])
        # rows with k values below 0 and the rest above (or at) it, k around each neighbour
        edges = []
        for pos in (*_quantile_neighbours(n, alpha)[:2], *_quantile_neighbours(n, 1 - alpha)[:2]):
            for k in range(max(pos - 1, 0), min(pos + 3, n + 1)):
                for above in (0.0, 2.0, 1e-300):
                    edges.append(rng.permutation(np.r_[rng.uniform(-3, -1e-3, k), np.full(n - k, above)]))
        diffs = np.concatenate([diffs, edges])
        lo, hi = np.quantile(diffs, [alpha, 1 - alpha], axis=1)
        want = np.isnan(lo) | ((lo <= 0.0) & (0.0 <= hi))
        got = _interval_covers_zero(diffs, alpha)
        assert got.tolist() == want.tolist(), (n, alpha)
        assert want.any() and not want.all()
        # and rows whose interpolated bound sits strictly between a negative and a positive value
        ordered = np.sort(diffs, axis=1)
        a, b, t = _quantile_neighbours(n, alpha)
        assert n < 10 or t == 0 or ((ordered[:, a] < 0) & (ordered[:, b] > 0)).any(), (n, alpha)

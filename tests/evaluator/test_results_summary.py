"""The stored summary of an evaluation: what ``benchmark.stats.aggregate`` writes is validated by the
model before it is stored, and every stored row (older formats, odd shapes, a newer format) reads
through the same model."""
from __future__ import annotations

import math

import numpy as np
import pytest

import evaluator.runner
from benchmark.stats import aggregate
from benchmark.task import get_task
from evaluator.results.summary import RECORD_FORMAT, EvaluationSummary, SummaryError
from evaluator.runner import evaluate_submission
from evaluator.sandbox import NoSandbox
from evaluator.store import EvaluationStatus
from evaluator.submission import load_submission
from tests.builders import write_submission


def _rows(meta, n: int, details) -> list[dict]:
    rng = np.random.default_rng(0)
    return [{"group": meta.groups[i % len(meta.groups)], "details": details(i),
             "metrics": {m.name: float(rng.integers(0, 2)) if m.nominal_rate else float(rng.random())
                         for m in meta.metrics}} for i in range(n)]


@pytest.mark.parametrize("task, details", [
    # AUROC metric (labelled by a detail) and an architecture breakdown
    ("grokking-onset", lambda i: {"censored": i % 3 == 0, "architecture": "mlp" if i % 2 else "transformer"}),
    # a median metric, a coverage with its nominal-rate test, a numeric breakdown
    ("rare-behavior", lambda i: {"decade": float(-(i % 4))}),
])
def test_what_aggregate_writes_is_stored_exactly_as_it_came(task, details):
    meta = get_task(task).metadata
    raw = aggregate(meta, _rows(meta, 24, details))
    summary = EvaluationSummary.for_storage(raw)
    assert summary.to_stored() == raw
    # the reader of the stored JSON sees the same summary the writer validated
    assert EvaluationSummary.from_stored(summary.to_stored(), RECORD_FORMAT) == summary
    assert summary.breakdowns and all(m.n for m in summary.metrics.values())


def test_the_optional_fields_of_a_nominal_rate_metric_are_typed():
    meta = get_task("rare-behavior").metadata
    summary = EvaluationSummary.for_storage(aggregate(meta, _rows(meta, 24, lambda i: {"decade": -1.0})))
    coverage = summary.metrics["coverage"]
    assert coverage.nominal == 0.95 and isinstance(coverage.below_nominal, bool) and 0 <= (coverage.binom_p or 0) <= 1
    assert "below_nominal" not in summary.to_stored()["metrics"]["pinball"]


@pytest.mark.parametrize("change, field", [
    (lambda s: s["metrics"]["m"].update(value=math.nan), "metrics.m.value"),
    (lambda s: s["metrics"]["m"].update(ci_low="0.4"), "metrics.m.ci_low"),
    (lambda s: s["groups"]["T1"].update(m=math.inf), "groups.T1.m"),
    (lambda s: s["groups"]["T1"].update(n=2.5), "groups.T1.n"),
    (lambda s: s["metrics"]["m"].update(stderr=0.1), "metrics.m.stderr"),
    (lambda s: s.update(n_instances=True), "n_instances"),
])
def test_a_summary_off_the_schema_is_not_stored(change, field):
    raw = {"n_instances": 3, "metrics": {"m": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 3}},
           "groups": {"T1": {"n": 3, "m": 0.5}}}
    change(raw)
    with pytest.raises(SummaryError, match=f"{field}: "):
        EvaluationSummary.for_storage(raw)


def test_a_headline_missing_from_the_summary_is_not_stored(sqlite_store):
    sub = sqlite_store.upsert_submission("x", "c" * 64, None, {})
    ev = sqlite_store.start_evaluation(
        submission_id=sub, task="planted-features", task_version=1, split="dev", dataset_revision="r",
        evaluator_version="0", sandbox="none", device="cpu", hardware={}, library_versions={},
        headline_metric="recall@0.9")
    summary = EvaluationSummary.for_storage({"n_instances": 0, "metrics": {}, "groups": {}})
    with pytest.raises(SummaryError, match=r"metrics\.recall@0\.9: the headline metric is missing"):
        sqlite_store.finish_evaluation(ev, EvaluationStatus.COMPLETE, summary, "recall@0.9", 0, 1.0)
    assert sqlite_store.evaluation(ev).status == EvaluationStatus.RUNNING


def test_an_evaluation_whose_summary_is_off_the_schema_fails_and_is_not_a_result(tmp_path, tiny_split, sqlite_store,
                                                                                 monkeypatch):
    def nan_headline(meta, rows, hidden=False):
        out = aggregate(meta, rows, hidden=hidden)
        out["metrics"][meta.headline]["value"] = math.nan
        return out
    monkeypatch.setattr(evaluator.runner, "aggregate", nan_headline)
    sub = load_submission(write_submission(tmp_path, code="def run(problem):\n    raise RuntimeError('no')\n"))
    with pytest.raises(SummaryError, match="recall@0.9.value"):
        evaluate_submission(sub, get_task("planted-features"), tiny_split, NoSandbox(), sqlite_store)
    [row] = sqlite_store.evaluations_of(sub.name)
    assert row.evaluation.status == EvaluationStatus.FAILED and "not storable" in (row.evaluation.note or "")


def test_a_format_1_row_reads():
    """Format 1 predates breakdowns, unranked groups and, in the oldest rows, the per-metric ``n``."""
    raw = {"n_instances": 4, "metrics": {"recall@0.9": {"value": 0.5, "ci_low": 0.25, "ci_high": 0.75}},
           "groups": {"T1": {"n": 2, "recall@0.9": 0.5}, "T2": {"n": 2, "recall@0.9": 0.5}}}
    summary = EvaluationSummary.from_stored(raw, 1)
    assert summary.record_format == 1 and not summary.newer_format
    assert summary.metric_block() == {"recall@0.9": {"value": 0.5, "ci_low": 0.25, "ci_high": 0.75}}
    assert summary.metrics["recall@0.9"].n is None
    assert summary.group_block()["T1"] == {"n": 2, "recall@0.9": 0.5}
    assert summary.breakdown_blocks() == {} and summary.n_ranked == 4
    # a row with no record format at all (hand-made) reads as format 1
    assert EvaluationSummary.from_stored(raw, None).record_format == 1


def test_odd_shapes_nan_and_strings_read_as_none():
    raw = {
        "n_instances": "many",
        "metrics": {"bare": 0.5, "nan": {"value": math.nan, "ci_low": "n/a", "ci_high": math.inf, "n": "3"},
                    "text": "n/a", "flag": {"value": True, "below_nominal": "yes"}, "numeric-text": {"value": "0.25"}},
        "groups": {"T1": {"n": -1, "m": "n/a", "k": math.nan, "ok": 0.5}, "T2": [1, 2], "T3": None},
        "breakdowns": {"size": {"small": {"n": 2, "m": 0.1}, "odd": "x"}, "broken": [1]},
    }
    summary = EvaluationSummary.from_stored(raw, RECORD_FORMAT)
    assert summary.n_instances is None and summary.n_ranked == 0
    assert summary.metric_block() == {
        "bare": {"value": 0.5, "ci_low": None, "ci_high": None},
        "nan": {"value": None, "ci_low": None, "ci_high": None},
        "text": {"value": None, "ci_low": None, "ci_high": None},
        "flag": {"value": None, "ci_low": None, "ci_high": None},
        "numeric-text": {"value": 0.25, "ci_low": None, "ci_high": None},   # as float("0.25") reads it
    }
    assert summary.metrics["nan"].n == 3 and summary.metrics["flag"].below_nominal is None
    assert summary.group_block() == {"T1": {"n": None, "m": None, "k": None, "ok": 0.5}}
    assert summary.breakdown_blocks() == {"size": {"small": {"n": 2, "m": 0.1}}}


@pytest.mark.parametrize("raw", [None, [], "summary", 3, {"metrics": [1, 2], "groups": "g", "breakdowns": 7}])
def test_a_summary_that_is_not_an_object_reads_as_empty(raw):
    summary = EvaluationSummary.from_stored(raw, RECORD_FORMAT)
    assert summary.metrics == {} and summary.groups == {} and summary.breakdowns == {}


def test_a_newer_format_is_reported_and_what_it_shares_still_reads():
    raw = {"n_instances": 2, "calibration": {"ece": 0.1},
           "metrics": {"m": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6, "n": 2, "ci_method": "bca"}},
           "groups": {"T1": {"n": 2, "m": 0.5}}}
    summary = EvaluationSummary.from_stored(raw, RECORD_FORMAT + 1)
    assert summary.newer_format and summary.record_format == RECORD_FORMAT + 1
    assert summary.metric_block() == {"m": {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6}}
    # what this reader does not know is left out, not guessed at
    assert "calibration" not in summary.to_stored() and "ci_method" not in summary.to_stored()["metrics"]["m"]

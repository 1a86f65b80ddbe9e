"""The evaluation report (the pull-request comment's data) names failed instances on a public split
and only counts them on the hidden one: which instance failed, and its error, are the test split's."""
from evaluator.results.report import build_report
from evaluator.store import ResultsStore
from tests.leaderboard.conftest import make_evaluation


def test_failures_are_listed_on_dev_and_only_counted_on_the_hidden_split(store):
    for split in ("dev", "test"):
        make_evaluation(store, name="m", split=split, headline=0.5, status="partial",
                        instances=[{"instance_id": f"{split}-secret-1", "group": "T0", "status": "invalid",
                                    "metrics": {"recall@0.9": 0.0}, "runtime_s": 1.0,
                                    "error": "expected 37 features, got 12"},
                                   {"instance_id": f"{split}-secret-2", "group": "T1", "status": "timeout",
                                    "metrics": {"recall@0.9": 0.0}, "runtime_s": 9.0, "error": "wall time"}])
    dev = build_report(ResultsStore(store.engine), ["m"], "dev")
    assert [f.instance for f in dev.failures] == ["dev-secret-1", "dev-secret-2"]
    test = build_report(ResultsStore(store.engine), ["m"], "test")
    text = test.model_dump_json()
    assert "secret" not in text and "37 features" not in text
    assert [(f.instance, f.status) for f in test.failures] == [("(2 on the test split)", "invalid: 1, timeout: 1")]

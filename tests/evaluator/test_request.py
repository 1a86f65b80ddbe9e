"""The evaluation request: what it accepts, how it names what it refuses, what it evaluates."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from benchmark.task import get_task
from evaluator.request import (EvaluationRequest, Evaluated, LimitOverrides, MachineUnfit, NotEvaluated,
                               evaluate_request, first_error)
from evaluator.sandbox import NoSandbox
from tests.builders import build_tiny_split, write_submission


@pytest.mark.parametrize("fields, where, says", [
    ({"tasks": ["planted-featurez"]}, "tasks", "did you mean 'planted-features'"),
    ({"split": "validation"}, "split", "the splits are train, dev, test"),
    ({"sandbox": "bwarp"}, "sandbox", "did you mean 'bwrap'"),
    ({"data_repo": "org/tasks@main"}, "data_repo", "pinned revision"),
    ({"workers": 0}, "workers", "greater than or equal to 1"),
    ({"limits": {"output_mb": 0}}, "limits.output_mb", "greater than 0"),
    ({"limits": {"cpu_s": 3}}, "limits.cpu_s", "Extra inputs are not permitted"),
    ({"data_dir": "/d", "data_repo": "org/t@" + "0" * 40}, "", "--data-dir or --data-repo, not both"),
    ({"device": "cuda", "workers": 2}, "", "--workers above 1 is for --device cpu"),
    ({"submissions": []}, "submissions", "at least 1 item"),
])
def test_an_invalid_request_names_the_field(fields, where, says):
    with pytest.raises(ValidationError) as exc:
        EvaluationRequest.model_validate({"submissions": ["s"], **fields})
    assert first_error(exc.value)[0] == where and says in first_error(exc.value)[1]


def test_limit_overrides_replace_only_what_they_give():
    limits = get_task("planted-features").metadata.limits
    out = LimitOverrides(memory_mb=123).apply(limits)
    assert out.memory_mb == 123 and out.wall_time_s == limits.wall_time_s and out.output_mb == limits.output_mb


def test_a_request_yields_each_result_and_each_reason(tmp_path, sqlite_store):
    data = tmp_path / "data"
    build_tiny_split(data, n_instances=1)
    good = write_submission(tmp_path / "subs", name="good")
    bad = write_submission(tmp_path / "subs", name="bad", entry="method:missing")
    other = write_submission(tmp_path / "subs", name="other", tasks={"scaling-exponents": "method:run"})
    request = EvaluationRequest(submissions=[bad, good, other], tasks=["planted-features"], sandbox="none",
                                data_dir=data)
    warned: list[str] = []
    results = list(evaluate_request(request, sqlite_store, warn=warned.append))
    assert [type(r).__name__ for r in results] == ["NotEvaluated", "Evaluated", "NotEvaluated"]
    assert results[0] == NotEvaluated(str(bad), None, "invalid", "the submission is invalid", results[0].problems)
    assert isinstance(results[1], Evaluated) and results[1].outcome.status == "complete"
    assert results[2].kind == "no-task" and not results[2].failed
    assert warned == [f"WARNING: {NoSandbox.warning}"]
    missing = list(evaluate_request(request.model_copy(update={"submissions": [good], "data_dir": tmp_path / "no"}),
                                    sqlite_store))
    assert [(r.kind, r.task) for r in missing if isinstance(r, NotEvaluated)] == [("data", "planted-features")]


def test_a_machine_without_the_sandbox_refuses_before_any_evaluation(tmp_path, sqlite_store, monkeypatch):
    monkeypatch.setattr(NoSandbox, "available", lambda self: (False, "not here"))
    request = EvaluationRequest(submissions=[write_submission(tmp_path)], sandbox="none")
    with pytest.raises(MachineUnfit, match="sandbox 'none' is unavailable: not here"):
        next(evaluate_request(request, sqlite_store))

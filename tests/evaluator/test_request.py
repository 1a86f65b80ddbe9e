"""The evaluation request: what it accepts, how it names what it refuses, what it evaluates."""
from __future__ import annotations

import os
import threading
import time

import pytest
import yaml
from pydantic import ValidationError

from benchmark.task import get_task
from evaluator.request import (EvaluationRequest, Evaluated, LimitOverrides, MachineUnfit, NotEvaluated,
                               evaluate_request, first_error)
from evaluator.sandbox import NoSandbox
from evaluator.store import EvaluationStatus
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


class _Recording(NoSandbox):
    """Records when each instance starts and ends, and how many run at once; the instances of
    ``slow`` (submission, instance id) hold their slot ``slow_s`` longer."""

    def __init__(self, slow: tuple[str, str], slow_s: float):
        self.slow, self.slow_s = slow, slow_s
        self.lock = threading.Lock()
        self.running = self.most = 0
        self.spans: dict[tuple[str, str], list[float]] = {}
        self.threads: set[int] = set()

    def run(self, job):
        key = (_submission_of(job), job.problem["instance_id"])
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
            self.spans[key] = [time.monotonic()]
            self.threads.add(job.threads)
        try:
            result = super().run(job)
            if key == self.slow:
                time.sleep(self.slow_s)
            return result
        finally:
            with self.lock:
                self.running -= 1
                self.spans[key].append(time.monotonic())


def _submission_of(job) -> str:
    return yaml.safe_load((job.submission_dir / "submission.yaml").read_text())["name"]


def test_the_next_evaluation_takes_the_slots_the_last_instances_leave(tmp_path, sqlite_store, monkeypatch):
    """With --workers 2, once the first evaluation has started its last (slow) instance, the second
    evaluation's instances take the slot it leaves, never more than 2 at once in all; each
    evaluation keeps its own workers, threads and results. ``overlap=False`` idles that slot."""
    data = tmp_path / "data"
    build_tiny_split(data)
    subs = [write_submission(tmp_path / "subs", name=n) for n in ("first", "second")]
    request = EvaluationRequest(submissions=subs, sandbox="none", data_dir=data, workers=2, force=True)
    for overlap in (True, False):
        sandbox = _Recording(slow=("first", "tiny-2"), slow_s=2.0)
        monkeypatch.setattr("evaluator.request.get_sandbox", lambda name, sandbox=sandbox: sandbox)
        results = list(evaluate_request(request, sqlite_store, overlap=overlap))
        assert [(r.outcome.submission, r.outcome.status) for r in results if isinstance(r, Evaluated)] == [
            ("first", "complete"), ("second", "complete")]
        first_ends = max(end for (sub, _), (_, end) in sandbox.spans.items() if sub == "first")
        second_starts = min(start for (sub, _), (start, _) in sandbox.spans.items() if sub == "second")
        assert sandbox.most == 2 and len(sandbox.spans) == 6
        # the second's instances (tiny ones) all ran beside the first's slow one, or all after it
        assert (second_starts < first_ends - 1.0) if overlap else (second_starts > first_ends)
        assert sandbox.threads == {max(1, len(os.sched_getaffinity(0)) // 2)}
        for r in results:
            ev = sqlite_store.evaluation(r.outcome.evaluation_id)
            assert ev.sandbox_info["parallel_workers"] == "2" and ev.n_instances == 3


# Instances named in SLEEP write their pid and sleep far past the test (its wall-time limit ends them
# on code that never starts the next evaluation early: the test then fails rather than hangs).
SLEEPER = """
import os, time
import numpy as np
SHARED, SLEEP = {shared!r}, {sleep!r}

def run(problem):
    if problem["instance_id"] in SLEEP:
        with open(os.path.join(SHARED, f"{{SLEEP[0]}}.{{os.getpid()}}.pid"), "w"):
            pass
        time.sleep(600)
    return np.zeros((problem["n_features"], problem["dim"]))
"""


def test_ctrl_c_stops_both_evaluations_in_flight(tmp_path, sqlite_store, monkeypatch):
    """Ctrl-C while the first evaluation's last instance and the second's first one run: both
    rows are marked interrupted (neither looks finished) and both workers are killed."""
    import psutil

    data = tmp_path / "data"
    build_tiny_split(data)
    shared = tmp_path / "shared"
    shared.mkdir()
    first = write_submission(tmp_path / "subs", name="first", code=SLEEPER.format(shared=str(shared), sleep=["tiny-2"]))
    second = write_submission(tmp_path / "subs", name="second",
                              code=SLEEPER.format(shared=str(shared), sleep=["tiny-0"]))

    class CtrlCOnceBothSleep(NoSandbox):
        def run(self, job):
            if (_submission_of(job), job.problem["instance_id"]) == ("second", "tiny-1"):
                deadline = time.monotonic() + 20
                while len(list(shared.glob("*.pid"))) < 2 and time.monotonic() < deadline:
                    time.sleep(0.01)
                raise KeyboardInterrupt
            return super().run(job)

    monkeypatch.setattr("evaluator.request.get_sandbox", lambda name: CtrlCOnceBothSleep())
    request = EvaluationRequest(submissions=[first, second], sandbox="none", data_dir=data, workers=3,
                                limits=LimitOverrides(wall_time_s=8))
    with pytest.raises(KeyboardInterrupt):
        list(evaluate_request(request, sqlite_store))
    pids = [int(p.name.split(".")[1]) for p in shared.glob("*.pid")]
    assert len(pids) == 2 and not any(psutil.pid_exists(pid) for pid in pids)
    rows = {name: [r.evaluation for r in sqlite_store.evaluations_of(name)] for name in ("first", "second")}
    assert [(e.status, e.headline) for e in rows["first"] + rows["second"]] == [
        (EvaluationStatus.INTERRUPTED, None)] * 2


def test_a_broken_next_evaluation_fails_alone_and_in_its_turn(tmp_path, sqlite_store, monkeypatch):
    """The second evaluation's sandbox fails while the first one finishes: the first completes, the
    second is reported (in order) and marked failed, and the third runs."""
    from evaluator.sandbox import SandboxError

    data = tmp_path / "data"
    build_tiny_split(data)
    subs = [write_submission(tmp_path / "subs", name=n) for n in ("first", "broken", "third")]

    class BrokenForOne(_Recording):
        def run(self, job):
            if _submission_of(job) == "broken":
                raise SandboxError("the sandbox broke")
            return super().run(job)

    sandbox = BrokenForOne(slow=("first", "tiny-2"), slow_s=1.0)
    monkeypatch.setattr("evaluator.request.get_sandbox", lambda name: sandbox)
    request = EvaluationRequest(submissions=subs, sandbox="none", data_dir=data, workers=2)
    results = list(evaluate_request(request, sqlite_store))
    assert [(type(r).__name__, getattr(r, "kind", None)) for r in results] == [
        ("Evaluated", None), ("NotEvaluated", "infra"), ("Evaluated", None)]
    assert results[1].name == "broken" and "the sandbox broke" in results[1].reason
    assert [r.outcome.status for r in (results[0], results[2])] == [EvaluationStatus.COMPLETE] * 2
    [broken] = sqlite_store.evaluations_of("broken")
    assert broken.evaluation.status == EvaluationStatus.FAILED
    assert sandbox.most <= 2

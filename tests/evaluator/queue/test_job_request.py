"""What a job row stores of its request, and how a worker reads rows old and new."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from evaluator.queue import QueueConfig, execute_job
from evaluator.queue.job_request import job_fields, request_of
from evaluator.request import REQUEST_FORMAT, EvaluationRequest, LimitOverrides
from evaluator.store import make_engine, upgrade
from evaluator.store.jobs import JobStore
from evaluator.store.models import Job
from evaluator.submission import load_submission

from .echo_task import ECHO_TASK, build_echo_split, echo_submission


def test_a_jobs_request_round_trips_and_its_columns_agree(tmp_path):
    folder = echo_submission(tmp_path)
    sub = load_submission(folder)
    request = EvaluationRequest(submissions=[folder], sandbox="none", workers=2, data_repo="org/t@" + "a" * 40,
                                limits=LimitOverrides(output_mb=0.5)).for_job(sub, ECHO_TASK)
    fields = job_fields(request)
    assert (fields["task"], fields["code_sha256"], fields["sandbox"]) == (ECHO_TASK, sub.code_sha256, "none")
    assert fields["options"]["format"] == REQUEST_FORMAT
    assert request_of(Job(**fields)) == request


def test_a_row_from_before_the_stored_request_is_read_from_its_columns(tmp_path):
    job = Job(submission_dir=str(tmp_path / "m"), code_sha256="c" * 64, task=ECHO_TASK, split="dev", sandbox="none",
              device="cpu", force=True, options={"data_dir": "/d", "private_dir": None,
                                                 "limits": {"wall_time_s": 5, "memory_mb": None}})
    request = request_of(job)
    assert request.submissions == [tmp_path / "m"] and request.tasks == [ECHO_TASK] and request.force
    assert request.limits == LimitOverrides(wall_time_s=5) and request.workers == 1 and request.code_sha256 == "c" * 64


def test_a_request_a_worker_cannot_read_fails_the_job_naming_the_field(db_url, tmp_path):
    engine = make_engine(db_url)
    upgrade(engine)
    jobs = JobStore(engine)
    build_echo_split(tmp_path / "data")
    sub = load_submission(echo_submission(tmp_path))
    stored = EvaluationRequest(submissions=[sub.folder], sandbox="none").for_job(sub, ECHO_TASK).to_stored()
    newer = jobs.create(message_id="m-newer", queue="unit.cpu", submission_name=sub.name,
                        **{**job_fields(EvaluationRequest.model_validate(stored)),
                           "options": {**stored, "format": REQUEST_FORMAT + 1, "a_later_field": 1}})
    result = execute_job(newer.id, QueueConfig(db_url=db_url, queue_prefix="unit"), "w#0")
    assert result.state == "failed"
    assert f"format: request format {REQUEST_FORMAT + 1} is newer than this evaluator reads" in result.reason
    with pytest.raises(ValidationError, match="a_later_field"):
        EvaluationRequest.model_validate({**stored, "a_later_field": 1})
    engine.dispose()

"""The Celery task and application settings, run eagerly in this process (no broker)."""
from __future__ import annotations

import pytest

from evaluator.queue import TASK_NAME, QueueConfig, make_app, plan_worker
from evaluator.queue import app as app_module
from evaluator.store import make_engine, upgrade
from evaluator.store.jobs import JobStore
from evaluator.submission import load_submission

from .echo_task import ECHO_TASK, echo_submission


def test_delivery_settings_that_the_fault_tests_rely_on():
    app = make_app(QueueConfig(queue_prefix="pb-x"))
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.task_default_delivery_mode == "persistent"
    assert {(q.name, q.durable) for q in conf.task_queues} == {("pb-x.cpu", True), ("pb-x.cuda", True)}
    assert conf.broker_transport_options["confirm_publish"] is True
    assert app.tasks[TASK_NAME].acks_late


def test_config_from_the_environment(monkeypatch):
    monkeypatch.setenv("PHASEBENCH_BROKER", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("PHASEBENCH_QUEUE", "eval")
    monkeypatch.setenv("PHASEBENCH_DB", "sqlite:///x.sqlite")
    cfg = QueueConfig.from_env(queue_prefix=None)
    assert (cfg.broker_url, cfg.queue_for("cuda"), cfg.database) == ("redis://127.0.0.1:6379/3", "eval.cuda",
                                                                     "sqlite:///x.sqlite")
    assert QueueConfig.from_env(queue_prefix="other").queue_prefix == "other"


def test_worker_plans():
    cfg = QueueConfig(queue_prefix="q")
    gpu = plan_worker(cfg, ["0", "1"], None, name="box")
    assert (gpu.queue, gpu.device, gpu.concurrency, gpu.gpus) == ("q.cuda", "cuda", 2, ["0", "1"])
    cpu = plan_worker(cfg, None, 3, name="box")
    assert (cpu.queue, cpu.device, cpu.concurrency) == ("q.cpu", "cpu", 3) and "3 CPU slot(s)" in repr(cpu)
    with pytest.raises(ValueError, match="twice"):
        plan_worker(cfg, ["0", "0"], None)


def test_an_evaluator_bug_fails_the_job_instead_of_leaving_it_running(tmp_path, monkeypatch):
    db = f"sqlite:///{tmp_path}/r.sqlite"
    engine = make_engine(db)
    upgrade(engine)
    sub = load_submission(echo_submission(tmp_path))
    job = JobStore(engine).create(message_id="m1", queue="q.cpu", submission_name=sub.name,
                                  submission_dir=str(sub.folder), code_sha256=sub.code_sha256, task=ECHO_TASK,
                                  split="dev", sandbox="none", device="cpu", force=False, options={})

    def buggy(*args, **kwargs):
        raise KeyError("a task forgot a field")
    monkeypatch.setattr(app_module, "execute_job", buggy)
    app = make_app(QueueConfig(db_url=db, queue_prefix="q"))
    result = app.tasks[TASK_NAME].apply(args=[job.id])
    assert isinstance(result.result, KeyError)
    failed = JobStore(engine).get(job.id)
    assert failed.state == "failed" and failed.reason == "evaluator error: KeyError: 'a task forgot a field'"
    engine.dispose()

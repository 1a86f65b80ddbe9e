"""The Celery application: durable queues, late acknowledgement, one job per slot.

Delivery guarantees come from three settings together: a message is acknowledged only after its
job returned (``acks_late``), a worker that dies mid-job has its message put back
(``reject_on_worker_lost``, and for a worker that vanishes altogether the broker requeues the
unacknowledged message when its connection drops), and each slot holds one message at a time
(prefetch 1), so a dead worker takes no queued jobs with it. Queues are durable and messages
persistent, so a broker restart loses nothing queued. A job can therefore run more than once;
:func:`~evaluator.queue.execute.execute_job` makes a repeat harmless.
"""
from __future__ import annotations

import logging
import os
import socket

from celery import Celery, Task
from kombu.entity import Exchange, Queue

from ..store.jobs import JobStore
from .config import QueueConfig
from .execute import INFRA_ERRORS, JobResult, engine_for, execute_job

__all__ = ["TASK_NAME", "make_app", "slot_name"]

TASK_NAME = "phasebench.evaluate_job"
log = logging.getLogger(__name__)

#: The slot this (pool) process serves, set by the worker at process start; part of the name
#: recorded on each job.
_slot: dict[str, str] = {}


def slot_name() -> str:
    return _slot.get("name") or f"{socket.gethostname()}#pid{os.getpid()}"


def make_app(config: QueueConfig | None = None) -> Celery:
    config = config or QueueConfig.from_env()
    app = Celery("phasebench", broker=config.broker_url, set_as_current=False)
    exchange = Exchange(config.queue_prefix, type="direct", durable=True)
    queues = [Queue(config.queue_for(d), exchange, routing_key=config.queue_for(d), durable=True)
              for d in ("cpu", "cuda")]
    app.conf.update(
        task_queues=queues,
        task_default_queue=config.queue_for("cpu"),
        task_default_exchange=config.queue_prefix,
        task_default_routing_key=config.queue_for("cpu"),
        task_default_delivery_mode="persistent",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=False,          # states live in our jobs table, not a Celery backend
        task_ignore_result=True,
        result_backend=None,
        task_serializer="json", accept_content=["json"],
        # Keep trying while the broker restarts instead of exiting (workers) or failing (enqueue).
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 30, "interval_start": 0.5, "interval_step": 0.5,
                                   "interval_max": 3},
        # A job running when the broker connection drops will be delivered again: stop this copy
        # rather than run two.
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_transport_options={
            "confirm_publish": True,       # amqp: enqueue returns only once the broker has the message
            "visibility_timeout": 12 * 3600,  # redis: an unacknowledged job is redelivered after this
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
    )
    app.conf.phasebench = config

    # shared=False: each app keeps its own task (and so its own configuration), even when one
    # process builds several apps (tests, the load script).
    @app.task(bind=True, name=TASK_NAME, acks_late=True, reject_on_worker_lost=True,
              max_retries=config.max_infra_retries, shared=False)
    def evaluate_job(self: Task, job_id: int, retry_reason: str | None = None) -> dict:
        try:
            result = execute_job(job_id, config, slot_name(), retry_reason=retry_reason)
        except INFRA_ERRORS as exc:
            delay = min(config.retry_backoff_s * 2 ** self.request.retries, config.retry_backoff_max_s)
            what = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:500]
            if self.request.retries >= config.max_infra_retries:
                _best_effort(lambda: JobStore(engine_for(config.database)).fail(
                    job_id, f"infrastructure failed {self.request.retries + 1} times, last: {what}"))
                raise
            reason = (f"attempt {self.request.retries + 1} hit an infrastructure failure and was retried "
                      f"(not counted against the submission): {what}")
            _best_effort(lambda: JobStore(engine_for(config.database)).requeue(job_id, reason))
            log.warning("job %s: infrastructure failure, retry %d in %g s: %s", job_id,
                        self.request.retries + 1, delay, what)
            # The reason travels with the retry too: the database may be what failed.
            raise self.retry(exc=exc, countdown=delay, kwargs={"retry_reason": reason}) from exc
        except Exception as exc:
            # A bug in the evaluator or a task: the message is acknowledged (running it again
            # would fail the same way), so the job must not stay 'running' for ever.
            log.exception("job %s: unexpected error", job_id)
            why = f"evaluator error: {type(exc).__name__}: {exc}"[:2000]
            _best_effort(lambda: JobStore(engine_for(config.database)).fail(job_id, why))
            raise
        log.info("job %s: %s %s", job_id, result.state, result.reason or "")
        return _as_dict(result)

    return app


def _as_dict(result: JobResult) -> dict:
    return {"job_id": result.job_id, "state": result.state, "evaluation_id": result.evaluation_id,
            "reason": result.reason}


def _best_effort(write) -> None:  # noqa: ANN001
    """A state update while the database may be the very thing that is down: never let it mask
    the failure being handled."""
    try:
        write()
    except INFRA_ERRORS as exc:
        log.warning("could not record the job's state: %s", exc)

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ..store import make_engine, redact, upgrade
from ..store.jobs import JobStore
from ._params import broker_option, db_option, queue_option, request_options, task_module_option
from .evaluate import report_not_evaluated

if TYPE_CHECKING:
    from ..request import EvaluationRequest


@click.command()
@request_options
@broker_option
@queue_option
@db_option
@task_module_option
def enqueue(request: EvaluationRequest, broker_url: str | None, queue_prefix: str | None, db_url: str | None) -> None:
    """Queue one evaluation job per (submission, task) for `phasebench worker` to run.

    Takes the options of `phasebench evaluate`; each job records them and its worker honours them.
    Prints each job's id and its position in the queue. Workers and this command must share the
    results database (--db) and the broker (--broker), and see the submission and data folders at
    the same paths. Without a broker, use `phasebench evaluate`.
    """
    # Here, not at the top: `phasebench --help` imports this module, and Celery and the runner are slow to.
    from ..queue import QueueConfig, enqueue_submission, make_app
    from ..request import NotEvaluated, load_requested

    config = QueueConfig.from_env(broker_url=broker_url, db_url=db_url, queue_prefix=queue_prefix)
    app = make_app(config)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=2, interval_start=0.2, interval_step=0.5)
    except Exception as exc:  # kombu raises the transport's own errors
        broker = redact(config.broker_url) if "://" in config.broker_url else config.broker_url
        raise click.ClickException(
            f"no broker answers at {broker} ({exc}); start RabbitMQ (or give --broker redis://...), or evaluate "
            "inline with `phasebench evaluate`") from None
    engine = make_engine(config.database)
    rev = upgrade(engine)
    click.echo(f"results database: {redact(config.database)} (schema {rev})", err=True)
    jobs = JobStore(engine)
    failures = 0
    for item in load_requested(request):
        if isinstance(item, NotEvaluated):
            failures += item.failed
            report_not_evaluated(item, "queued")
            continue
        sub, wanted = item
        try:
            queued = enqueue_submission(app, config, jobs, request, sub, wanted)
        except ValueError as exc:
            failures += 1
            click.secho(f"{sub.name}: not queued: {exc}", fg="red", err=True)
            continue
        for q in queued:
            where = f"position {q.position}" if q.position is not None else "already running"
            note = "  (the same job was already queued; not added twice)" if q.reused else ""
            click.echo(f"job {q.job_id}\t{q.submission} / {q.task} / {q.split}\tqueued, {where}{note}")
    sys.exit(1 if failures else 0)

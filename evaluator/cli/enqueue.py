import sys
from pathlib import Path

import click

from benchmark.registry import UnknownNameError

from ..queue import QueueConfig, enqueue_submission, import_task_modules, make_app
from ..sandbox import SANDBOXES
from ..store import make_engine, redact, upgrade
from ..store.jobs import JobStore
from ..submission import SubmissionError, load_submission
from ._queue_options import broker_option, db_option, queue_option, task_module_option


@click.command()
@click.argument("submissions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--task", "task_names", multiple=True, help="only these tasks (default: every task the submission answers)")
@click.option("--split", type=click.Choice(["dev", "test"]), default="dev", show_default=True)
@click.option("--sandbox", "sandbox_name", type=click.Choice(SANDBOXES.names()), default="bwrap", show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="cuda jobs go to the GPU queue, served by `phasebench worker --gpus ...`")
@click.option("--force", is_flag=True, help="evaluate again even if a stored result for this code and data exists")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="dataset folder as the workers see it (default: theirs, $PHASEBENCH_DATA or the embedded copy)")
@click.option("--private-dir", type=click.Path(path_type=Path), default=None)
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None, help="override the task's per-instance wall-time limit (s)")
@click.option("--memory-limit", type=click.IntRange(min=1), default=None, help="override the task's per-instance memory limit (MB)")
@broker_option
@queue_option
@db_option
@task_module_option
def enqueue(submissions, task_names, split, sandbox_name, device, force, data_dir, private_dir, time_limit,
            memory_limit, broker_url, queue_prefix, db_url, task_modules) -> None:
    """Queue one evaluation job per (submission, task, split) for `phasebench worker` to run.

    Prints each job's id and its position in the queue. Workers and this command must share the
    results database (--db) and the broker (--broker). Without a broker, use `phasebench evaluate`.
    """
    import_task_modules(task_modules)
    config = QueueConfig.from_env(broker_url=broker_url, db_url=db_url, queue_prefix=queue_prefix)
    app = make_app(config)
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=2, interval_start=0.2, interval_step=0.5)
    except Exception as exc:  # kombu raises the transport's own errors
        raise click.ClickException(
            f"no broker answers at {redact(broker_url) if '://' in broker_url else broker_url} ({exc}); start "
            "RabbitMQ (or give --broker redis://...), or evaluate inline with `phasebench evaluate`") from None
    engine = make_engine(config.database)
    rev = upgrade(engine)
    click.echo(f"results database: {redact(config.database)} (schema {rev})", err=True)
    jobs = JobStore(engine)
    failures = 0
    for folder in submissions:
        try:
            sub = load_submission(folder)
        except SubmissionError as exc:
            failures += 1
            click.secho(f"{folder}: not queued, the submission is invalid:", fg="red", err=True)
            for p in exc.problems:
                click.echo(f"  {p}", err=True)
            continue
        wanted = [t for t in sub.spec.tasks if not task_names or t in task_names]
        if not wanted:
            click.echo(f"{sub.name}: answers none of the tasks {', '.join(task_names)}; skipped", err=True)
            continue
        limits = {"wall_time_s": time_limit, "memory_mb": memory_limit}
        try:
            queued = enqueue_submission(app, config, jobs, sub, wanted, split, sandbox=sandbox_name, device=device,
                                        force=force, data_dir=data_dir, private_dir=private_dir, limits=limits)
        except (UnknownNameError, ValueError) as exc:
            failures += 1
            click.secho(f"{sub.name}: not queued: {exc}", fg="red", err=True)
            continue
        for q in queued:
            where = f"position {q.position}" if q.position is not None else "already running"
            note = "  (the same job was already queued; not added twice)" if q.reused else ""
            click.echo(f"job {q.job_id}\t{q.submission} / {q.task} / {q.split}\tqueued, {where}{note}")
    sys.exit(1 if failures else 0)

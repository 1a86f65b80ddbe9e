import click

from ..store import SchemaOutOfDate, make_engine, redact, require_current
from ._params import broker_option, db_option, queue_option, task_module_option


@click.command()
@click.option("--gpus", default=None, help="comma-separated GPU ids, one job slot each (pinned with "
              "CUDA_VISIBLE_DEVICES); serves the GPU queue. Without it: CPU slots on the CPU queue")
@click.option("--concurrency", type=click.IntRange(min=1), default=None, help="CPU slots (default 1)")
@click.option("--name", default=None, help="worker name recorded on each job it runs (default: host-pid)")
@click.option("--loglevel", default="INFO", show_default=True)
@broker_option
@queue_option
@db_option
@task_module_option
def worker(gpus, concurrency, name, loglevel, broker_url, queue_prefix, db_url) -> None:
    """Run queued evaluation jobs, one per GPU or CPU slot, until stopped (Ctrl-C finishes the
    running jobs first; a killed worker's jobs go back to the queue)."""
    # Here, not at the top: `phasebench --help` imports this module, and Celery is slow to.
    from ..queue import QueueConfig, make_app, plan_worker, run_worker

    config = QueueConfig.from_env(broker_url=broker_url, db_url=db_url, queue_prefix=queue_prefix)
    try:
        plan = plan_worker(config, gpus.split(",") if gpus else None, concurrency, name)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    engine = make_engine(config.database)
    try:
        require_current(engine)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        engine.dispose()
    click.echo(f"{plan}; results database {redact(config.database)}", err=True)
    run_worker(make_app(config), plan, loglevel=loglevel)

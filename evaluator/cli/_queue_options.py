"""Options shared by the queue commands (enqueue, worker, jobs)."""
from __future__ import annotations

import click

from ..queue.config import DEFAULT_BROKER_URL, DEFAULT_QUEUE_PREFIX

__all__ = ["broker_option", "queue_option", "db_option", "task_module_option"]

broker_option = click.option(
    "--broker", "broker_url", envvar="PHASEBENCH_BROKER", default=DEFAULT_BROKER_URL, show_default=True,
    help="Celery broker URL: amqp://... (RabbitMQ) or redis://...")
queue_option = click.option(
    "--queue", "queue_prefix", envvar="PHASEBENCH_QUEUE", default=DEFAULT_QUEUE_PREFIX, show_default=True,
    help="queue name prefix (jobs go to <prefix>.cpu or <prefix>.cuda)")
db_option = click.option(
    "--db", "db_url", envvar="PHASEBENCH_DB",
    help="results database URL, shared by enqueue and every worker (default: $PHASEBENCH_DB or ./var/phasebench.sqlite)")
task_module_option = click.option(
    "--task-module", "task_modules", multiple=True, envvar="PHASEBENCH_TASK_MODULES",
    help="import this module first to register extra tasks (repeatable; env: comma-separated)")

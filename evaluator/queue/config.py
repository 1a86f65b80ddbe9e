"""Where the queue lives: broker, results database, queue names, retry policy. From the settings
(benchmark/settings.py: PHASEBENCH_BROKER, PHASEBENCH_DB, PHASEBENCH_QUEUE, ...) unless the command
line says otherwise."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from typing import Iterable

from benchmark.settings import default_of, get_settings

from ..store.session import database_url

__all__ = ["QueueConfig", "DEFAULT_BROKER_URL", "DEFAULT_QUEUE_PREFIX", "import_task_modules"]

DEFAULT_BROKER_URL: str = default_of("broker")
DEFAULT_QUEUE_PREFIX: str = default_of("queue")


@dataclass(frozen=True)
class QueueConfig:
    broker_url: str = DEFAULT_BROKER_URL
    db_url: str | None = None
    queue_prefix: str = DEFAULT_QUEUE_PREFIX
    #: Retries of one job after an infrastructure failure (sandbox, database), with backoff.
    max_infra_retries: int = default_of("job_max_retries")
    #: Give up on a job whose attempts keep dying (e.g. it kills every worker that takes it).
    max_attempts: int = default_of("job_max_attempts")
    retry_backoff_s: float = default_of("job_retry_backoff_s")
    retry_backoff_max_s: float = 60.0

    @classmethod
    def from_env(cls, **overrides: object) -> "QueueConfig":
        """The settings, with each override that is not None (a command-line flag) in its place."""
        settings = get_settings()
        cfg = cls(broker_url=settings.broker, db_url=settings.db, queue_prefix=settings.queue,
                  max_infra_retries=settings.job_max_retries, max_attempts=settings.job_max_attempts,
                  retry_backoff_s=settings.job_retry_backoff_s)
        return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})

    def queue_for(self, device: str) -> str:
        """One queue per kind of slot: a CPU slot never takes a job that needs a GPU."""
        return f"{self.queue_prefix}.{device}"

    @property
    def database(self) -> str:
        return database_url(self.db_url)


def import_task_modules(modules: Iterable[str]) -> None:
    """Import modules that register extra tasks (plugins, or the tests' tiny tasks): a worker
    must know every task a job may name."""
    for name in modules:
        for part in name.split(","):
            if part.strip():
                importlib.import_module(part.strip())

"""Where the queue lives: broker, results database, queue names, retry policy. From the environment
(PHASEBENCH_BROKER, PHASEBENCH_DB, PHASEBENCH_QUEUE, ...) unless the command line says otherwise."""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, replace
from typing import Iterable

from ..store.session import database_url

__all__ = ["QueueConfig", "DEFAULT_BROKER_URL", "DEFAULT_QUEUE_PREFIX", "import_task_modules"]

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_QUEUE_PREFIX = "phasebench"


@dataclass(frozen=True)
class QueueConfig:
    broker_url: str = DEFAULT_BROKER_URL
    db_url: str | None = None
    queue_prefix: str = DEFAULT_QUEUE_PREFIX
    #: Retries of one job after an infrastructure failure (sandbox, database), with backoff.
    max_infra_retries: int = 10
    #: Give up on a job whose attempts keep dying (e.g. it kills every worker that takes it).
    max_attempts: int = 20
    retry_backoff_s: float = 1.0
    retry_backoff_max_s: float = 60.0

    @classmethod
    def from_env(cls, **overrides: object) -> "QueueConfig":
        env = os.environ
        cfg = cls(broker_url=env.get("PHASEBENCH_BROKER", DEFAULT_BROKER_URL),
                  db_url=database_url(),
                  queue_prefix=env.get("PHASEBENCH_QUEUE", DEFAULT_QUEUE_PREFIX),
                  max_infra_retries=int(env.get("PHASEBENCH_JOB_MAX_RETRIES", cls.max_infra_retries)),
                  max_attempts=int(env.get("PHASEBENCH_JOB_MAX_ATTEMPTS", cls.max_attempts)),
                  retry_backoff_s=float(env.get("PHASEBENCH_JOB_RETRY_BACKOFF_S", cls.retry_backoff_s)))
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

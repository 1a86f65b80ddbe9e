"""A worker: one Celery prefork process per slot, each slot one GPU (pinned through
CUDA_VISIBLE_DEVICES) or one CPU slot, each running one job at a time."""
from __future__ import annotations

import os
import socket
from typing import Sequence

from celery import Celery
from celery.signals import worker_process_init

from . import app as app_module
from .config import QueueConfig

__all__ = ["WorkerPlan", "plan_worker", "run_worker", "pin_slot"]

_GPUS_ENV = "PHASEBENCH_WORKER_GPUS"
_NAME_ENV = "PHASEBENCH_WORKER_NAME"


class WorkerPlan:
    """What a worker serves: its queue, device, number of slots and the GPU of each slot."""

    def __init__(self, queue: str, device: str, concurrency: int, gpus: list[str], name: str):
        self.queue, self.device, self.concurrency, self.gpus, self.name = queue, device, concurrency, gpus, name

    def __repr__(self) -> str:
        slots = ", ".join(f"slot {i}: GPU {g}" for i, g in enumerate(self.gpus)) or f"{self.concurrency} CPU slot(s)"
        return f"worker {self.name} on queue {self.queue} ({slots})"


def plan_worker(config: QueueConfig, gpus: Sequence[str] | None, concurrency: int | None,
                name: str | None = None) -> WorkerPlan:
    gpus = [g.strip() for g in (gpus or []) if g.strip()]
    if len(set(gpus)) != len(gpus):
        raise ValueError(f"--gpus lists a GPU twice: {','.join(gpus)}")
    name = name or f"{socket.gethostname()}-{os.getpid()}"
    if gpus:
        if concurrency not in (None, len(gpus)):
            raise ValueError(f"--concurrency {concurrency} disagrees with --gpus {','.join(gpus)}: "
                             "a GPU worker runs one job per GPU")
        return WorkerPlan(config.queue_for("cuda"), "cuda", len(gpus), gpus, name)
    return WorkerPlan(config.queue_for("cpu"), "cpu", concurrency or 1, [], name)


@worker_process_init.connect
def pin_slot(**_kwargs) -> None:
    """In each pool process: pick this slot's GPU (billiard numbers pool processes 0..N-1 and
    gives a replacement the number of the process it replaces) and name the slot."""
    from billiard.process import current_process

    index = getattr(current_process(), "index", 0) or 0
    gpus = [g for g in os.environ.get(_GPUS_ENV, "").split(",") if g]
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[index % len(gpus)]
    base = os.environ.get(_NAME_ENV) or socket.gethostname()
    app_module._slot["name"] = f"{base}#slot{index}" + (f"/gpu{gpus[index % len(gpus)]}" if gpus else "")


def run_worker(app: Celery, plan: WorkerPlan, loglevel: str = "INFO") -> None:
    """Start the worker in this process (blocks until it is stopped)."""
    os.environ[_GPUS_ENV] = ",".join(plan.gpus)
    os.environ[_NAME_ENV] = plan.name
    if plan.gpus:
        # Imported once here, before the pool forks, rather than by every slot's first job. CUDA
        # itself is not initialised here: each slot does that after pinning its GPU.
        import torch  # noqa: F401
    else:
        # A CPU slot must not grab a GPU by accident.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    app.worker_main([
        "worker", "--pool=prefork", f"--concurrency={plan.concurrency}", f"--queues={plan.queue}",
        f"--hostname={plan.name}@%h", f"--loglevel={loglevel}", "--without-gossip", "--without-mingle",
        "--without-heartbeat", "--prefetch-multiplier=1",
    ])

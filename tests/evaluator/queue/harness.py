"""Real brokers, real databases, real worker processes for the queue tests and the load test."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from evaluator.queue import QueueConfig, enqueue_submission, make_app
from evaluator.request import EvaluationRequest
from evaluator.store import ResultsStore, make_engine
from evaluator.store.jobs import JobStore
from evaluator.submission import load_submission
from tests.builders import REPO

from .echo_task import ECHO_TASK, MODULE

__all__ = ["BROKER_URL", "broker_problem", "QueueHarness", "WorkerProcess", "wait_for", "delete_queues"]

BROKER_URL = os.environ.get("PHASEBENCH_TEST_BROKER", "amqp://guest:guest@127.0.0.1:5672//")


def broker_problem(url: str = BROKER_URL) -> str | None:
    """Why the broker cannot be used, or None when it answers."""
    from kombu import Connection
    try:
        with Connection(url, connect_timeout=3) as conn:
            conn.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"no broker answers at {url}: {exc}"
    return None


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def delete_queues(config: QueueConfig) -> None:
    """The test's durable queues and exchange, so that runs leave nothing behind on the broker."""
    from kombu import Connection
    with Connection(config.broker_url, connect_timeout=5) as conn:
        channel = conn.channel()
        for device in ("cpu", "cuda"):
            channel.queue_delete(config.queue_for(device))
        channel.exchange_delete(config.queue_prefix)


@dataclass
class WorkerProcess:
    name: str
    proc: subprocess.Popen
    log: Path

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole worker: its main process and every pool process (a lost machine)."""
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                self.proc.wait()
        else:
            self.kill(signal.SIGKILL)  # orphaned pool processes, if any

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class QueueHarness:
    """A unique queue on the real broker, a results database, and workers started as the
    `phasebench worker` command."""
    db_url: str
    tmp: Path
    broker_url: str = BROKER_URL
    prefix: str = field(default_factory=lambda: f"pbtest-{uuid.uuid4().hex[:10]}")
    workers: list[WorkerProcess] = field(default_factory=list)
    worker_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.config = QueueConfig(broker_url=self.broker_url, db_url=self.db_url, queue_prefix=self.prefix)
        self.app = make_app(self.config)
        self.engine = make_engine(self.db_url)
        self.jobs = JobStore(self.engine)
        self.results = ResultsStore(self.engine)

    def enqueue(self, folder: Path, task: str = ECHO_TASK, **request: Any) -> int:
        """One job; ``request``: EvaluationRequest fields (sandbox 'none' unless given)."""
        req = EvaluationRequest.model_validate({"submissions": [folder], "tasks": [task], "sandbox": "none",
                                                **request})
        [job] = enqueue_submission(self.app, self.config, self.jobs, req, load_submission(folder), [task])
        return job.job_id

    def start_worker(self, name: str, *args: str, db_url: str | None = None) -> WorkerProcess:
        log = self.tmp / f"worker-{name}.log"
        env = {**os.environ, "PYTHONPATH": str(REPO), "PHASEBENCH_JOB_RETRY_BACKOFF_S": "0.5",
               **self.worker_env}
        cmd = [sys.executable, "-m", "evaluator.cli", "worker", "--name", name, "--broker", self.broker_url,
               "--queue", self.prefix, "--db", db_url or self.db_url, "--task-module", MODULE,
               "--loglevel", "INFO", *args]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        worker = WorkerProcess(name, proc, log)
        self.workers.append(worker)
        return worker

    def wait_ready(self, worker: WorkerProcess, timeout: float = 60) -> None:
        """Until the worker consumes from its queue (Celery logs 'ready' then)."""
        def ready() -> bool:
            if worker.proc.poll() is not None:
                raise AssertionError(f"worker {worker.name} exited {worker.proc.returncode}:\n{worker.log_text()}")
            return "ready." in worker.log_text()
        wait_for(ready, timeout, f"worker {worker.name} to start")

    def wait_jobs(self, job_ids: list[int], timeout: float, states: tuple[str, ...] = ("done", "failed")) -> list:
        def settled():
            jobs = [self.jobs.get(i) for i in job_ids]
            return jobs if all(j.state in states for j in jobs) else None
        try:
            return wait_for(settled, timeout, f"jobs {job_ids} to reach {states}", interval=0.2)
        except AssertionError as exc:
            logs = "\n".join(f"--- {w.name}\n{w.log_text()[-3000:]}" for w in self.workers)
            raise AssertionError(f"{exc}; states: {[(j.id, j.state, j.reason) for j in map(self.jobs.get, job_ids)]}"
                                 f"\n{logs}") from None

    def close(self) -> None:
        for w in self.workers:
            w.stop()
        try:
            delete_queues(self.config)
        except Exception:
            pass
        self.engine.dispose()

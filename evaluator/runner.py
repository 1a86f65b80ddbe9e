"""Evaluate one submission on one task and split: sandboxed answers, parent-side scoring, stored."""
from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from threadpoolctl import threadpool_limits

from benchmark.dataset import BOARD_SPLITS, DataError, InstanceRecord, SplitData
from benchmark.metadata import ResourceLimits
from benchmark.stats import aggregate
from benchmark.task import AnswerError, Task

from . import __version__
from .provenance import BASELINES_SHA256, hardware, library_versions
from .results.board import refresh_board_snapshot
from .results.summary import EvaluationSummary, SummaryError
from .sandbox import Sandbox, WorkerJob, WorkerResult
from .store import EvaluationStatus, InstanceStatus, ResultsStore, require_current
from .submission import Submission, staged_copy

__all__ = ["Outcome", "evaluate_submission", "instance_seed", "method_problem", "refresh_snapshot"]

_log = logging.getLogger(__name__)


@dataclass
class Outcome:
    submission: str
    task: str
    split: str
    evaluation_id: int
    status: str
    headline_metric: str
    headline: float | None
    ci: tuple[float | None, float | None]
    n_instances: int
    n_failed: int
    runtime_s: float | None
    reused: bool


def instance_seed(instance_id: str) -> int:
    """A seed for the method's own randomness, fixed per instance so that runs repeat."""
    return int.from_bytes(hashlib.sha256(instance_id.encode()).digest()[:4], "little")


def method_problem(record: InstanceRecord, device: str = "cpu") -> dict[str, Any]:
    """What a method is handed for an instance, besides its input arrays: the public fields, the id,
    the group where the task makes it public, its seed and the device. Scripts that fit or check a
    method on public splits build the problem here too, so they see what the sandbox would give."""
    # a hidden group (a difficulty tier) is the scorer's, never the method's
    return {**record.public, "instance_id": record.id, **({"group": record.group} if record.group_public else {}),
            "seed": instance_seed(record.id), "device": device}


def _outcome(ev: Any, submission: str, reused: bool) -> Outcome:
    return Outcome(submission, ev.task, ev.split, ev.id, ev.status, ev.headline_metric, ev.headline,
                   (ev.headline_ci_low, ev.headline_ci_high), ev.n_instances, ev.n_failed, ev.runtime_s, reused)


def _score_instance(task: Task, truth: dict, record: InstanceRecord,
                    answer: dict | None) -> tuple[str | None, Mapping[str, float | None], str | None, dict | None]:
    """(status, metrics, error, details); status None means there was no answer to score."""
    if answer is None:
        return None, task.failure_metrics(record), None, _details(task, None, truth, record)
    try:
        clean = task.validate_answer(answer, record)
    except AnswerError as exc:
        return InstanceStatus.INVALID, task.failure_metrics(record), str(exc), _details(task, None, truth, record)
    return (InstanceStatus.OK, _checked(task, dict(task.score(clean, truth, record))), None,
            _details(task, clean, truth, record))


def _details(task: Task, answer: dict | None, truth: dict, record: InstanceRecord) -> dict | None:
    details = task.instance_details(answer, truth, record)
    for key, value in details.items():
        if isinstance(value, float) and not math.isfinite(value):
            details[key] = None  # JSON has no NaN, and PostgreSQL rejects it
    return details or None


def _checked(task: Task, metrics: dict[str, float | None]) -> dict[str, float | None]:
    """A scorer must report every declared metric, finite or None (not applicable): anything else
    is a bug in the task, and storing it would corrupt the aggregate (and PostgreSQL rejects NaN)."""
    declared = {m.name for m in task.metadata.metrics}
    if set(metrics) != declared:
        raise RuntimeError(f"task {task.name}: scorer returned metrics {sorted(metrics)}, declared {sorted(declared)}")
    for name, value in metrics.items():
        if value is not None and not math.isfinite(value):
            raise RuntimeError(f"task {task.name}: scorer returned {value} for {name}")
    return {k: (None if v is None else float(v)) for k, v in metrics.items()}


def evaluate_submission(submission: Submission, task: Task, split: SplitData, sandbox: Sandbox, store: ResultsStore,
                        device: str = "cpu", force: bool = False, limits: ResourceLimits | None = None,
                        progress: Callable[[int, str], Any] | None = None,
                        on_start: Callable[[int], Any] | None = None, workers: int = 1) -> Outcome:
    """Run every instance of ``split`` in its own sandboxed worker, score it here, store it.

    ``workers`` instances run at once; each worker gets an equal share of the CPUs for its BLAS and
    OpenMP threads (recorded with the evaluation: thread counts can change a method's rounding).
    Rows are aggregated in the split's order whatever order they finish in, so the bootstrap
    intervals do not depend on it. ``progress(total, desc)`` returns a bar with ``update`` and
    ``close`` (tqdm's). ``on_start(evaluation_id)`` is called once the evaluation row exists (the
    job queue records it, so that a retried job can tell a finished attempt from one a dead worker
    left running)."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    meta = task.metadata
    if not split.has_answers:
        raise DataError(f"{task.name}/{split.split}: the answers are not available to this evaluator "
                        "(the test split's answers come from PHASEBENCH_PRIVATE_DIR)")
    # Nothing is read or written against a database whose schema the code does not match.
    require_current(store.engine)
    libraries = library_versions()
    if not force:
        # The shared library is code the submission runs as much as its folder: a result computed
        # with other library code is not reused.
        found = store.find_finished(submission.code_sha256, task.name, meta.version, split.split, split.revision,
                                    sandbox.name, libraries={BASELINES_SHA256: libraries[BASELINES_SHA256]})
        if found is not None:
            return _outcome(found, submission.name, reused=True)

    # No method runs against data that is not what its manifest pins.
    split.verify()
    # The workers mount a private copy (hashed again), never the folder the evaluator was pointed at.
    with staged_copy(submission) as code_dir, fork_safe_blas():
        return _run_instances(submission, task, split, sandbox, store, code_dir, device, limits, progress, on_start,
                              workers, libraries)


@contextmanager
def fork_safe_blas() -> Iterator[None]:
    """One BLAS thread in this process while instances run.

    The sandboxes start each worker with fork (their set-up runs between fork and exec) from the
    instance threads, while this thread scores finished instances with numpy. OpenBLAS stops its
    thread pool before every fork; a matrix product in flight then waits forever for the pool's
    share of the work (seen: the evaluator hung in the planted-features scorer). With one thread
    there is no pool to wait for. scipy's own OpenBLAS is loaded first so that it is limited too;
    the scorers' matrices are small enough that one thread costs little."""
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS, which threadpoolctl can then limit)

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _run_instances(submission: Submission, task: Task, split: SplitData, sandbox: Sandbox, store: ResultsStore,
                   code_dir: Path, device: str, limits: ResourceLimits | None,
                   progress: Callable[[int, str], Any] | None, on_start: Callable[[int], Any] | None, workers: int,
                   libraries: dict[str, str]) -> Outcome:
    meta = task.metadata
    records = split.instances
    workers = min(workers, max(1, len(records)))
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    sub_id = store.upsert_submission(submission.name, submission.code_sha256, submission.git_commit,
                                     submission.spec.model_dump())
    eval_id = store.start_evaluation(
        submission_id=sub_id, task=task.name, task_version=meta.version, split=split.split,
        dataset_revision=split.revision, evaluator_version=__version__, sandbox=sandbox.name,
        sandbox_info={**sandbox.provenance(), "parallel_workers": str(workers), "worker_threads": str(threads)},
        device=device, hardware=hardware(device), library_versions=libraries, headline_metric=meta.headline)
    limits = limits or meta.limits
    entry = submission.spec.tasks[task.name]
    rows: list[dict[str, Any] | None] = [None] * len(records)
    cancel = threading.Event()
    bar = None
    started = time.perf_counter()

    def submit(pool: ThreadPoolExecutor, index: int) -> tuple[Future, dict]:
        record = records[index]
        # Built here, in the parent, from the answers: the worker only ever talks to it.
        truth = split.load_answer(record.id)
        job = WorkerJob(
            submission_dir=code_dir, entry=entry,
            problem=method_problem(record, device),
            inputs_file=split.inputs_path(record.id), answer_fields=list(meta.answer_schema),
            # the instance's own wall time where the task sets one per value of a public field
            limits=limits.for_instance(record.public), device=device, oracle=task.oracle(record, truth),
            threads=threads, cancel=cancel)
        return pool.submit(sandbox.run, job), truth

    def finish(index: int, result: WorkerResult, truth: dict) -> None:
        record = records[index]
        ok = result.status == InstanceStatus.OK
        status, metrics, error, details = _score_instance(task, truth, record, result.answer if ok else None)
        if not ok:
            status, error = result.status, result.error
        if "oracle" in result.extra:
            details = {**(details or {}), **result.extra["oracle"]}
        rows[index] = {"group": record.group, "metrics": metrics, "status": status, "details": details}
        store.add_instance_result(eval_id, instance_id=record.id, group=record.group, status=status,
                                  metrics=metrics, runtime_s=result.wall_s, error=error, details=details)
        if bar is not None:
            bar.update(1)

    pool = None
    try:
        if on_start is not None:
            on_start(eval_id)
        bar = progress(len(records), f"{submission.name} / {task.name}") if progress else None
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="phasebench-instance")
        running: dict[Future, tuple[int, dict]] = {}
        queued = iter(range(len(records)))

        def start_next() -> None:
            index = next(queued, None)
            if index is not None:
                future, truth = submit(pool, index)
                running[future] = (index, truth)

        for _ in range(workers):
            start_next()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                index, truth = running.pop(future)
                finish(index, future.result(), truth)
                start_next()
    except BaseException as exc:
        # Workers still running are killed, not left to finish on their own.
        cancel.set()
        # The row must not look finished: the operator sees why it stopped, and it is never reused.
        # Marked before waiting for the workers to die, which a second Ctrl-C could cut short.
        kind = EvaluationStatus.INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EvaluationStatus.FAILED
        store.mark(eval_id, kind, f"{type(exc).__name__}: {exc}"[:500])
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        if pool is not None:
            pool.shutdown(wait=True)
        if bar is not None:
            bar.close()
    runtime = time.perf_counter() - started
    done = [r for r in rows if r is not None]
    assert len(done) == len(rows), "every instance was stored before the summary"
    n_failed = sum(r["status"] != InstanceStatus.OK for r in done)
    # Validated before it is stored: the writer and every reader share the one model of a summary.
    try:
        summary = EvaluationSummary.for_storage(aggregate(meta, done))
    except SummaryError as exc:
        store.mark(eval_id, EvaluationStatus.FAILED, str(exc)[:500])   # not a result, never reused
        raise
    status = EvaluationStatus.COMPLETE if n_failed == 0 else EvaluationStatus.PARTIAL
    store.finish_evaluation(eval_id, status, summary, meta.headline, n_failed, runtime)
    refresh_snapshot(store, task, split.split)
    return _outcome(store.evaluation(eval_id), submission.name, reused=False)


def refresh_snapshot(store: ResultsStore, task: Task, split: str) -> None:
    """Store the snapshot of the task's board (rank intervals, skill, detectable difference) so that
    the read-only website reads it instead of computing it (evaluator.results.board). The result is
    already stored: a failure here is logged, and the website computes what the snapshot lacks."""
    if split not in BOARD_SPLITS:
        return
    try:
        refresh_board_snapshot(store, task.metadata, split)
    except Exception as exc:  # noqa: BLE001 - never fails a stored evaluation
        _log.warning("board snapshot of %s (%s) not stored: %s: %s", task.name, split, type(exc).__name__, exc)

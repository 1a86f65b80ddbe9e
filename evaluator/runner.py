"""Evaluate one submission on one task and split: sandboxed answers, parent-side scoring, stored."""
from __future__ import annotations

import hashlib
import logging
import math
import os
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from collections import deque
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from threadpoolctl import threadpool_limits

from benchmark.dataset import BOARD_SPLITS, DataError, InstanceRecord, SplitData, instance_results_public
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

__all__ = ["Outcome", "EvaluationRun", "InstanceSlots", "evaluate_submission", "start_evaluation", "instance_seed",
           "method_problem", "refresh_snapshot"]

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
    run = start_evaluation(submission, task, split, sandbox, store, device=device, force=force, limits=limits,
                           progress=progress, on_start=on_start, workers=workers)
    if isinstance(run, Outcome):
        return run
    with InstanceSlots(workers) as slots:
        return slots.finish(run)


def start_evaluation(submission: Submission, task: Task, split: SplitData, sandbox: Sandbox, store: ResultsStore,
                     device: str = "cpu", force: bool = False, limits: ResourceLimits | None = None,
                     progress: Callable[[int, str], Any] | None = None,
                     on_start: Callable[[int], Any] | None = None, workers: int = 1) -> Outcome | EvaluationRun:
    """:func:`evaluate_submission` up to its first instance: the stored result it reuses, or its row
    created and its code staged, for :meth:`InstanceSlots.finish` to run."""
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
    held = ExitStack()
    try:
        # The workers mount a private copy (hashed again), never the folder the evaluator was pointed at.
        code_dir = held.enter_context(staged_copy(submission))
        held.enter_context(fork_safe_blas())
        return EvaluationRun(submission, task, split, sandbox, store, code_dir, device, limits or meta.limits,
                             progress, on_start, workers, libraries, held)
    except BaseException:
        held.close()
        raise


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limits: threadpool_limits | None = None


@contextmanager
def fork_safe_blas() -> Iterator[None]:
    """One BLAS thread in this process while instances run.

    The sandboxes start each worker with fork (their set-up runs between fork and exec) from the
    instance threads, while this thread scores finished instances with numpy. OpenBLAS stops its
    thread pool before every fork; a matrix product in flight then waits forever for the pool's
    share of the work (seen: the evaluator hung in the planted-features scorer). With one thread
    there is no pool to wait for. scipy's own OpenBLAS is loaded first so that it is limited too;
    the scorers' matrices are small enough that one thread costs little.

    The limit is process-wide and evaluations overlap (the next one starts while the last
    instances of the one before run): it is counted, and lifted only when the last user leaves,
    in whatever order they leave."""
    global _blas_users, _blas_limits
    import scipy.linalg  # noqa: F401  (loads scipy's BLAS, which threadpoolctl can then limit)

    with _blas_lock:
        if _blas_users == 0:
            _blas_limits = threadpool_limits(limits=1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limits is not None:
                _blas_limits.restore_original_limits()
                _blas_limits = None


class EvaluationRun:
    """One evaluation's instances: its row, the rows scored so far, its workers' cancel switch.
    Its instances are started and scored by :class:`InstanceSlots`."""

    def __init__(self, submission: Submission, task: Task, split: SplitData, sandbox: Sandbox, store: ResultsStore,
                 code_dir: Path, device: str, limits: ResourceLimits, progress: Callable[[int, str], Any] | None,
                 on_start: Callable[[int], Any] | None, workers: int, libraries: dict[str, str], held: ExitStack):
        meta = task.metadata
        self.submission, self.task, self.split, self.sandbox, self.store = submission, task, split, sandbox, store
        self.code_dir, self.device, self.limits, self.progress, self.held = code_dir, device, limits, progress, held
        self.records = split.instances
        self.workers = min(workers, max(1, len(self.records)))
        self.threads = max(1, len(os.sched_getaffinity(0)) // self.workers)
        self.entry = submission.spec.tasks[task.name]
        sub_id = store.upsert_submission(submission.name, submission.code_sha256, submission.git_commit,
                                         submission.spec.model_dump())
        self.eval_id = store.start_evaluation(
            submission_id=sub_id, task=task.name, task_version=meta.version, split=split.split,
            dataset_revision=split.revision, evaluator_version=__version__, sandbox=sandbox.name,
            sandbox_info={**sandbox.provenance(), "parallel_workers": str(self.workers),
                          "worker_threads": str(self.threads)},
            device=device, hardware=hardware(device), library_versions=libraries, headline_metric=meta.headline)
        self.rows: list[dict[str, Any] | None] = [None] * len(self.records)
        self.queued = deque(range(len(self.records)))
        self.n_running = 0
        self.n_scored = 0
        self.cancel = threading.Event()
        #: Why it stopped before its last row (its row is marked); raised again on its turn.
        self.error: BaseException | None = None
        self.bar: Any = None
        self.started = time.perf_counter()
        if on_start is not None:
            try:
                on_start(self.eval_id)
            except BaseException as exc:
                self.stop(exc)
                self.close()
                raise

    @property
    def name(self) -> str:
        return f"{self.submission.name} / {self.task.name}"

    def job(self, index: int) -> tuple[WorkerJob, dict]:
        record = self.records[index]
        meta = self.task.metadata
        # Built here, in the parent, from the answers: the worker only ever talks to it.
        truth = self.split.load_answer(record.id)
        return WorkerJob(
            submission_dir=self.code_dir, entry=self.entry,
            problem=method_problem(record, self.device),
            inputs_file=self.split.inputs_path(record.id), answer_fields=list(meta.answer_schema),
            # the instance's own wall time where the task sets one per value of a public field
            limits=self.limits.for_instance(record.public), device=self.device,
            oracle=self.task.oracle(record, truth), threads=self.threads, cancel=self.cancel), truth

    def score(self, index: int, result: WorkerResult, truth: dict) -> None:
        record = self.records[index]
        ok = result.status == InstanceStatus.OK
        status, metrics, error, details = _score_instance(self.task, truth, record, result.answer if ok else None)
        if not ok:
            status, error = result.status, result.error
        if "oracle" in result.extra:
            details = {**(details or {}), **result.extra["oracle"]}
        self.rows[index] = {"group": record.group, "metrics": metrics, "status": status, "details": details}
        self.store.add_instance_result(self.eval_id, instance_id=record.id, group=record.group, status=status,
                                       metrics=metrics, runtime_s=result.wall_s, error=error, details=details)
        self.n_scored += 1
        if self.bar is not None:
            self.bar.update(1)

    def open_bar(self) -> None:
        """Its bar, opened on its turn (after the bar of the evaluation before it closed), showing
        the instances it scored while that one finished."""
        if self.bar is None and self.progress is not None:
            self.bar = self.progress(len(self.records), f"{self.submission.name} / {self.task.name}")
            if self.n_scored:
                self.bar.update(self.n_scored)

    def close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def stop(self, exc: BaseException, note: str = "") -> None:
        """Kill its workers and mark its row, once: it must not look finished, and is never reused."""
        if self.error is not None:
            return
        self.error = exc
        self.cancel.set()
        kind = (EvaluationStatus.INTERRUPTED if isinstance(exc, (KeyboardInterrupt, GeneratorExit)) or note
                else EvaluationStatus.FAILED)
        self.store.mark(self.eval_id, kind, f"{type(exc).__name__}: {exc}{note}"[:500])

    def complete(self) -> Outcome:
        meta = self.task.metadata
        runtime = time.perf_counter() - self.started
        done = [r for r in self.rows if r is not None]
        assert len(done) == len(self.rows), "every instance was stored before the summary"
        n_failed = sum(r["status"] != InstanceStatus.OK for r in done)
        # Validated before it is stored: the writer and every reader share the one model of a summary.
        try:
            summary = EvaluationSummary.for_storage(
                aggregate(meta, done, hidden=not instance_results_public(self.split.split)))
        except SummaryError as exc:
            self.store.mark(self.eval_id, EvaluationStatus.FAILED, str(exc)[:500])   # not a result, never reused
            raise
        status = EvaluationStatus.COMPLETE if n_failed == 0 else EvaluationStatus.PARTIAL
        self.store.finish_evaluation(self.eval_id, status, summary, meta.headline, n_failed, runtime)
        refresh_snapshot(self.store, self.task, self.split.split)
        return _outcome(self.store.evaluation(self.eval_id), self.submission.name, reused=False)

    def close(self) -> None:
        """Its bar closed, its staged code removed, its hold on the BLAS limit let go (idempotent)."""
        try:
            self.close_bar()
        finally:
            self.held.close()


class InstanceSlots:
    """``n`` worker slots shared by the evaluations in flight: at most ``n`` instances run at once in
    all. An evaluation's last instances leave slots free; the next evaluation (from ``refill``)
    takes them rather than let them idle until the last one ends. Each evaluation still runs at
    most its own ``workers`` instances, each with the threads it records; one whose split is
    smaller than ``n`` (fewer workers, more threads each) counts each instance for ``n // workers``
    slots, so the CPUs are never shared among more threads than when it ran alone."""

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f"workers must be at least 1, got {n}")
        self.n = self.free = n
        self.pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="phasebench-instance")
        self.running: dict[Future, tuple[EvaluationRun, int, dict]] = {}
        #: Started and not yet returned by finish, in order: at most the one finishing and the next.
        self.runs: list[EvaluationRun] = []

    def __enter__(self) -> InstanceSlots:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        try:
            for run in list(self.runs):
                # Left behind by an exception elsewhere (or a consumer that stopped listening).
                self._stop(run, exc or GeneratorExit(), note=" (the request stopped before this evaluation ended)")
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _cost(self, run: EvaluationRun) -> int:
        return self.n // run.workers

    def _start(self, run: EvaluationRun) -> bool:
        if (not run.queued or run.error is not None or run.n_running >= run.workers
                or self.free < self._cost(run)):
            return False
        index = run.queued.popleft()
        job, truth = run.job(index)
        self.running[self.pool.submit(run.sandbox.run, job)] = (run, index, truth)
        run.n_running += 1
        self.free -= self._cost(run)
        return True

    def _stop(self, run: EvaluationRun, exc: BaseException, note: str = "") -> None:
        """Mark it, then wait for its workers to die (marked first: a second Ctrl-C could cut the wait short)."""
        run.stop(exc, note)
        mine = [f for f, (r, _, _) in self.running.items() if r is run]
        wait(mine)
        for future in mine:
            del self.running[future]
            run.n_running -= 1
            self.free += self._cost(run)
        if run in self.runs[:1]:
            self.runs.remove(run)
        run.close()

    def finish(self, run: EvaluationRun, refill: Callable[[], EvaluationRun | None] | None = None) -> Outcome:
        """Run ``run`` to its end and return its outcome. Once its last instance has started,
        ``refill()`` gives the next evaluation (None: there is none), whose instances take the slots
        it frees; that one goes on running after this returns, until its own ``finish``."""
        if run not in self.runs:
            self.runs.append(run)
        assert self.runs[0] is run, "evaluations finish in the order they started"
        try:
            if run.error is not None:
                raise run.error       # it failed while the one before it finished
            run.open_bar()
            while run.n_scored < len(run.rows):
                while self._start(run):
                    pass
                if not run.queued and refill is not None and len(self.runs) == 1:
                    upcoming = refill()
                    if upcoming is not None:
                        self.runs.append(upcoming)
                for other in self.runs[1:]:
                    while self._start(other):
                        pass
                done, _ = wait(self.running, return_when=FIRST_COMPLETED)
                for future in done:
                    owner, index, truth = self.running.pop(future)
                    owner.n_running -= 1
                    self.free += self._cost(owner)
                    if owner.error is not None:
                        continue
                    try:
                        owner.score(index, future.result(), truth)
                    except Exception as exc:
                        if owner is run:
                            raise
                        # The next evaluation fails alone; its turn raises it, after this one's result.
                        self._stop(owner, exc)
        except BaseException as exc:
            # Workers still running are killed, not left to finish on their own; the row must not
            # look finished: the operator sees why it stopped, and it is never reused.
            self._stop(run, exc)
            raise
        self.runs.remove(run)
        try:
            run.close_bar()
            return run.complete()
        finally:
            run.close()


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

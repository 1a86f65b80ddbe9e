"""Job-queue throughput: drain J small jobs with N workers, against the inline evaluator on the same jobs.

Every job is one evaluation of the one-instance ``queue-echo`` task (tests/evaluator/queue) with
sandbox ``none`` and --force, so each job does the full work of an evaluation (load the submission,
open the split, start a sandboxed worker process, score, store) and the figures show what the queue
adds: broker round trip, the jobs-table writes, Celery's bookkeeping. Uses the real RabbitMQ
(PHASEBENCH_TEST_BROKER, default amqp://guest:guest@127.0.0.1:5672//) and a fresh PostgreSQL database
(PHASEBENCH_TEST_PG_URL), dropped at the end.

    python perf/queue_throughput.py [--jobs 1000] [--workers 1 2] [--inline-jobs 1000]

Prints, for the inline run and for each N: wall time, jobs per minute, seconds per job per slot;
the queue's overhead per job = (drain time x N / jobs) - (inline time / jobs), i.e. the extra time
a slot spends per job compared with running the same evaluation inline.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tqdm import tqdm  # noqa: E402

from benchmark.dataset import open_split  # noqa: E402
from evaluator.queue import enqueue_submission  # noqa: E402
from evaluator.request import EvaluationRequest  # noqa: E402
from evaluator.runner import evaluate_submission  # noqa: E402
from evaluator.sandbox import get_sandbox  # noqa: E402
from evaluator.store import ResultsStore, make_engine, upgrade  # noqa: E402
from evaluator.submission import load_submission  # noqa: E402
from tests.builders import registered  # noqa: E402
from tests.conftest import _drop_postgres, _postgres_url  # noqa: E402
from tests.evaluator.queue.echo_task import ECHO_TASK, EchoTask, build_echo_split, echo_submission  # noqa: E402
from tests.evaluator.queue.harness import BROKER_URL, QueueHarness, broker_problem  # noqa: E402


@contextmanager
def fresh_database() -> Iterator[str]:
    url = _postgres_url()
    if url is None:
        raise SystemExit("no PostgreSQL server answers (PHASEBENCH_TEST_PG_URL)")
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        _drop_postgres(url)


def inline(n_jobs: int, folder: Path, data: Path, store: ResultsStore) -> float:
    """What `phasebench evaluate --force --sandbox none` does per (submission, task), n_jobs times."""
    from benchmark.task import get_task
    sandbox = get_sandbox("none")
    start = time.perf_counter()
    for _ in tqdm(range(n_jobs), desc="inline", unit="job", file=sys.stderr):
        sub = load_submission(folder)
        task = get_task(ECHO_TASK)
        out = evaluate_submission(sub, task, open_split(ECHO_TASK, "dev", data), sandbox, store, force=True)
        assert out.status == "complete", out
    return time.perf_counter() - start


def queued(n_jobs: int, n_workers: int, folder: Path, data: Path, db_url: str, tmp: Path) -> dict[str, float]:
    h = QueueHarness(db_url=db_url, tmp=tmp, broker_url=BROKER_URL)
    try:
        sub = load_submission(folder)
        request = EvaluationRequest(submissions=[folder], tasks=[ECHO_TASK], sandbox="none", force=True, data_dir=data)
        t = time.perf_counter()
        ids = []
        for _ in tqdm(range(n_jobs), desc=f"enqueue (N={n_workers})", unit="job", file=sys.stderr):
            [job] = enqueue_submission(h.app, h.config, h.jobs, request, sub, [ECHO_TASK])
            ids.append(job.job_id)
        enqueue_s = time.perf_counter() - t
        t = time.perf_counter()
        workers = [h.start_worker(f"perf{i}") for i in range(n_workers)]
        for w in workers:
            h.wait_ready(w, timeout=120)
        start_s = time.perf_counter() - t
        bar = tqdm(total=n_jobs, desc=f"drain (N={n_workers})", unit="job", file=sys.stderr)
        done = 0
        while done < n_jobs:
            time.sleep(0.5)
            counts = h.jobs.counts()
            if counts.get("failed"):
                raise SystemExit(f"{counts['failed']} jobs failed: {h.jobs.list(['failed'], limit=1)[0].job.reason}")
            bar.update(counts.get("done", 0) - done)
            done = counts.get("done", 0)
        bar.close()
        jobs = [v.job for v in h.jobs.list(limit=n_jobs)]
        assert sorted(j.id for j in jobs) == sorted(ids)
        # From the first job a worker started to the last one finished, by the jobs table: worker
        # start-up (the first slot may start well before the last) is not part of it.
        drain_s = (max(j.finished_at for j in jobs) - min(j.started_at for j in jobs)).total_seconds()
        return {"enqueue_s": enqueue_s, "start_s": start_s, "drain_s": drain_s,
                "attempts": sum(j.attempts for j in jobs)}
    finally:
        h.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--inline-jobs", type=int, default=None, help="inline run size (default: --jobs)")
    args = ap.parse_args()
    problem = broker_problem()
    if problem:
        raise SystemExit(problem)
    n_inline = args.inline_jobs or args.jobs
    with tempfile.TemporaryDirectory() as tmp_name, registered(EchoTask()):
        tmp = Path(tmp_name)
        data = tmp / "data"
        build_echo_split(data)
        folder = echo_submission(tmp)
        print(f"{args.jobs} jobs (queue-echo, 1 instance, sandbox none, --force); RabbitMQ + PostgreSQL; "
              f"{len(os.sched_getaffinity(0))} cores visible, shared with whatever else runs here", flush=True)
        print(f"{'run':<14}{'jobs':>6}{'wall s':>9}{'jobs/min':>10}{'s/job/slot':>12}{'vs inline':>11}"
              f"{'overhead ms/job':>17}{'attempts':>10}", flush=True)
        with fresh_database() as db_url:
            engine = make_engine(db_url)
            inline_s = inline(n_inline, folder, data, ResultsStore(engine))
            engine.dispose()
        per_job_inline = inline_s / n_inline
        print(f"{'inline':<14}{n_inline:>6}{inline_s:>9.1f}{60 * n_inline / inline_s:>10.1f}"
              f"{per_job_inline:>12.3f}{1.0:>11.2f}{'—':>17}{'—':>10}", flush=True)
        notes = []
        for n in args.workers:
            with fresh_database() as db_url:   # each run starts from the same empty tables
                r = queued(args.jobs, n, folder, data, db_url, tmp)
            rate = 60 * args.jobs / r["drain_s"]
            per_slot = r["drain_s"] * n / args.jobs
            print(f"{f'queue N={n}':<14}{args.jobs:>6}{r['drain_s']:>9.1f}{rate:>10.1f}{per_slot:>12.3f}"
                  f"{rate * per_job_inline / 60:>11.2f}{1000 * (per_slot - per_job_inline):>17.0f}"
                  f"{r['attempts']:>10}", flush=True)
            notes.append(f"N={n}: enqueue {r['enqueue_s']:.1f} s ({1000 * r['enqueue_s'] / args.jobs:.1f} ms/job, "
                         f"publisher confirms on), workers ready in {r['start_s']:.1f} s (not in the drain time)")
        print("\n".join(notes))


if __name__ == "__main__":
    main()

"""Fill a results database for the leaderboard load test: N submissions x 4 tasks x 100 instances.

The first tasks are the real registered ones (up to four; dev split; 5% of the submissions scored
on an older task version, so the stale section is exercised), each instance result carrying the
``details`` the task's declared plots read (synthetic values: the plots' queries and drawing cost
the same whatever the numbers; two submissions are no-skill floors, ``--floors``, so that every
ranked row has a skill against the best floor, as on the real boards); the rest up to four are
task names the benchmark does not register (``perf-fake-1..``), inserted directly as evaluation
rows: the site ignores unregistered task names, so they only add realistic bulk to the tables and
indexes.

    python perf/fill_leaderboard_db.py --db sqlite:///var/perf-leaderboard.sqlite
"""
from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert  # noqa: E402

from benchmark.metadata import TaskMetadata  # noqa: E402
from benchmark.task import all_tasks  # noqa: E402
from evaluator.results.summary import RECORD_FORMAT  # noqa: E402
from evaluator.runner import refresh_snapshot  # noqa: E402
from evaluator.store import Evaluation, InstanceResult, ResultsStore, Submission, make_engine, upgrade  # noqa: E402

N_TASKS = 4


def plot_details(meta: TaskMetadata | None, rng: random.Random, skill: float) -> dict | None:
    """Positive values for every detail key the task's plots read; keys that name a prediction
    ("predicted_*", "p_hat", "upper") scatter around the last truth-like key by the method's skill."""
    if meta is None or not meta.plots:
        return None
    keys = list(dict.fromkeys(k for p in meta.plots for k in p.detail_keys()))
    out: dict[str, float] = {}
    truth = 10 ** rng.uniform(-1, 2)
    for key in keys:
        if key.startswith("predicted") or key in ("p_hat", "upper"):
            out[key] = truth * 10 ** rng.gauss(0, 0.5 * (1 - skill) + 0.02)
        else:
            truth = 10 ** rng.uniform(-1, 2)
            out[key] = truth
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite:///var/perf-leaderboard.sqlite")
    ap.add_argument("--submissions", type=int, default=1000)
    ap.add_argument("--instances", type=int, default=100)
    ap.add_argument("--no-snapshots", action="store_true", help="store no board snapshots")
    ap.add_argument("--floors", type=int, default=2,
                    help="submissions declared no-skill floors (as on the real boards: every ranked row then has "
                         "a skill against the best floor to compute and show)")
    args = ap.parse_args()
    if args.db.startswith("sqlite:///"):
        path = Path(args.db.removeprefix("sqlite:///"))
        for p in (path, Path(str(path) + "-wal"), Path(str(path) + "-shm")):
            p.unlink(missing_ok=True)
    engine = make_engine(args.db)
    upgrade(engine)
    real_tasks = list(all_tasks())[:N_TASKS]
    real = [t.metadata for t in real_tasks]
    tasks: list[tuple[str, TaskMetadata | None]] = [(m.name, m) for m in real]
    tasks += [(f"perf-fake-{i}", None) for i in range(1, N_TASKS - len(real) + 1)]
    rng = random.Random(0)
    t0 = time.perf_counter()
    now = datetime(2025, 6, 1, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(insert(Submission), [
            {"id": s + 1, "name": f"method-{s:04d}", "code_sha256": hashlib.sha256(str(s).encode()).hexdigest(),
             "git_commit": "abc1234", "created_at": now,  # column names (core insert)
             "metadata": {"name": f"method-{s:04d}", "authors": ["Perf Author"], "description": "synthetic",
                      "license": "MIT", "baseline": s < 3, "floor": 3 <= s < 3 + args.floors, "gpu": False,
                      "requirements": [], "tasks": []}}
            for s in range(args.submissions)])
    ev_id = 0
    for task, meta in tasks:
        metric_names = [m.name for m in meta.metrics] if meta else ["score"]
        headline = meta.headline if meta else "score"
        groups = list(meta.groups) if meta else ["a", "b", "c"]
        evals, insts = [], []
        for s in range(args.submissions):
            ev_id += 1
            skill = rng.random()
            per = [{m: min(1.0, max(0.0, skill + rng.gauss(0, 0.15))) for m in metric_names}
                   for _ in range(args.instances)]
            means = {m: sum(p[m] for p in per) / len(per) for m in metric_names}
            summary = {"n_instances": args.instances,
                       "metrics": {m: {"value": v, "ci_low": v - 0.03, "ci_high": v + 0.03, "n": args.instances}
                                   for m, v in means.items()},
                       "groups": {g: {"n": args.instances // len(groups), **{m: means[m] for m in metric_names}}
                                  for g in groups}}
            version = meta.version - 1 if meta and s % 20 == 0 else meta.version if meta else 1
            evals.append({"id": ev_id, "submission_id": s + 1, "task": task, "task_version": version,
                          "split": "dev", "dataset_revision": "sha256:" + "0" * 64, "evaluator_version": "0.1.0",
                          "sandbox": "process", "device": "cpu", "hardware": {"cpu": "perf"},
                          "library_versions": {"numpy": "2"}, "started_at": now, "record_format": RECORD_FORMAT,
                          "finished_at": now + timedelta(seconds=ev_id), "status": "complete",
                          "headline_metric": headline, "headline": means[headline],
                          "headline_ci_low": means[headline] - 0.03, "headline_ci_high": means[headline] + 0.03,
                          "n_instances": args.instances, "n_failed": 0, "runtime_s": 10.0, "metrics": summary,
                          "note": None})
            insts.extend({"evaluation_id": ev_id, "instance_id": f"{task}-{k:04d}", "group_name": groups[k % len(groups)],
                          "status": "ok", "metrics": p, "runtime_s": 0.1, "error": None,
                          "details": plot_details(meta, rng, skill)}
                         for k, p in enumerate(per))
        with engine.begin() as conn:
            conn.execute(insert(Evaluation), evals)
            conn.execute(insert(InstanceResult), insts)
        print(f"{task}: {len(evals)} evaluations, {len(insts)} instance rows ({time.perf_counter() - t0:.0f} s)")
    if not args.no_snapshots:
        store = ResultsStore(engine)
        for task in real_tasks:
            refresh_snapshot(store, task, "dev")
            print(f"{task.name}: board snapshot stored ({time.perf_counter() - t0:.0f} s)")
    engine.dispose()
    print(f"filled {args.db}")


if __name__ == "__main__":
    main()

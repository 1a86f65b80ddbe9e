"""Load test of the leaderboard: serve it under gunicorn (2 workers) on 127.0.0.1 against a filled
database (perf/fill_leaderboard_db.py) and drive it with a bounded threaded client.

    python perf/fill_leaderboard_db.py
    python perf/leaderboard_load.py --db sqlite:///var/perf-leaderboard.sqlite

Each target gets a fixed number of requests (and a time cap) from --threads client threads; the
report is p50/p99 latency and requests/s per target. Targets: p50 <= 50 ms, p99 <= 200 ms,
>= 200 req/s. The first requests of each worker build the cached leaderboard and rank intervals
(a warm-up phase, reported separately). "API leaderboard" is the default first page of 100 rows,
"API leaderboard all" all 1,000 in one page; the task pages carry the task's declared plots.
"""
from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {
    "task page": "/tasks/planted-features",
    "task page sorted": "/tasks/planted-features?sort=mmcs&order=desc",
    "API leaderboard": "/api/v1/tasks/planted-features/leaderboard",
    "API leaderboard all": "/api/v1/tasks/planted-features/leaderboard?limit=1000",
    "API plot": "/api/v1/tasks/planted-features/plots/recall-vs-superposition",
    "task page log-log": "/tasks/scaling-exponents",
    "overview": "/",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(port: int, path: str) -> tuple[int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, len(body)
    finally:
        conn.close()


def run_target(port: int, path: str, requests: int, threads: int, cap_s: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    counter = [0]
    deadline = time.perf_counter() + cap_s

    def worker() -> None:
        while True:
            with lock:
                if counter[0] >= requests or time.perf_counter() > deadline:
                    return
                counter[0] += 1
            t = time.perf_counter()
            try:
                status, _ = get(port, path)
            except OSError:
                status = 0
            dt = time.perf_counter() - t
            with lock:
                latencies.append(dt)
                if status != 200:
                    errors[0] += 1

    start = time.perf_counter()
    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    wall = time.perf_counter() - start
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {"n": len(latencies), "errors": errors[0], "p50_ms": 1000 * q[49], "p99_ms": 1000 * q[98],
            "rps": len(latencies) / wall, "wall_s": wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default="sqlite:///var/perf-leaderboard.sqlite")
    ap.add_argument("--requests", type=int, default=2000, help="per target")
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--cap", type=float, default=60.0, help="time cap per target, seconds")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-cache", action="store_true",
                    help="serve with the in-process cache off (PHASEBENCH_LEADERBOARD_CACHE=false)")
    args = ap.parse_args()
    port = free_port()
    env = {**os.environ, "PHASEBENCH_DB": args.db, "PHASEBENCH_LEADERBOARD_CACHE": "false" if args.no_cache else "true"}
    gunicorn = [sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b", f"127.0.0.1:{port}", "--timeout", "120",
                "--log-level", "warning", "leaderboard:create_app()"]
    proc = subprocess.Popen(gunicorn, cwd=ROOT, env=env, start_new_session=True)
    ok = True
    try:
        for _ in range(300):
            try:
                if get(port, "/api/v1/tasks")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            print("gunicorn did not come up", file=sys.stderr)
            return 1
        print(f"gunicorn -w {args.workers} on 127.0.0.1:{port}, db {args.db}, {args.threads} client threads, "
              f"in-process cache {'off' if args.no_cache else 'on'}")
        t = time.perf_counter()
        for path in TARGETS.values():          # warm both workers' caches (several requests each)
            for _ in range(4 * args.workers):
                status, size = get(port, path)
                assert status == 200, (path, status)
        print(f"warm-up (builds boards + rank intervals in each worker): {time.perf_counter() - t:.1f} s")
        print(f"{'target':<20} {'n':>6} {'err':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}  bytes")
        for name, path in TARGETS.items():
            r = run_target(port, path, args.requests, args.threads, args.cap)
            size = get(port, path)[1]
            meets = r["p50_ms"] <= 50 and r["p99_ms"] <= 200 and r["rps"] >= 200 and not r["errors"]
            ok &= meets
            print(f"{name:<20} {r['n']:>6} {r['errors']:>4} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
                  f"{r['rps']:>8.0f}  {size}{'' if meets else '  (misses a target)'}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
    print("all targets met" if ok else "some targets missed")
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())

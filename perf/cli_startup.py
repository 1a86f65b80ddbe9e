"""How long `phasebench <subcommand> --help` takes to start, this checkout against another commit.

The other commit's evaluator/ and benchmark/ are exported (git archive) to a temporary folder and
run from there with this virtual environment; the two are timed alternately, each command
``--repeats`` times, and the medians and their ratio printed.
    python perf/cli_startup.py [--before HEAD~1] [--repeats 7]
"""
from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = [["--help"], ["db", "upgrade", "--help"], ["validate", "--help"], ["tasks", "--help"],
            ["evaluate", "--help"]]


def timed(cwd: Path, args: list[str]) -> float:
    start = time.perf_counter()
    # -m from cwd: that folder's evaluator and benchmark come first on the path
    subprocess.run([sys.executable, "-m", "evaluator.cli", *args], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--before", default="HEAD~1")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp)
        archive = subprocess.run(["git", "archive", args.before, "evaluator", "benchmark"], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        tarfile.open(fileobj=io.BytesIO(archive)).extractall(old, filter="data")
        print(f"{'phasebench ...':28s} {args.before:>10s} {'now':>8s} {'now/before':>11s}")
        for command in COMMANDS:
            times: dict[str, list[float]] = {"before": [], "now": []}
            for i in range(args.repeats):
                for which in (("before", "now") if i % 2 == 0 else ("now", "before")):
                    times[which].append(timed(old if which == "before" else ROOT, command))
            before, now = statistics.median(times["before"]), statistics.median(times["now"])
            print(f"{' '.join(command):28s} {before:9.2f}s {now:7.2f}s {now / before:10.2f}x", flush=True)


if __name__ == "__main__":
    main()

"""Choose a baseline's constant on the train split: evaluate a copy of the submission at each value, keep the best.

    .venv/bin/python scripts/fit_constants.py relu-sae --task planted-features --constant L1 \\
        --values 0.05,0.1,0.2,0.25,0.3,0.5

Each value runs through the real evaluator (`phasebench evaluate --split train`, in a throw-away database)
on a copy of ``submissions/<name>`` whose module-level line ``<CONSTANT> = ...`` (in --file, default
method.py) is rewritten; the headline aggregate of every value is printed, and the value with the best one
(ties: the smallest, listed first) is the one to ship. Train answers are public, and neither dev nor test
is read: a baseline fitted this way declares ``fitted_on: [train]`` and is out-of-sample on dev.
The train split must be built first (`phasebench data build --split train --task <task>`).
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmark.task import get_task  # noqa: E402
from evaluator.store import ResultsStore, make_engine, upgrade  # noqa: E402


def variant(folder: Path, dest: Path, file: str, constant: str, value: str) -> Path:
    """A copy of the submission with ``constant`` set to ``value`` (exactly one assignment must match)."""
    out = dest / f"{folder.name}-{constant.lower()}-{value}".replace(".", "p").replace("_", "-")[:64]
    shutil.copytree(folder, out, ignore=shutil.ignore_patterns("__pycache__"))
    path = out / file
    text, n = re.subn(rf"^{re.escape(constant)}( *(?::[^=]+)?)= [^#\n]*?( *#.*)?$",
                      lambda m: f"{constant}{m.group(1)}= {value}{m.group(2) or ''}", path.read_text(), flags=re.M)
    if n != 1:
        raise SystemExit(f"{folder / file}: {n} module-level assignments of {constant} (expected exactly one)")
    path.write_text(text)
    spec = yaml.safe_load((out / "submission.yaml").read_text())
    spec["name"] = out.name
    (out / "submission.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("submission", help="a folder name under submissions/")
    ap.add_argument("--task", required=True)
    ap.add_argument("--constant", required=True, help="a module-level name, e.g. L1")
    ap.add_argument("--values", required=True, help="comma-separated Python literals, e.g. 0.1,0.2")
    ap.add_argument("--file", default="method.py", help="the file (in the submission folder) that assigns it")
    ap.add_argument("--sandbox", default="none", help="the evaluator's sandbox (none: fitting, not scoring)")
    ap.add_argument("--workers", default="1")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="for a method that can use a GPU")
    args = ap.parse_args()
    task = get_task(args.task)
    metric = task.metadata.headline_metric
    folder = REPO / "submissions" / args.submission
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/fit.sqlite"
        upgrade(make_engine(db))
        for value in args.values.split(","):
            sub = variant(folder, Path(tmp), args.file, args.constant, value)
            start = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "evaluator", "evaluate", str(sub), "--task", task.name,
                                  "--split", "train", "--db", db, "--sandbox", args.sandbox,
                                  "--workers", args.workers, "--device", args.device], cwd=REPO, capture_output=True, text=True)
            if run.returncode:
                raise SystemExit(f"{sub.name}: the evaluation failed\n{run.stderr[-3000:]}")
            store = ResultsStore(make_engine(db))
            ev = next(r.evaluation for r in store.latest_finished(task.name, "train") if r.submission.name == sub.name)
            results.append((value, ev.headline, ev.n_failed, ev.n_instances))
            print(f"{args.submission} {args.constant}={value}: train {metric.name} {ev.headline:.4f} "
                  f"({ev.n_instances} instances, {ev.n_failed} failed, {time.perf_counter() - start:.0f} s)",
                  flush=True)
    sign = -1.0 if metric.higher_is_better else 1.0
    best = min(results, key=lambda r: sign * r[1])
    print(f"{args.submission}: {args.constant} = {best[0]} (best train {metric.name} {best[1]:.4f})")


if __name__ == "__main__":
    main()

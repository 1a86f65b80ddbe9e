"""Wall time of the whole planted-features dev split for every baseline, through the real evaluator.

Each baseline is evaluated with --force in the bubblewrap sandbox into a throw-away database;
the random-atoms baseline (no work at all) is the reference for the sandbox's fixed cost.
    python perf/dev_split_baselines.py [--sandbox bwrap] [--device cpu]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sandbox", default="bwrap")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    subs = sorted(p for p in (REPO / "submissions").iterdir() if (p / "submission.yaml").exists())
    times: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{tmp}/perf.sqlite"
        for sub in subs:
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "evaluator.cli", "evaluate", str(sub), "--force", "--db", db,
                            "--sandbox", args.sandbox, "--device", args.device],
                           check=True, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[sub.name] = time.perf_counter() - start
        out = subprocess.run([sys.executable, "-m", "evaluator.cli", "evaluate", *map(str, subs), "--db", db],
                             capture_output=True, text=True, cwd=REPO)
    ref = times.get("random-atoms", min(times.values()))
    print(f"planted-features dev split, sandbox {args.sandbox}, device {args.device}")
    print(f"{'submission':<22}{'wall s':>9}{'x random-atoms':>16}")
    for name, t in times.items():
        print(f"{name:<22}{t:>9.1f}{t / ref:>16.1f}")
    print(f"{'all baselines':<22}{sum(times.values()):>9.1f}")
    print(out.stdout)


if __name__ == "__main__":
    main()

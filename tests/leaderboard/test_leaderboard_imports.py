"""The website's path needs no torch: the leaderboard image leaves it out (docker/leaderboard.Dockerfile),
so a page that imported a task's generator or trainer would fail there and nowhere else."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmark.task import all_tasks

REPO = Path(__file__).resolve().parents[2]

# Runs in a fresh interpreter: the test session itself has imported torch long before this test.
_SERVE_EVERY_PAGE = """
import json, sys
import leaderboard
url, submission, *tasks = sys.argv[1:]
client = leaderboard.create_app({"DATABASE_URL": url}).test_client()
paths = ["/", "/api/v1/tasks", f"/submissions/{submission}", f"/api/v1/submissions/{submission}"]
paths += [p for t in tasks for p in (f"/tasks/{t}", f"/api/v1/tasks/{t}/leaderboard")]
pages = {p: client.get(p) for p in paths}
print(json.dumps({"status": {p: r.status_code for p, r in pages.items()},
                  "shows_submission": {p: submission in r.get_data(as_text=True) for p, r in pages.items()},
                  "torch_imported": "torch" in sys.modules}))
"""


def test_pages_of_every_task_leave_torch_unimported(add, site_db_url):
    tasks = [t.name for t in all_tasks()]
    for task in tasks:
        add(name="sub-a", task=task, headline=0.5)
    run = subprocess.run([sys.executable, "-c", _SERVE_EVERY_PAGE, site_db_url, "sub-a", *tasks],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert run.returncode == 0, run.stderr
    served = json.loads(run.stdout.strip().splitlines()[-1])
    assert all(code == 200 for code in served["status"].values()), served["status"]
    # every page listed the stored result, so the rows, plots and breakdowns of each task were rendered
    missing = [p for p, shown in served["shows_submission"].items() if not shown and p != "/api/v1/tasks"]
    assert not missing, missing
    assert not served["torch_imported"], "a page imported torch (a task module imports its trainer at import time)"

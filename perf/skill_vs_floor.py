"""Each method's headline and paired gain over the best no-skill floor, per task, as the board computes them.

    .venv/bin/python perf/skill_vs_floor.py --db sqlite:///var/board.sqlite [--split dev] [--task NAME ...]

Reads a results database (fill it with `phasebench evaluate`) and prints the tables of the results
card (leaderboard/cards.py: each task's board built with the leaderboard's own code, the best
out-of-sample floor, in-sample rows apart, skill and the paired gain with its 95% bootstrap interval,
stratified by group, over the ranked instances both answered). `phasebench results card` writes the
whole card.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.task import all_tasks  # noqa: E402
from leaderboard.app import create_app  # noqa: E402
from leaderboard.board import get_board  # noqa: E402
from leaderboard.cards import task_results_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--task", action="append", default=[])
    args = ap.parse_args()
    app = create_app({"DATABASE_URL": args.db})
    with app.app_context():
        for task in all_tasks():
            if args.task and task.name not in args.task:
                continue
            table = task_results_table(get_board(task.metadata, args.split))
            if table:
                print(table)


if __name__ == "__main__":
    main()

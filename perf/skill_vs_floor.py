"""Each method's headline and paired gain over the best no-skill floor, per task, as the board computes them.

    .venv/bin/python perf/skill_vs_floor.py --db sqlite:///var/board.sqlite [--split dev] [--task NAME ...]

Reads a results database (fill it with `phasebench evaluate`), builds each task's board with the
leaderboard's own code (leaderboard/board.py: the best out-of-sample floor, in-sample rows apart) and
prints, per task, the floor and for every other row its headline, its skill against the floor and the
paired gain (method minus floor, oriented so that positive is better) with its 95% bootstrap interval
(benchmark/stats.py: skill_against_floor, stratified by group, over the ranked instances both answered).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmark.task import all_tasks  # noqa: E402
from leaderboard.app import create_app  # noqa: E402
from leaderboard.board import best_floor, board_skill, get_board  # noqa: E402


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--split", default="dev", choices=["dev", "test"])
    ap.add_argument("--task", action="append", default=[])
    args = ap.parse_args()
    app = create_app({"DATABASE_URL": args.db})
    print("| task | row | kind | fitted_on | headline | skill [95%] | paired gain vs floor [95%] | n |")
    print("|---|---|---|---|---|---|---|---|")
    with app.app_context():
        for task in all_tasks():
            if args.task and task.name not in args.task:
                continue
            board = get_board(task.metadata, args.split)
            floor = best_floor(board)
            if floor is None:
                continue
            skills = board_skill(board)
            head = f"{task.metadata.headline} ({'higher' if task.metadata.headline_metric.higher_is_better else 'lower'} is better)"
            for row in board.floors + board.current + board.in_sample:
                spec = row.submission.meta if isinstance(row.submission.meta, dict) else {}
                kind = ("best floor" if row is floor else "floor" if row.floor else
                        "in-sample" if row.in_sample(args.split) else "baseline" if row.baseline else "method")
                s = skills.get(row.evaluation.id)
                skill = "" if s is None else f"{_f(s.value)} [{_f(s.ci_low)}, {_f(s.ci_high)}]"
                gain = "" if s is None else f"{_f(s.gain.diff)} [{_f(s.gain.ci_low)}, {_f(s.gain.ci_high)}]"
                print(f"| {task.name}: {head} | {row.submission.name} | {kind} | {','.join(spec.get('fitted_on') or [])}"
                      f" | {_f(row.headline)} | {skill} | {gain} | {'' if s is None else s.n} |")


if __name__ == "__main__":
    main()

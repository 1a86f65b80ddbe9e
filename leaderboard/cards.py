"""The results card: every task's board on one split as markdown tables, computed by the board code
the pages use (leaderboard/board.py: ranking, the best out-of-sample floor, in-sample rows apart,
skill and paired gain against the floor), so the card and the site never disagree.

``phasebench results card --db URL --split dev --out RESULTS.md`` writes it; it holds only what the
database holds (no date of its own), so the same database gives the same bytes.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.card import make_card, md_cell
from benchmark.stats import Skill
from benchmark.task import all_tasks
from evaluator.results.ranking import RankedRow

from .board import Board, best_floor, board_detectable_difference, board_skill, get_board

if TYPE_CHECKING:
    from huggingface_hub import DatasetCard

__all__ = ["row_kind", "results_card", "task_results_table", "write_results_card"]


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _signed(x: float | None) -> str:
    return "—" if x is None else f"{x:+.3f}"


def row_kind(row: RankedRow, board: Board, floor: RankedRow | None) -> str:
    """How the board treats a row: best floor, floor, in-sample, baseline or method."""
    if row is floor:
        return "best floor"
    if row.floor:
        return "floor, in-sample" if row.in_sample(board.split) else "floor"
    if row.in_sample(board.split):
        return "in-sample"
    return "baseline" if row.baseline else "method"


def _skill_cells(s: Skill | None) -> list[str]:
    if s is None:
        return ["", "", ""]
    gain = f"{_signed(s.gain.diff)} [{_signed(s.gain.ci_low)}, {_signed(s.gain.ci_high)}]"
    return [f"{_f(s.value)} [{_f(s.ci_low)}, {_f(s.ci_high)}]", gain, str(s.n)]


def task_results_table(board: Board) -> str | None:
    """One task's section: the ranked rows, then the in-sample ones, then the floors; None for an empty board."""
    rows = board.current + board.in_sample + board.floors
    if not rows:
        return None
    meta = board.meta
    floor = best_floor(board)
    skills = board_skill(board)
    groups = [g for g in meta.groups if any(g in r.groups for r in rows)]
    head = meta.headline_metric
    header = (["submission", "kind", "fitted_on", f"{head.name} [95% CI]", *groups,
               "skill [95%]", "gain over best floor [95%]", "n", "failed", "time"])
    lines = ["| " + " | ".join(md_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        spec: dict[str, Any] = row.submission.meta if isinstance(row.submission.meta, dict) else {}
        ev = row.evaluation
        cells = [row.submission.name, row_kind(row, board, floor), ",".join(spec.get("fitted_on") or []) or "—",
                 f"{_f(row.headline)} [{_f(row.ci_low)}, {_f(row.ci_high)}]",
                 *(_f(row.groups.get(g, {}).get(head.name)) for g in groups),
                 *_skill_cells(skills.get(ev.id)), f"{ev.n_failed}/{ev.n_instances}",
                 "—" if ev.runtime_s is None else f"{ev.runtime_s:.0f} s"]
        lines.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
    direction = "higher is better" if head.higher_is_better else "lower is better"
    intro = [f"## {meta.name} (version {meta.version})", "",
             f"Headline `{head.name}` ({direction}, {head.aggregation} over instances); per-group columns give "
             f"it per {meta.group_label}."]
    if floor is not None:
        intro[-1] += (f" Skill is (m − f) / (best − f) against the best out-of-sample floor, "
                      f"{floor.submission.name} ({_f(floor.headline)}); the gain is the paired difference over the "
                      "instances both answered, oriented so that positive is better.")
    elif board.floors:
        intro[-1] += " Every floor here was fitted on this split (in-sample): no zero of skill, so no skill column."
    if meta.unranked_groups:
        intro[-1] += f" Unranked groups (shown, not in the headline): {', '.join(meta.unranked_groups)}."
    detectable = board_detectable_difference(board)
    if detectable is not None:
        intro[-1] += f" This split separates headline differences of about {_f(detectable)} at 95%."
    return "\n".join(intro + ["", *lines]) + "\n"


def _provenance(boards: list[Board]) -> str:
    rows = [r for b in boards for r in b.current + b.in_sample + b.floors]
    evaluators = sorted({r.evaluation.evaluator_version for r in rows if r.evaluation.evaluator_version})
    sandboxes = sorted({r.evaluation.sandbox for r in rows if r.evaluation.sandbox})
    devices = sorted({r.evaluation.device for r in rows if r.evaluation.device})
    finished = [r.evaluation.finished_at for r in rows if r.evaluation.finished_at is not None]
    newest = max(finished).date().isoformat() if finished else "—"
    return (f"{len(rows)} evaluation(s), the newest finished {newest}; evaluator {', '.join(evaluators) or '—'}, "
            f"sandbox {', '.join(sandboxes) or '—'}, device {', '.join(devices) or '—'}.")


def results_card(split: str) -> DatasetCard:
    """The results card of a split (inside the app's context: it reads the app's database)."""
    from huggingface_hub import DatasetCardData

    boards = [get_board(t.metadata, split) for t in all_tasks()]
    sections = [s for s in (task_results_table(b) for b in boards) if s]
    body = "\n".join([
        f"# PhaseBench results ({split} split)\n",
        f"Generated by `phasebench results card --split {split}` from the results database with the "
        "leaderboard's own board code: each task's current version, the newest finished evaluation of each "
        "submission, ranked rows first, then methods fitted on this split's answers (in-sample, not ranked), "
        "then the no-skill floors (never ranked). Intervals are 95% bootstrap intervals over instances "
        f"(stratified by group); a failed instance counts at the metric's worst value. {_provenance(boards)}\n",
        *(sections or ["No finished evaluation on this split.\n"]),
    ])
    return make_card(DatasetCardData(license="mit", pretty_name=f"PhaseBench results ({split})",
                                     tags=["benchmark", "leaderboard"]), body)


def write_results_card(db_url: str, split: str, out: Path | str) -> Path:
    from .app import create_app

    app = create_app({"DATABASE_URL": db_url})
    with app.app_context():
        text = str(results_card(split))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out

"""The board snapshot the evaluator stores (evaluator.results.board) reads back, on SQLite and on
PostgreSQL, as exactly what computing it gives: every float of the rank intervals, skills and
detectable difference survives the JSON column bit for bit."""
from __future__ import annotations

from benchmark.task import get_task
from evaluator.results.board import (build_board, compute_detectable, compute_intervals, compute_skills,
                                     detectable_key, intervals_key, read_snapshot, refresh_board_snapshot,
                                     skill_key, store_instance_table)
from tests.leaderboard.conftest import make_evaluation
from tests.leaderboard.test_board_snapshot import TASK, _fill


def test_a_stored_snapshot_reads_back_as_computed(store):
    _fill(lambda **kw: make_evaluation(store, **kw))
    meta = get_task(TASK).metadata
    assert refresh_board_snapshot(store, meta, "dev")
    fingerprint = store.board_fingerprint(TASK, "dev")
    snapshot = read_snapshot(store, meta, "dev", fingerprint)
    assert snapshot is not None
    board = build_board(meta, "dev", fingerprint, store.latest_finished(TASK, "dev"))
    table = store_instance_table(store)
    assert snapshot.intervals_for(intervals_key(board)) == compute_intervals(board, table)
    skills = compute_skills(board, table)
    assert skills and snapshot.skills_for(skill_key(board)) == skills
    assert snapshot.detectable_for(detectable_key(board)) == (True, compute_detectable(board, table))
    # the next one replaces it (one row per board)
    assert refresh_board_snapshot(store, meta, "dev")
    assert read_snapshot(store, meta, "dev", fingerprint) == snapshot

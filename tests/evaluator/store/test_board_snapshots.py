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


def test_the_stored_rows_read_back_by_slice_and_are_replaced_with_the_snapshot(store):
    import json

    from evaluator.results.board import read_stored_board
    _fill(lambda **kw: make_evaluation(store, **kw))
    meta = get_task(TASK).metadata
    assert refresh_board_snapshot(store, meta, "dev")
    fingerprint = store.board_fingerprint(TASK, "dev")
    whole = read_stored_board(store, meta, "dev", fingerprint, with_overall=True)
    assert whole is not None and whole.overall
    board = build_board(meta, "dev", fingerprint, store.latest_finished(TASK, "dev"))
    assert [json.loads(t)["evaluation_id"] for t in whole.current] == [r.evaluation.id for r in board.current]
    assert [json.loads(t)["submission"] for t in whole.floors] == ["floor"]
    assert [json.loads(t)["submission"] for t in whole.in_sample] == ["fitted"]
    assert [(v, [json.loads(t)["submission"] for t in rows]) for v, rows in whole.stale] == [(meta.version - 1, ["old"])]
    assert whole.header.n_current == len(board.current) and whole.header.floor == "floor"
    part = read_stored_board(store, meta, "dev", fingerprint, offset=2, limit=3)
    assert part is not None and part.current == whole.current[2:5] and part.offset == 2 and part.overall is None
    assert part.floors == whole.floors and part.stale == whole.stale
    past = read_stored_board(store, meta, "dev", fingerprint, offset=2**40, limit=2**40)
    assert past is not None and past.current == []
    # another board (a new result) has no stored rows until the evaluator stores them; the next
    # snapshot replaces the rows, it does not add to them
    make_evaluation(store, name="newcomer", headline=0.99)
    newer = store.board_fingerprint(TASK, "dev")
    assert read_stored_board(store, meta, "dev", newer) is None
    assert refresh_board_snapshot(store, meta, "dev")
    again = read_stored_board(store, meta, "dev", newer)
    assert again is not None and len(again.current) == len(whole.current) + 1
    assert read_stored_board(store, meta, "dev", fingerprint) is None

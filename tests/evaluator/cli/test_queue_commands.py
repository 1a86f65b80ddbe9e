"""`phasebench enqueue`, `phasebench jobs` and `phasebench worker` as a user types them (the
worker running jobs is exercised in tests/evaluator/queue, where it runs as this command)."""
from __future__ import annotations

import json
import re

from click.testing import CliRunner

from evaluator.cli import main
from evaluator.store import make_engine, upgrade
from tests.evaluator.queue.echo_task import ECHO_TASK, echo_submission
from tests.evaluator.queue.harness import QueueHarness
from tests.builders import write_submission


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_enqueue_prints_job_ids_and_positions_and_jobs_lists_them(broker_url, pg_url, echo_data, tmp_path):
    h = QueueHarness(db_url=pg_url, tmp=tmp_path, broker_url=broker_url)
    common = ["--broker", broker_url, "--queue", h.prefix, "--db", pg_url]
    try:
        a, b = echo_submission(tmp_path, name="alpha"), echo_submission(tmp_path, name="beta")
        out = invoke("enqueue", a, b, "--sandbox", "none", "--data-dir", echo_data, *common)
        assert out.exit_code == 0, out.output
        lines = re.findall(r"job (\d+)\t(\S+) / queue-echo / dev\tqueued, position (\d+)", out.output)
        assert [(name, int(pos)) for _, name, pos in lines] == [("alpha", 1), ("beta", 2)]
        again = invoke("enqueue", a, "--sandbox", "none", "--data-dir", echo_data, *common)
        assert f"job {lines[0][0]}\t" in again.output and "already queued; not added twice" in again.output

        listed = invoke("jobs", "--db", pg_url)
        assert listed.exit_code == 0 and "queued: 2  running: 0  done: 0  failed: 0" in listed.output
        rows = [json.loads(line) for line in invoke("jobs", "--db", pg_url, "--json").output.splitlines()]
        assert [(r["submission"], r["state"], r["position"]) for r in rows] == [("beta", "queued", 2),
                                                                               ("alpha", "queued", 1)]
        assert invoke("jobs", "--db", pg_url, "--state", "done", "--json").output == ""
        # The broker holds both messages, durably.
        with h.app.connection_for_write() as conn:
            _, messages, _ = conn.default_channel.queue_declare(h.config.queue_for("cpu"), passive=True)
        assert messages == 2
    finally:
        h.close()


def test_enqueue_without_a_broker_says_so_and_queues_nothing(tmp_path):
    db = f"sqlite:///{tmp_path}/r.sqlite"
    out = CliRunner().invoke(main, ["enqueue", str(echo_submission(tmp_path)), "--broker",
                                    "amqp://guest:guest@127.0.0.1:1//", "--db", db])
    assert out.exit_code == 1
    assert "no broker answers at amqp://guest:***@127.0.0.1:1//" in out.output
    assert "phasebench evaluate" in out.output


def test_enqueue_rejects_what_no_worker_could_run(broker_url, tmp_path):
    db = f"sqlite:///{tmp_path}/r.sqlite"
    h = QueueHarness(db_url=db, tmp=tmp_path, broker_url=broker_url)
    try:
        common = ["--broker", broker_url, "--queue", h.prefix, "--db", db]
        invalid = write_submission(tmp_path, name="bad", tasks={"no-such-task": "method:run"})
        out = invoke("enqueue", invalid, *common)
        assert out.exit_code == 1 and "not queued, the submission is invalid" in out.output
        out = invoke("enqueue", echo_submission(tmp_path), "--task", "planted-features", *common)
        assert "answers none of the tasks planted-features; skipped" in out.output
        assert h.jobs.list() == []
    finally:
        h.close()


def test_worker_arguments_are_checked_before_it_starts(tmp_path):
    db = f"sqlite:///{tmp_path}/r.sqlite"
    out = CliRunner().invoke(main, ["worker", "--gpus", "0,0", "--db", db])
    assert out.exit_code == 2 and "lists a GPU twice" in out.output
    out = CliRunner().invoke(main, ["worker", "--gpus", "0,1", "--concurrency", "3", "--db", db])
    assert out.exit_code == 2 and "one job per GPU" in out.output
    old = make_engine(db)
    upgrade(old, "0003")  # a database from before the job queue
    out = CliRunner().invoke(main, ["worker", "--db", db])
    assert out.exit_code == 1 and "run `phasebench db upgrade`" in out.output
    out = CliRunner().invoke(main, ["jobs", "--db", db])
    assert out.exit_code == 1 and "schema revision 0003" in out.output


def test_the_job_queue_does_not_change_inline_evaluation(tmp_path, echo_data):
    """No broker needed: `phasebench evaluate` runs the same job in this process."""
    db = f"sqlite:///{tmp_path}/r.sqlite"
    out = invoke("evaluate", echo_submission(tmp_path), "--task", ECHO_TASK, "--sandbox", "none",
                 "--data-dir", echo_data, "--db", db)
    assert out.exit_code == 0 and "complete" in out.output

"""`phasebench enqueue` takes the options of `phasebench evaluate` that a queued job can use, checks
them as evaluate does, and the job record carries them to the worker, which honours them."""
from __future__ import annotations

from click.testing import CliRunner

from evaluator.cli import main
from evaluator.queue import execute_job
from evaluator.queue.job_request import request_of
from evaluator.request import LimitOverrides
from tests.evaluator.queue.echo_task import ECHO_TASK, build_echo_split, echo_submission
from tests.evaluator.queue.harness import QueueHarness
from tests.builders import write_submission

COMMIT = "0123456789abcdef0123456789abcdef01234567"
NO_BROKER = "amqp://guest:guest@127.0.0.1:1//"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_enqueue_checks_its_options_before_any_broker_is_asked(tmp_path):
    sub = write_submission(tmp_path)
    common = ["--broker", NO_BROKER, "--db", f"sqlite:///{tmp_path}/r.sqlite"]
    out = invoke("enqueue", sub, "--task", "planted-featurez", *common)
    assert out.exit_code == 2 and "did you mean 'planted-features'" in out.output, out.output
    out = invoke("enqueue", sub, "--data-repo", "org/tasks@main", *common)
    assert out.exit_code == 2 and "--data-repo" in out.output and "pinned revision" in out.output, out.output
    out = invoke("enqueue", sub, "--data-repo", f"org/tasks@{COMMIT}", "--data-dir", tmp_path, *common)
    assert out.exit_code == 2 and "--data-dir or --data-repo, not both" in out.output, out.output
    out = invoke("enqueue", sub, "--workers", "2", "--device", "cuda", *common)
    assert out.exit_code == 2 and "--workers above 1 is for --device cpu" in out.output, out.output
    out = invoke("enqueue", sub, "--output-limit", "0", *common)
    assert out.exit_code == 2 and "--output-limit" in out.output, out.output


def test_the_job_carries_every_option_and_the_worker_honours_them(broker_url, tmp_path):
    db = f"sqlite:///{tmp_path}/r.sqlite"
    h = QueueHarness(db_url=db, tmp=tmp_path, broker_url=broker_url)
    try:
        data = tmp_path / "data"
        build_echo_split(data, n_instances=2)
        # echo-1 (x = 1) answers 80 kB: over a 0.05 MB output limit, under the task's 1 MB.
        sub = echo_submission(tmp_path, extra="if problem['x'] == 1: return np.zeros(10_000)")
        args = ["enqueue", sub, "--sandbox", "none", "--data-dir", data, "--output-limit", "0.05",
                "--time-limit", "20", "--memory-limit", "1500", "--broker", broker_url, "--queue", h.prefix, "--db", db]
        out = invoke(*args, "--workers", "2")
        assert out.exit_code == 0, out.output
        assert "not added twice" in invoke(*args, "--workers", "2").output
        # Another request for the same code is another job.
        assert "queued, position 2" in invoke(*args, "--workers", "1").output
        view, _ = sorted(h.jobs.list(), key=lambda v: v.job.id)
        request = request_of(view.job)
        assert request.workers == 2 and request.tasks == [ECHO_TASK] and request.sandbox == "none"
        assert request.limits == LimitOverrides(wall_time_s=20, memory_mb=1500, output_mb=0.05)
        assert request.data_dir == data.resolve() and request.code_sha256 == view.job.code_sha256

        result = execute_job(view.job.id, h.config, "w#0")
        assert result.state == "done", result
        ev = h.results.evaluation(result.evaluation_id, with_instances=True)
        assert ev.sandbox_info["parallel_workers"] == "2"
        assert {i.instance_id: i.status for i in ev.instances} == {"echo-0": "ok", "echo-1": "output"}
    finally:
        h.close()


def test_a_job_reads_its_data_repo_on_the_worker(broker_url, tmp_path, monkeypatch):
    from evaluator.hub import cached_dataset_dir

    monkeypatch.setenv("PHASEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dest = cached_dataset_dir("org/tasks", COMMIT)
    build_echo_split(dest)
    (dest / ".phasebench-revision").write_text(COMMIT + "\n")
    db = f"sqlite:///{tmp_path}/r.sqlite"
    h = QueueHarness(db_url=db, tmp=tmp_path, broker_url=broker_url)
    try:
        out = invoke("enqueue", echo_submission(tmp_path), "--sandbox", "none", "--data-repo", f"org/tasks@{COMMIT}",
                     "--broker", broker_url, "--queue", h.prefix, "--db", db)
        assert out.exit_code == 0, out.output
        [view] = h.jobs.list()
        assert request_of(view.job).data_repo == f"org/tasks@{COMMIT}"
        result = execute_job(view.job.id, h.config, "w#0")
        assert result.state == "done", result
        assert h.results.evaluation(result.evaluation_id).dataset_revision == f"hub:{COMMIT}"
    finally:
        h.close()

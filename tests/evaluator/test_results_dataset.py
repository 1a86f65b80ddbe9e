"""The results dataset: export -> import into a fresh database -> the same leaderboard."""
import json

import pytest
from click.testing import CliRunner

from benchmark.task import get_task
from evaluator.cli import main
from evaluator.results.dataset import (DATASET_FORMAT, RECORDS_FILE, ResultsDatasetError, export_results,
                                       import_results, read_records)
from evaluator.results.summary import RECORD_FORMAT
from evaluator.store import ResultsStore, make_engine, upgrade
from leaderboard import create_app
from tests.leaderboard.conftest import make_evaluation


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _fresh(url):
    engine = make_engine(url)
    upgrade(engine)
    return engine


def _populate(engine):
    """A small history with what the leaderboard treats specially: baselines, a re-run of the
    same submission, a stale task version, partial, failed and running rows, per-instance
    details, container provenance and two tasks."""
    make_evaluation(engine, name="pca", headline=0.61, baseline=True)
    make_evaluation(engine, name="topk-sae", headline=0.72, baseline=True,
                    sandbox="docker", sandbox_info={"image": "localhost/phasebench-evaluator", "image_id": "sha256:ab"})
    make_evaluation(engine, name="new-method", headline=0.50, code_sha256="1" * 64)
    make_evaluation(engine, name="new-method", headline=0.80, code_sha256="2" * 64,  # the newest counts
                    instances=[{"instance_id": "i-000", "group": "T0", "status": "ok",
                                "metrics": {"recall@0.9": 0.8}, "runtime_s": 2.0, "error": None,
                                "details": {"n_over_d": 2.5, "l0": 4}}])
    make_evaluation(engine, name="old-run", headline=0.95, task_version=0)
    make_evaluation(engine, name="shaky", headline=0.40, status="partial")
    make_evaluation(engine, name="broken", headline=None, status="failed", note="RuntimeError: engine gone")
    make_evaluation(engine, name="in-flight", headline=None, status="running")
    make_evaluation(engine, name="scaling-loglog", task="scaling-exponents", headline=0.3, baseline=True)
    make_evaluation(engine, name="pca", headline=0.58, split="test", baseline=True)


SITE_URLS = ["/api/v1/tasks/planted-features/leaderboard", "/api/v1/tasks/planted-features/leaderboard?split=test",
             "/api/v1/tasks/scaling-exponents/leaderboard", "/api/v1/overall", "/api/v1/overall?split=test",
             "/api/v1/submissions/new-method", "/api/v1/submissions/broken",
             "/api/v1/tasks/planted-features/leaderboard?format=csv", "/", "/tasks/planted-features",
             "/tasks/planted-features/plot.svg", "/submissions/new-method"]


def _site(url, evaluation_ids):
    app = create_app({"TESTING": True, "DATABASE_URL": url})
    client = app.test_client()
    pages = {}
    for path in SITE_URLS + [f"/api/v1/evaluations/{i}" for i in evaluation_ids]:
        resp = client.get(path)
        assert resp.status_code == 200, (path, resp.status_code)
        pages[path] = resp.get_data(as_text=True)
    app.extensions["phasebench_db"].engine.dispose()
    return pages


def test_the_leaderboard_rebuilt_from_the_dataset_alone_is_the_same(tmp_path):
    source_url, target_url = f"sqlite:///{tmp_path / 'source.sqlite'}", f"sqlite:///{tmp_path / 'rebuilt.sqlite'}"
    _populate(_fresh(source_url))
    out = invoke("results", "export", "--db", source_url, "--out", tmp_path / "ds")
    assert out.exit_code == 0 and "10 evaluation(s)" in out.output, out.output
    out = invoke("results", "import", "--db", target_url, tmp_path / "ds")
    assert out.exit_code == 0 and "10 evaluation(s) imported" in out.output, out.output

    # the imported boards have their snapshots (as after an evaluation); the source has none: the
    # pages below are the same either way
    target = ResultsStore(make_engine(target_url))
    assert target.board_snapshot("planted-features", get_task("planted-features").metadata.version, "dev")
    target.engine.dispose()

    ids = [json.loads(line)["evaluation_id"] for line in (tmp_path / "ds" / RECORDS_FILE).read_text().splitlines()]
    before, after = _site(source_url, ids), _site(target_url, ids)
    for path in before:
        assert after[path] == before[path], path
    board = json.loads(after["/api/v1/tasks/planted-features/leaderboard"])
    # Not a trivially empty board: the ranking and the newest run of new-method made it across.
    assert [r["submission"] for r in board["rows"]][:3] == ["new-method", "topk-sae", "pca"]


def test_records_carry_provenance_instances_and_format(tmp_path):
    engine = _fresh(f"sqlite:///{tmp_path / 'r.sqlite'}")
    _populate(engine)
    summary = export_results(engine, tmp_path / "ds")
    assert summary.n_evaluations == 10 and summary.by_task_split["planted-features/dev"] == 8
    records = [r for _, r in read_records(tmp_path / "ds")]
    docker = next(r for r in records if r["sandbox"] == "docker")
    assert docker["dataset_format"] == DATASET_FORMAT and docker["record_format"] == RECORD_FORMAT
    assert docker["sandbox_info"]["image_id"] == "sha256:ab"
    assert docker["submission"]["code_sha256"] and docker["submission"]["metadata"]["baseline"] is True
    assert docker["dataset_revision"].startswith("sha256:") and docker["library_versions"]["torch"]
    assert docker["started_at"].endswith("+00:00")
    assert [i["status"] for i in docker["instances"]] == ["ok", "timeout"]
    detailed = [r for r in records if r["instances"] and r["instances"][0].get("details")]
    assert detailed[0]["instances"][0]["details"] == {"n_over_d": 2.5, "l0": 4}
    card = (tmp_path / "ds" / "README.md").read_text()
    assert card.startswith("---\n") and f"data_files: {RECORDS_FILE}" in card
    assert "| planted-features/dev | 8 |" in card
    # the statuses an instance row can hold are the store's, every one of them (budget was missing)
    assert "(ok, error, timeout, memory, output, invalid, crash, budget)" in card


def test_round_trip_is_byte_identical_on_each_database(tmp_path, db_url):
    source = _fresh(f"sqlite:///{tmp_path / 'source.sqlite'}")
    _populate(source)
    export_results(source, tmp_path / "a")
    target = _fresh(db_url)
    assert import_results(target, tmp_path / "a") == 10
    export_results(target, tmp_path / "b")
    for name in (RECORDS_FILE, "README.md"):
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes(), name
    # The id sequences moved past the imported ids: the evaluator can go on writing.
    new_id = make_evaluation(target, name="after-import", headline=0.1)
    assert new_id == 11
    assert ResultsStore(target).evaluation(new_id).submission.name == "after-import"
    target.dispose()


def test_import_refuses_a_non_empty_database(tmp_path):
    engine = _fresh(f"sqlite:///{tmp_path / 'r.sqlite'}")
    _populate(engine)
    export_results(engine, tmp_path / "ds")
    with pytest.raises(ResultsDatasetError, match="already holds 10 evaluation"):
        import_results(engine, tmp_path / "ds")


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(dataset_format=99), "dataset_format 99 is not one this evaluator reads"),
    (lambda r: r.update(record_format=RECORD_FORMAT + 1), "newer than this evaluator's"),
    (lambda r: r.pop("dataset_revision"), "field 'dataset_revision' missing"),
    (lambda r: r["instances"][1].pop("status"), r"instances\[1\]: field 'status' missing"),
    (lambda r: r.update(started_at="yesterday"), "started_at: not an ISO 8601 time"),
])
def test_a_bad_record_is_refused_naming_its_line_and_nothing_is_imported(tmp_path, change, message):
    engine = _fresh(f"sqlite:///{tmp_path / 'r.sqlite'}")
    _populate(engine)
    export_results(engine, tmp_path / "ds")
    path = tmp_path / "ds" / RECORDS_FILE
    lines = path.read_text().splitlines()
    record = json.loads(lines[2])
    change(record)
    lines[2] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    target = _fresh(f"sqlite:///{tmp_path / 'target.sqlite'}")
    with pytest.raises(ResultsDatasetError, match=message) as err:
        import_results(target, tmp_path / "ds")
    assert f"{RECORDS_FILE}:3" in str(err.value)
    assert ResultsStore(target).latest_finished("planted-features", "dev") == []  # all or nothing


def test_nan_in_a_record_is_refused(tmp_path):
    (tmp_path / "ds" / "data").mkdir(parents=True)
    (tmp_path / "ds" / RECORDS_FILE).write_text('{"dataset_format": 1, "headline": NaN}\n')
    with pytest.raises(ResultsDatasetError, match="NaN is not a number JSON allows"):
        list(read_records(tmp_path / "ds"))


def test_report_markdown_ranks_and_lists_failures(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    engine = _fresh(url)
    make_evaluation(engine, name="pca", headline=0.61, baseline=True)
    make_evaluation(engine, name="my|method", headline=0.70, note=None,
                    instances=[{"instance_id": "i-000", "group": "T0", "status": "error", "metrics": {},
                                "runtime_s": 0.1, "error": "ValueError: bad | shape\nline two"}])
    out = invoke("results", "report", "--db", url, "--submission", "submissions/my|method",
                 "--format", "markdown", "--out", tmp_path / "c.md")
    assert out.exit_code == 0, out.output
    text = (tmp_path / "c.md").read_text()
    assert text.startswith("<!-- phasebench-evaluation-report -->\n### PhaseBench: dev split")
    row = next(line for line in text.splitlines() if line.startswith("| my\\|method | planted-features"))
    assert "recall@0.9 ↑ 0.700" in row and "| 1 of 2 |" in row and "| 1/1 |" in row
    assert "| i-000 | error | `ValueError: bad \\| shape line two` |" in text


def test_report_markdown_shows_a_method_s_message_as_code_only(tmp_path):
    """A method's error is its own text: in the pull-request comment it must not become an image, a
    link, a mention, an HTML comment that hides the rest of the report, or break out of its cell."""
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    nasty = "x <img src=https://evil/p.png> [ok](https://evil) @maintainer <!-- `tick` | end"
    make_evaluation(_fresh(url), name="m", headline=0.5, note=None,
                    instances=[{"instance_id": "i-0", "group": "T0", "status": "error", "metrics": {},
                                "runtime_s": 0.1, "error": nasty}])
    out = invoke("results", "report", "--db", url, "--submission", "m", "--format", "markdown")
    row = next(line for line in out.output.splitlines() if line.startswith("| m | planted-features | i-0"))
    cell = row.split(" | error | ", 1)[1].removesuffix(" |")
    assert cell.startswith("`") and cell.endswith("`") and cell.count("`") == 2, cell
    assert "<img" in cell and "<!--" in cell and "\\|" in cell   # shown, inside one code span


def test_report_fails_for_a_submission_without_a_result(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    make_evaluation(_fresh(url), name="broken", headline=None, status="failed", note="SandboxError: no engine")
    out = invoke("results", "report", "--db", url, "--submission", "broken", "--submission", "nobody")
    assert out.exit_code == 1
    assert "broken" in out.output and "failed" in out.output and "nobody" in out.output
    assert "SandboxError: no engine" in out.output


def test_a_public_export_withholds_the_hidden_splits_instances_and_still_rebuilds_its_board(tmp_path):
    # A hidden split's per-instance rows hold its answers (the task's details, scores keyed by the
    # instance id every method is handed): the published dataset must not carry them. Its board's
    # rank intervals and skills need them, so the stored board (aggregates) travels instead.
    from evaluator.runner import refresh_snapshot
    from tests.leaderboard.conftest import noisy_instances
    source_url, target_url = f"sqlite:///{tmp_path / 'source.sqlite'}", f"sqlite:///{tmp_path / 'rebuilt.sqlite'}"
    source = _fresh(source_url)
    for split in ("dev", "test"):
        for k, name in enumerate(("alpha", "beta", "gamma")):
            values = [0.2 + 0.2 * k + 0.01 * (j % 7) for j in range(12)]
            instances = [{**row, "instance_id": f"secret-{split}-{j:02d}", "details": {"n_over_d": 1.0 + j}}
                         for j, row in enumerate(noisy_instances(values))]
            make_evaluation(source, name=name, split=split, headline=sum(values) / 12, instances=instances)
        make_evaluation(source, name="floor", split=split, headline=0.1, meta={"floor": True},
                        instances=[{**r, "instance_id": f"secret-{split}-{j:02d}"}
                                   for j, r in enumerate(noisy_instances([0.1] * 12))])
    store = ResultsStore(source)
    task = get_task("planted-features")
    for split in ("dev", "test"):
        refresh_snapshot(store, task, split)
    summary = export_results(source, tmp_path / "ds")
    written = "".join(p.read_text() for p in (tmp_path / "ds").rglob("*") if p.is_file())
    assert "secret-test-" not in written and "secret-dev-00" in written
    assert summary.n_withheld == 4 * 12 and "48 of the hidden test split withheld" in written
    records = [r for _, r in read_records(tmp_path / "ds")]
    assert all(r["instances"] == [] and r["instances_withheld"] == 12 for r in records if r["split"] == "test")
    assert all(len(r["instances"]) == 12 and r["instances_withheld"] == 0 for r in records if r["split"] == "dev")

    out = invoke("results", "import", "--db", target_url, tmp_path / "ds")
    assert out.exit_code == 0, out.output
    paths = ["/api/v1/tasks/planted-features/leaderboard?split=test", "/api/v1/overall?split=test",
             "/tasks/planted-features?split=test", "/api/v1/tasks/planted-features/leaderboard"]
    before, after = _get_all(source_url, paths), _get_all(target_url, paths)
    assert after == before
    board = json.loads(after[paths[0]])
    assert {r["rank_interval"]["high"] for r in board["rows"]} and all(r["skill"] for r in board["rows"])
    # the operator's private backup keeps them
    out = invoke("results", "export", "--db", source_url, "--out", tmp_path / "private", "--with-hidden-instances")
    assert out.exit_code == 0 and "withheld" not in out.output, out.output
    assert "secret-test-00" in (tmp_path / "private" / RECORDS_FILE).read_text()
    out = invoke("results", "export", "--db", source_url, "--out", tmp_path / "again")
    assert "48 of the hidden test split withheld" in out.output, out.output
    source.dispose()


def _get_all(url, paths):
    app = create_app({"TESTING": True, "DATABASE_URL": url, "LEADERBOARD_CACHE": False})
    client = app.test_client()
    out = {p: client.get(p).get_data(as_text=True) for p in paths}
    app.extensions["phasebench_db"].engine.dispose()
    return out

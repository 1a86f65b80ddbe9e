"""The phasebench command as a user types it."""
import re

import pytest
from click.testing import CliRunner

from evaluator.cli import main
from evaluator.hub import plan_push
from evaluator.store import ResultsStore, head_revision, make_engine
from evaluator.submission import load_submission
from tests.builders import REPO, build_tiny_split, requires_bwrap, write_submission


def invoke(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env, catch_exceptions=False)


def test_tasks_lists_the_headline_and_its_direction():
    out = invoke("tasks")
    assert out.exit_code == 0
    assert "planted-features (v3): headline recall@0.9 (higher is better)" in out.output


def test_validate_exit_codes(tmp_path):
    good = write_submission(tmp_path, name="good")
    bad = write_submission(tmp_path, name="bad", tasks={"planted-featurez": "method:run"})
    assert invoke("validate", good).exit_code == 0
    out = invoke("validate", good, bad)
    assert out.exit_code == 1 and "did you mean 'planted-features'" in out.output


def test_db_upgrade(tmp_path):
    out = invoke("db", "upgrade", "--db", f"sqlite:///{tmp_path}/r.sqlite")
    assert out.exit_code == 0 and f"schema revision {head_revision()}" in out.output


def test_data_build_verify_and_corruption(tmp_path):
    data = tmp_path / "data"
    build_tiny_split(data)  # a split with a manifest, then verified by the CLI
    out = invoke("data", "verify", "--data-dir", data)
    # The tiny split is not the pinned dev split: verify says so and fails.
    assert out.exit_code == 1 and "differs from the pinned" in out.output
    f = data / "planted-features" / "dev" / "inputs" / "tiny-0.safetensors"
    f.write_bytes(f.read_bytes()[:-1] + b"\0")
    out = invoke("data", "verify", "--data-dir", data)
    assert out.exit_code == 1 and "tiny-0.safetensors: sha256 differs" in out.output


def test_test_split_needs_the_operator_secret(tmp_path):
    no_file = str(tmp_path / "no-secret")
    out = CliRunner().invoke(main, ["data", "build", "--split", "test", "--data-dir", str(tmp_path)],
                             env={"PHASEBENCH_TEST_SECRET": "", "PHASEBENCH_TEST_SECRET_FILE": no_file})
    assert out.exit_code == 2 and "no test-split secret" in out.output and "phasebench data secret new" in out.output
    assert not (tmp_path / "planted-features").exists()   # refused before any work


@pytest.mark.parametrize("weak, why", [
    ("20240601", "at least 128"),                                   # a date: short, and decimal
    ("1" * 40, "only decimal digits"),                              # an integer, however long
    ("00000000000000000000000000000000000000000000", "only decimal digits"),
    ("abababababababababababababababababababab", "distinct hex digits"),
    ("0123456789abcdef0123456789abcdef", "the same half twice"),
    ("not hex at all, but long enough to pass a length check", "hexadecimal"),
])
def test_a_weak_secret_is_refused_with_the_reason(tmp_path, weak, why):
    out = CliRunner().invoke(main, ["data", "build", "--split", "test", "--data-dir", str(tmp_path)],
                             env={"PHASEBENCH_TEST_SECRET": weak})
    assert out.exit_code == 2 and why in out.output and "PHASEBENCH_TEST_SECRET" in out.output, out.output
    assert weak not in out.output   # a refused secret is not echoed either


def test_the_old_integer_seed_is_refused_with_what_to_do_instead(tmp_path):
    out = CliRunner().invoke(main, ["data", "build", "--split", "test", "--data-dir", str(tmp_path)],
                             env={"PHASEBENCH_TEST_SEED": "20240601", "PHASEBENCH_TEST_SECRET": ""})
    assert out.exit_code == 2 and "no longer read" in out.output and "secret new" in out.output


def test_secret_new_writes_a_private_file_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "var" / "test-secret"
    out = invoke("data", "secret", "new", "--file", path)
    assert out.exit_code == 0 and str(path) in out.output
    text = path.read_text().strip()
    assert len(text) == 64 and (path.stat().st_mode & 0o777) == 0o600 and text not in out.output
    assert invoke("data", "secret", "new", "--file", path).exit_code == 2
    assert path.read_text().strip() == text
    assert invoke("data", "secret", "new", "--file", path, "--force").exit_code == 0
    assert path.read_text().strip() != text
    printed = invoke("data", "secret", "new", "--print").output.strip()
    assert len(printed) == 64 and printed != text
    env = {"PHASEBENCH_TEST_SECRET_FILE": str(path), "PHASEBENCH_TEST_SECRET": ""}
    assert CliRunner().invoke(main, ["data", "secret", "check"], env=env).exit_code == 0
    path.chmod(0o644)
    shared = CliRunner().invoke(main, ["data", "secret", "check"], env=env)
    assert shared.exit_code == 1 and "readable by other users" in shared.output


def test_git_ignores_the_default_secret_file():
    import subprocess
    out = subprocess.run(["git", "check-ignore", "-q", "var/test-secret"], check=False, cwd=REPO)
    assert out.returncode == 0


def test_push_plan_keeps_test_answers_private(tmp_path):
    build_tiny_split(tmp_path / "pub", n_instances=1)
    build_tiny_split(tmp_path / "pub", split="test", answers_root=tmp_path / "priv", n_instances=1)
    out = invoke("data", "push", "--repo-id", "org/tasks", "--private-repo-id", "org/answers", "--dry-run",
                 "--data-dir", tmp_path / "pub", "--private-dir", tmp_path / "priv")
    assert out.exit_code == 0
    public, private = out.output.split("org/answers:")
    assert "planted-features/dev/answers/tiny-0.safetensors" in public
    assert "planted-features/test/inputs/tiny-0.safetensors" in public
    assert "test/answers" not in public
    assert "planted-features/test/answers/tiny-0.safetensors" in private


def test_push_plan_publishes_only_a_test_splits_index_and_inputs(tmp_path):
    """A test split built with its answers beside the inputs, plus whole runs and a stray file: only the
    manifest, the index and the listed inputs are public."""
    pub = tmp_path / "pub"
    build_tiny_split(pub, split="test", answers_root=pub, n_instances=1)
    split = pub / "planted-features" / "test"
    (split / "runs").mkdir()
    (split / "runs" / "tiny-0.safetensors").write_bytes(b"whole run")
    (split / "notes.txt").write_text("operator's notes")
    (split / "inputs" / "unlisted.safetensors").write_bytes(b"?")
    plan = plan_push(pub, tmp_path / "priv")
    assert [f for f in plan.public if "/test/" in f] == ["planted-features/test/inputs/tiny-0.safetensors",
                                                           "planted-features/test/instances.jsonl",
                                                           "planted-features/test/manifest.json"]


@pytest.mark.parametrize("sandbox", ["none", pytest.param("bwrap", marks=requires_bwrap)])
def test_evaluate_stores_and_reuses(tmp_path, sandbox):
    data = tmp_path / "data"
    build_tiny_split(data)
    sub = write_submission(tmp_path / "subs")
    db = f"sqlite:///{tmp_path}/r.sqlite"
    args = ("evaluate", sub, "--db", db, "--data-dir", data, "--sandbox", sandbox)
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "tiny-method  planted-features  dev    complete  recall@0.9 " in first.output
    assert ("WARNING: sandbox 'none'" in first.output) == (sandbox == "none")
    second = invoke(*args)
    assert "(stored result reused)" in second.output
    third = invoke(*args, "--force")
    assert "(stored result reused)" not in third.output
    rows = ResultsStore(make_engine(db)).evaluations_of("tiny-method")
    assert len(rows) == 2 and all(r.evaluation.status == "complete" for r in rows)


@requires_bwrap
def test_a_stored_bwrap_result_is_not_reused_for_another_sandbox(tmp_path):
    """`make demo` (bwrap) then `make evaluate-in-container`: the second must run the method again."""
    data = tmp_path / "data"
    build_tiny_split(data, n_instances=1)
    sub = write_submission(tmp_path / "subs")
    db = f"sqlite:///{tmp_path}/r.sqlite"
    args = ("evaluate", sub, "--db", db, "--data-dir", data)
    assert invoke(*args, "--sandbox", "bwrap").exit_code == 0
    other = invoke(*args, "--sandbox", "none")
    assert other.exit_code == 0 and "(stored result reused)" not in other.output, other.output
    rows = ResultsStore(make_engine(db)).evaluations_of("tiny-method")
    assert sorted(r.evaluation.sandbox for r in rows) == ["bwrap", "none"]


def test_evaluate_with_workers_stores_them_and_refuses_zero(tmp_path):
    data = tmp_path / "data"
    build_tiny_split(data, n_instances=4)
    sub = write_submission(tmp_path / "subs")
    db = f"sqlite:///{tmp_path}/r.sqlite"
    args = ("evaluate", sub, "--db", db, "--data-dir", data, "--sandbox", "none")
    out = invoke(*args, "--workers", "2")
    assert out.exit_code == 0, out.output
    assert re.search(r"^tiny-method +planted-features +dev +complete .* 0/4 ", out.output, re.MULTILINE)
    [row] = ResultsStore(make_engine(db)).evaluations_of("tiny-method")
    assert row.evaluation.sandbox_info["parallel_workers"] == "2"
    zero = CliRunner().invoke(main, [str(a) for a in (*args, "--workers", "0")])
    assert zero.exit_code == 2 and "Invalid value for '--workers'" in zero.output
    gpu = CliRunner().invoke(main, [str(a) for a in (*args, "--workers", "2", "--device", "cuda")])
    assert gpu.exit_code == 2 and "--workers above 1 is for --device cpu" in gpu.output


def test_evaluate_reports_an_invalid_submission_and_goes_on(tmp_path):
    data = tmp_path / "data"
    build_tiny_split(data)
    good = write_submission(tmp_path / "subs", name="good")
    bad = write_submission(tmp_path / "subs", name="bad", entry="method:missing")
    out = invoke("evaluate", bad, good, "--db", f"sqlite:///{tmp_path}/r.sqlite", "--data-dir", data,
                 "--sandbox", "none")
    assert out.exit_code == 1
    assert "not evaluated, the submission is invalid" in out.output and "no top-level function 'missing'" in out.output
    assert re.search(r"^good +planted-features +dev +complete", out.output, re.MULTILINE)


def test_a_train_split_is_refused_for_a_task_without_one(tmp_path):
    out = invoke("data", "build", "--split", "train", "--task", "grokking-onset", "--data-dir", tmp_path)
    assert out.exit_code == 2 and "grokking-onset: no train split; it has dev, test" in out.output
    assert not any(tmp_path.iterdir())   # refused before any work


def test_evaluate_on_train_is_stored_and_kept_off_the_boards(tmp_path):
    """Train answers are public like dev's (beside the inputs); a train result is stored under its split and
    is no row of the dev or test board (leaderboard/board.py reads one split)."""
    data = tmp_path / "data"
    split = build_tiny_split(data, split="train")
    assert split.has_answers and split.answers_root == split.root
    sub = write_submission(tmp_path / "subs", name="fits")
    db = f"sqlite:///{tmp_path}/r.sqlite"
    out = invoke("evaluate", sub, "--split", "train", "--db", db, "--data-dir", data, "--sandbox", "none")
    assert out.exit_code == 0, out.output
    assert re.search(r"^fits +planted-features +train +complete", out.output, re.MULTILINE)
    store = ResultsStore(make_engine(db))
    assert [r.submission.name for r in store.latest_finished("planted-features", "train")] == ["fits"]
    assert store.latest_finished("planted-features", "dev") == [] == store.latest_finished("planted-features", "test")


def test_evaluate_without_data_says_how_to_build(tmp_path):
    sub = write_submission(tmp_path / "subs")
    out = invoke("evaluate", sub, "--db", f"sqlite:///{tmp_path}/r.sqlite", "--data-dir", tmp_path / "nothing",
                 "--sandbox", "none")
    assert out.exit_code == 1 and "phasebench data build" in out.output


@pytest.mark.slow
@requires_bwrap
def test_every_baseline_end_to_end_on_the_dev_split(tmp_path, dev_split):
    """Every planted-features submission through `phasebench evaluate` on the whole dev split, but
    relu-sae: its 3,000 steps per instance made this one test 15 of the suite's 24 minutes on two
    cores. It is evaluated in both sandboxes by tests/docker/test_same_scores.py and on the whole
    dev split by `make demo`."""
    subs = sorted(p for p in (REPO / "submissions").iterdir() if (p / "submission.yaml").exists()
                  and "planted-features" in load_submission(p).spec.tasks and p.name != "relu-sae")
    db = f"sqlite:///{tmp_path}/r.sqlite"
    out = invoke("evaluate", *subs, "--task", "planted-features", "--db", db,
                 "--data-dir", dev_split.root.parent.parent)
    assert out.exit_code == 0, out.output
    store = ResultsStore(make_engine(db))
    rows = {r.submission.name: r.evaluation for r in store.latest_finished("planted-features", "dev")}
    assert set(rows) == {p.name for p in subs}
    assert all(ev.status == "complete" and ev.n_instances == len(dev_split.instances) for ev in rows.values())
    assert rows["random-atoms"].headline == 0.0
    if "topk-sae" in rows:
        assert rows["topk-sae"].headline > rows["pca"].headline


def test_data_repo_must_be_pinned(tmp_path):
    sub = write_submission(tmp_path / "subs")
    out = invoke("evaluate", sub, "--data-repo", "org/tasks@main", "--db", f"sqlite:///{tmp_path}/r.sqlite")
    assert out.exit_code == 2 and "pinned revision" in out.output


def test_data_repo_reads_the_cached_revision_offline(tmp_path, monkeypatch):
    from evaluator.hub import cached_dataset_dir

    commit = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("PHASEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    dest = cached_dataset_dir("org/tasks", commit)
    build_tiny_split(dest)
    (dest / ".phasebench-revision").write_text(commit + "\n")
    sub = write_submission(tmp_path / "subs")
    db = f"sqlite:///{tmp_path}/r.sqlite"
    out = invoke("evaluate", sub, "--data-repo", f"org/tasks@{commit}", "--db", db, "--sandbox", "none")
    assert out.exit_code == 0, out.output
    [row] = ResultsStore(make_engine(db)).evaluations_of("tiny-method")
    assert row.evaluation.dataset_revision == f"hub:{commit}"


def test_limits_can_be_overridden(tmp_path):
    data = tmp_path / "data"
    build_tiny_split(data, n_instances=1)
    sub = write_submission(tmp_path / "subs", code="import time\ndef run(problem):\n    time.sleep(30)\n")
    db = f"sqlite:///{tmp_path}/r.sqlite"
    out = invoke("evaluate", sub, "--db", db, "--data-dir", data, "--sandbox", "none", "--time-limit", "1")
    assert out.exit_code == 0 and "partial" in out.output
    [row] = ResultsStore(make_engine(db)).evaluations_of("tiny-method")
    inst = ResultsStore(make_engine(db)).evaluation(row.evaluation.id, with_instances=True).instances[0]
    assert inst.status == "timeout" and "1 s" in inst.error
    bad = CliRunner().invoke(main, ["evaluate", str(sub), "--db", db, "--data-dir", str(data), "--sandbox", "none",
                                    "--memory-limit", "-5"])
    assert bad.exit_code == 2 and "--memory-limit" in bad.output


@pytest.mark.slow
@requires_bwrap
def test_scaling_baselines_end_to_end_on_the_dev_split(tmp_path, dev_split_of):
    split = dev_split_of("scaling-exponents")
    subs = sorted(p for p in (REPO / "submissions").glob("scaling-*") if (p / "submission.yaml").exists())
    assert len(subs) >= 4
    db = f"sqlite:///{tmp_path}/r.sqlite"
    out = invoke("evaluate", *subs, "--task", "scaling-exponents", "--db", db,
                 "--data-dir", split.root.parent.parent)
    assert out.exit_code == 0, out.output
    rows = {r.submission.name: r.evaluation
            for r in ResultsStore(make_engine(db)).latest_finished("scaling-exponents", "dev")}
    assert set(rows) == {p.name for p in subs}
    assert all(ev.status == "complete" and ev.n_instances == len(split.instances) for ev in rows.values())
    # Lower is better: the Chinchilla approach-3 fit extrapolates better than a straight log-log line.
    assert rows["scaling-approach3"].headline < rows["scaling-loglog"].headline


def test_the_cli_does_not_import_the_runner_the_queue_or_scipy_stats_until_a_command_needs_them():
    """`phasebench --help` (every subcommand's module), `db upgrade` or `validate` once waited about a
    second for the runner, the queue and scipy.stats, which only evaluating and the queue use."""
    import subprocess
    import sys

    script = ("import sys\nfrom evaluator.cli import main\n"
              "for name in main.list_commands(None):\n    main.get_command(None, name)\n"
              "print(sorted(m for m in ('scipy.stats', 'evaluator.runner', 'evaluator.request', 'evaluator.queue',"
              " 'celery') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"
    # ...and every subcommand is still listed, and runs
    listed = CliRunner().invoke(main, ["--help"])
    assert listed.exit_code == 0
    for name in ("tasks", "data", "validate", "evaluate", "serve", "db", "enqueue", "worker", "jobs", "sweep",
                 "results", "ci", "settings"):
        assert re.search(rf"^  {name}\b", listed.output, re.M), name
    assert "card" in CliRunner().invoke(main, ["results", "--help"]).output

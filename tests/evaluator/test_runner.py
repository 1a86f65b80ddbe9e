import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from benchmark.task import get_task
from evaluator.runner import evaluate_submission
from evaluator.sandbox import NoSandbox, get_sandbox
from evaluator.store import EvaluationStatus
from evaluator.submission import code_sha256, load_submission
from tests.builders import REPO, SANDBOX_PARAMS, build_tiny_split, write_submission

TASK = get_task("planted-features")
ORACLE_PEEK = """
import numpy as np
from safetensors.numpy import load_file
ANSWERS = {answers!r}

def run(problem):
    # Test-only oracle: reads the truth from the answers folder, which a sandboxed worker cannot see.
    return load_file(f"{{ANSWERS}}/{{problem['instance_id']}}.safetensors")["features"]
"""

MIXED = """
import numpy as np
def run(problem):
    if problem["instance_id"] == "tiny-1":
        raise RuntimeError("cannot handle this one")
    if problem["instance_id"] == "tiny-2":
        return np.ones((3, problem["dim"] + 1))
    return np.random.default_rng(0).standard_normal((problem["n_features"], problem["dim"]))
"""


def test_oracle_scores_one_without_a_sandbox(tmp_path, tiny_split, sqlite_store):
    code = ORACLE_PEEK.format(answers=str(tiny_split.answers_root / "answers"))
    sub = load_submission(write_submission(tmp_path, name="oracle", code=code))
    out = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    assert out.status == EvaluationStatus.COMPLETE and out.headline == 1.0 and out.ci == (1.0, 1.0)


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_a_broken_instance_fails_alone(tmp_path, tiny_split, sqlite_store, sandbox):
    sub = load_submission(write_submission(tmp_path, code=MIXED))
    out = evaluate_submission(sub, TASK, tiny_split, get_sandbox(sandbox), sqlite_store)
    assert out.status == EvaluationStatus.PARTIAL and out.n_failed == 2 and out.n_instances == 3
    ev = sqlite_store.evaluation(out.evaluation_id, with_instances=True)
    by_id = {r.instance_id: r for r in ev.instances}
    assert by_id["tiny-0"].status == "ok" and by_id["tiny-0"].error is None
    assert by_id["tiny-1"].status == "error" and "RuntimeError: cannot handle this one" in by_id["tiny-1"].error
    assert by_id["tiny-2"].status == "invalid" and "expected shape (m, 6)" in by_id["tiny-2"].error
    assert by_id["tiny-1"].metrics["recall@0.9"] == 0.0
    assert ev.sandbox == sandbox and ev.dataset_revision == tiny_split.revision
    assert ev.library_versions["numpy"] and ev.hardware["cores"] >= 1


def test_a_hidden_group_reaches_the_scores_but_never_the_method(tmp_path, sqlite_store):
    """The tier of a planted-features instance is a hidden parameter: the method's problem has no
    'group', and the stored per-instance rows and per-group aggregates still have it."""
    split = build_tiny_split(tmp_path / "data", group_public=False)
    assert '"group"' not in (split.root / "instances.jsonl").read_text()
    code = """
import numpy as np
def run(problem):
    if "group" in problem:
        raise RuntimeError(f"the method was told the hidden group {problem['group']!r}")
    return np.random.default_rng(0).standard_normal((problem["n_features"], problem["dim"]))
"""
    sub = load_submission(write_submission(tmp_path, name="no-peek", code=code))
    out = evaluate_submission(sub, TASK, split, NoSandbox(), sqlite_store)
    assert out.status == EvaluationStatus.COMPLETE
    ev = sqlite_store.evaluation(out.evaluation_id, with_instances=True)
    assert sorted(r.group for r in ev.instances) == ["T0", "T0", "T1"]
    assert set(ev.metrics["groups"]) == {"T0", "T1"}


def test_the_oracle_cannot_peek_inside_bwrap(tmp_path, tiny_split, sqlite_store):
    if not get_sandbox("bwrap").available()[0]:
        pytest.skip("bubblewrap sandbox unavailable")
    code = ORACLE_PEEK.format(answers=str(tiny_split.answers_root / "answers"))
    sub = load_submission(write_submission(tmp_path, name="oracle", code=code))
    out = evaluate_submission(sub, TASK, tiny_split, get_sandbox("bwrap"), sqlite_store)
    assert out.headline == 0.0 and out.n_failed == 3


def test_stored_result_is_reused_unless_forced(tmp_path, tiny_split, sqlite_store):
    sub = load_submission(write_submission(tmp_path))
    first = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    again = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    assert again.reused and again.evaluation_id == first.evaluation_id
    forced = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store, force=True)
    assert not forced.reused and forced.evaluation_id != first.evaluation_id


class _OtherBackend(NoSandbox):
    """A second backend, to tell apart from ``none`` in the stored results."""
    name = "other-backend"


def test_a_result_from_another_sandbox_backend_is_not_reused(tmp_path, tiny_split, sqlite_store):
    """The sandbox is part of the reuse key: a method that behaves differently in the container
    than under bwrap must be run in the container, not shown bwrap's stored scores."""
    sub = load_submission(write_submission(tmp_path))
    first = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    other = evaluate_submission(sub, TASK, tiny_split, _OtherBackend(), sqlite_store)
    assert not other.reused and other.evaluation_id != first.evaluation_id
    assert sqlite_store.evaluation(other.evaluation_id).sandbox == "other-backend"
    again = evaluate_submission(sub, TASK, tiny_split, _OtherBackend(), sqlite_store)
    assert again.reused and again.evaluation_id == other.evaluation_id
    assert evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store).evaluation_id == first.evaluation_id


def test_changed_code_is_evaluated_again(tmp_path, tiny_split, sqlite_store):
    folder = write_submission(tmp_path)
    first = evaluate_submission(load_submission(folder), TASK, tiny_split, NoSandbox(), sqlite_store)
    (folder / "method.py").write_text((folder / "method.py").read_text() + "\n# v2\n")
    second = evaluate_submission(load_submission(folder), TASK, tiny_split, NoSandbox(), sqlite_store)
    assert not second.reused and second.evaluation_id != first.evaluation_id


class _InterruptAfter(NoSandbox):
    """A sandbox backend that behaves like an operator pressing Ctrl-C after n instances."""

    def __init__(self, n: int):
        self.left = n

    def run(self, job):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().run(job)


def test_interrupted_evaluation_never_looks_complete(tmp_path, tiny_split, sqlite_store):
    sub = load_submission(write_submission(tmp_path))
    with pytest.raises(KeyboardInterrupt):
        evaluate_submission(sub, TASK, tiny_split, _InterruptAfter(1), sqlite_store)
    assert sqlite_store.latest_finished("planted-features", "dev") == []
    [row] = sqlite_store.evaluations_of("tiny-method")
    assert row.evaluation.status == EvaluationStatus.INTERRUPTED and row.evaluation.headline is None
    # ...and it is not reused: the next run evaluates afresh and completes.
    out = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store)
    assert not out.reused and out.status == EvaluationStatus.COMPLETE


# Returns only once another instance has started too: with workers=2 the first two instances must
# overlap, or the first one fails. Each records the BLAS threads it was given.
OVERLAP = """
import os, time
import numpy as np
SHARED = {shared!r}

def run(problem):
    me = problem["instance_id"]
    with open(os.path.join(SHARED, me + ".threads"), "w") as f:
        f.write(os.environ["OMP_NUM_THREADS"])
    open(os.path.join(SHARED, me + ".started"), "w").close()
    deadline = time.monotonic() + 20
    while not [n for n in os.listdir(SHARED) if n.endswith(".started") and n != me + ".started"]:
        if time.monotonic() > deadline:
            raise RuntimeError("no other instance ran alongside this one")
        time.sleep(0.01)
    return np.random.default_rng(problem["seed"]).standard_normal((problem["n_features"], problem["dim"]))
"""


def test_workers_run_instances_at_once_with_a_share_of_the_cpus(tmp_path, tiny_split, sqlite_store):
    import os

    shared = tmp_path / "shared"
    shared.mkdir()
    sub = load_submission(write_submission(tmp_path, code=OVERLAP.format(shared=str(shared))))
    out = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store, workers=2)
    assert out.status == EvaluationStatus.COMPLETE and out.n_failed == 0
    threads = str(max(1, len(os.sched_getaffinity(0)) // 2))
    assert {p.read_text() for p in shared.glob("*.threads")} == {threads}
    ev = sqlite_store.evaluation(out.evaluation_id)
    assert ev.sandbox_info["parallel_workers"] == "2" and ev.sandbox_info["worker_threads"] == threads


def test_the_scores_do_not_depend_on_the_number_of_workers(tmp_path, sqlite_store):
    from tests.builders import build_tiny_split

    split = build_tiny_split(tmp_path / "data", n_instances=7)
    sub = load_submission(write_submission(tmp_path))
    results = {}
    for workers in (1, 3):
        out = evaluate_submission(sub, TASK, split, NoSandbox(), sqlite_store, workers=workers, force=True)
        ev = sqlite_store.evaluation(out.evaluation_id, with_instances=True)
        results[workers] = ({i.instance_id: i.metrics for i in ev.instances}, ev.metrics, out.ci)
    assert len(results[1][0]) == 7
    # The bootstrap interval too: rows are aggregated in the split's order, not in finishing order.
    assert results[1] == results[3]


# The first instance returns at once; the others write their pid and sleep far past any test.
SLEEPER = """
import os, time
import numpy as np
SHARED = {shared!r}

def run(problem):
    if problem["instance_id"] != "tiny-0":
        with open(os.path.join(SHARED, problem["instance_id"] + ".pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(600)
    return np.zeros((problem["n_features"], problem["dim"]))
"""


def test_an_interrupt_kills_the_workers_still_running(tmp_path, tiny_split, sqlite_store):
    import time

    import psutil

    shared = tmp_path / "shared"
    shared.mkdir()

    class CtrlCOnFirstResult:
        """A progress bar through which the operator presses Ctrl-C once a sleeper is running."""

        def update(self, n):
            deadline = time.monotonic() + 20
            while not list(shared.glob("*.pid")) and time.monotonic() < deadline:
                time.sleep(0.01)
            raise KeyboardInterrupt

        def close(self):
            pass

    sub = load_submission(write_submission(tmp_path, code=SLEEPER.format(shared=str(shared))))
    with pytest.raises(KeyboardInterrupt):
        evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store, workers=2,
                            progress=lambda total, desc: CtrlCOnFirstResult())
    [pid_file] = shared.glob("*.pid")
    assert not psutil.pid_exists(int(pid_file.read_text()))     # killed, not left sleeping
    [row] = sqlite_store.evaluations_of("tiny-method")
    assert row.evaluation.status == EvaluationStatus.INTERRUPTED
    assert len(sqlite_store.evaluation(row.evaluation.id, with_instances=True).instances) == 1


def test_workers_must_be_positive(tmp_path, tiny_split, sqlite_store):
    sub = load_submission(write_submission(tmp_path))
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        evaluate_submission(sub, TASK, tiny_split, NoSandbox(), sqlite_store, workers=0)


def test_test_split_without_answers_is_refused(tmp_path, sqlite_store):
    from benchmark.dataset import open_split
    from tests.builders import build_tiny_split

    build_tiny_split(tmp_path / "pub", split="test", answers_root=tmp_path / "priv")
    hidden = open_split("planted-features", "test", tmp_path / "pub", tmp_path / "elsewhere")
    sub = load_submission(write_submission(tmp_path))
    with pytest.raises(Exception, match="answers are not available"):
        evaluate_submission(sub, TASK, hidden, NoSandbox(), sqlite_store)


def test_infrastructure_failure_marks_the_evaluation_failed_not_partial(tmp_path, tiny_split, sqlite_store):
    from evaluator.sandbox import SandboxError

    class Broken(NoSandbox):
        def command(self, python, host, job):
            return ["false"], super().command(python, host, job)[1]

    sub = load_submission(write_submission(tmp_path))
    with pytest.raises(SandboxError):
        evaluate_submission(sub, TASK, tiny_split, Broken(), sqlite_store)
    [row] = sqlite_store.evaluations_of("tiny-method")
    assert row.evaluation.status == EvaluationStatus.FAILED and "could not start" in row.evaluation.note
    assert sqlite_store.latest_finished("planted-features", "dev") == []


NASTY_MESSAGES = """
import numpy as np
def run(problem):
    if problem["instance_id"] == "tiny-0":
        raise RuntimeError("NUL here: \\x00, and a lone surrogate: \\udc80 <img src=x>")
    return np.random.default_rng(0).standard_normal((problem["n_features"], problem["dim"]))
"""


def test_a_method_message_with_nul_or_a_lone_surrogate_fails_only_its_instance(tmp_path, tiny_split, store):
    """PostgreSQL refuses NUL in text and the driver cannot encode a lone surrogate: such a message once
    crashed the whole run at the insert. It is stored readable (the bytes named), the run completes."""
    sub = load_submission(write_submission(tmp_path, name="nasty", code=NASTY_MESSAGES))
    out = evaluate_submission(sub, TASK, tiny_split, NoSandbox(), store)
    assert out.status == EvaluationStatus.PARTIAL and out.n_failed == 1 and out.n_instances == 3
    ev = store.evaluation(out.evaluation_id, with_instances=True)
    error = next(r.error for r in ev.instances if r.instance_id == "tiny-0")
    assert "\x00" not in error and "\\x00" in error and "\\udc80" in error and "<img src=x>" in error
    store.mark(out.evaluation_id, EvaluationStatus.INTERRUPTED, "note with \x00 and \udc80")
    assert store.evaluation(out.evaluation_id).note == "note with \\x00 and \\udc80"


PYC_EVIL = """
def run(problem):
    raise RuntimeError("the cached bytecode ran, not method.py")
"""


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_cached_bytecode_beside_the_source_never_runs(tmp_path, tiny_split, sqlite_store, sandbox):
    """An unchecked-hash .pyc in __pycache__ is trusted by CPython without looking at method.py, and
    the code hash skips caches: the worker compiles the submission's modules from source only."""
    import importlib.util
    import py_compile

    folder = write_submission(tmp_path)
    evil = tmp_path / "evil.py"
    evil.write_text(PYC_EVIL)
    target = Path(importlib.util.cache_from_source(str(folder / "method.py")))
    py_compile.compile(str(evil), cfile=str(target), dfile=str(folder / "method.py"), doraise=True,
                       invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    clean = code_sha256(folder)
    sub = load_submission(folder)
    assert sub.code_sha256 == clean
    out = evaluate_submission(sub, TASK, tiny_split, get_sandbox(sandbox), sqlite_store)
    ev = sqlite_store.evaluation(out.evaluation_id, with_instances=True)
    assert out.status == EvaluationStatus.COMPLETE, [r.error for r in ev.instances]


def test_forking_workers_while_scoring_does_not_hang_blas():
    # The sandboxes fork worker processes from the instance threads while the main thread scores
    # with numpy: OpenBLAS's pre-fork hook stops its thread pool under a product in flight, which
    # then never returns (without fork_safe_blas this script hangs on a 2-core machine).
    script = dedent("""
        import subprocess, threading
        import numpy as np
        from evaluator.runner import fork_safe_blas

        a = np.random.default_rng(0).random((1500, 1500))
        with fork_safe_blas():
            stop = threading.Event()
            def forker():
                while not stop.is_set():
                    subprocess.run(["true"], preexec_fn=lambda: None)
            thread = threading.Thread(target=forker)
            thread.start()
            for _ in range(4):
                a @ a
            stop.set()
            thread.join()
        print("done")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0 and done.stdout.strip() == "done", done.stderr


def _speed_task_and_split(root: Path):
    """A toy task whose wall-time limit depends on the public str field ``speed`` (1 s for 'fast', 60 s
    for 'slow'), and a split of one instance of each."""
    import numpy as np

    from benchmark.dataset import SplitWriter, open_split
    from benchmark.metadata import FieldSpec, ResourceLimits, WallTimeBy
    from tests.evaluator.queue.echo_task import ECHO_TASK, EchoTask

    meta = EchoTask.metadata
    schema = {**meta.input_schema, "speed": FieldSpec(kind="str", description="how long the instance may take",
                                                      public_because="the question")}
    limits = ResourceLimits(wall_time_s=60, memory_mb=2000, output_mb=1,
                            wall_time_by=WallTimeBy(field="speed", seconds={"fast": 1.0, "slow": 60.0}))

    class SpeedTask(EchoTask):
        metadata = meta.model_copy(update={"input_schema": schema, "limits": limits})

    writer = SplitWriter(root, ECHO_TASK, "dev", root)
    for i, speed in enumerate(("fast", "slow")):
        writer.add(f"echo-{speed}", "all", {"x": i, "speed": speed}, {"x_array": np.array([i], dtype=np.int64)},
                   {"y": np.array(i + 1.0)}, {})
    writer.close()
    return SpeedTask(), open_split(ECHO_TASK, "dev", root)


def test_each_instance_runs_under_its_own_wall_time_limit(tmp_path, sqlite_store):
    """The runner gives every worker its instance's limit (the task's per-value one), and an operator's
    --time-limit (LimitOverrides) replaces them all."""
    from evaluator.request import LimitOverrides
    from tests.evaluator.queue.echo_task import echo_submission

    from tests.builders import registered

    task, split = _speed_task_and_split(tmp_path / "data")
    with registered(task):
        sub = load_submission(echo_submission(tmp_path, sleep_s=2.5))
    out = evaluate_submission(sub, task, split, NoSandbox(), sqlite_store)
    assert out.status == EvaluationStatus.PARTIAL and out.n_failed == 1
    by_id = {r.instance_id: r for r in sqlite_store.evaluation(out.evaluation_id, with_instances=True).instances}
    assert by_id["echo-fast"].status == "timeout" and "wall-time limit of 1 s" in by_id["echo-fast"].error
    assert by_id["echo-slow"].status == "ok" and by_id["echo-slow"].metrics["error"] == 0.0

    overridden = LimitOverrides(wall_time_s=30).apply(task.metadata.limits)
    assert overridden.wall_time_by is None and overridden.for_instance({"speed": "fast"}).wall_time_s == 30
    again = evaluate_submission(sub, task, split, NoSandbox(), sqlite_store, force=True, limits=overridden)
    assert again.status == EvaluationStatus.COMPLETE and again.n_failed == 0


def test_the_blas_limit_holds_until_the_last_overlapping_evaluation_ends():
    """Evaluations overlap (the next starts while the last instances of the one before run) and
    leave in that order: the first to leave must not lift the process-wide limit under the other."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from evaluator.runner import fork_safe_blas

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        assert before and before != {1}
        first, second = fork_safe_blas(), fork_safe_blas()
        first.__enter__()
        second.__enter__()
        first.__exit__(None, None, None)
        assert blas_threads() == {1}
        second.__exit__(None, None, None)
        assert blas_threads() == before

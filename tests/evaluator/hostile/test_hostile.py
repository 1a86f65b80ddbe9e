"""Hostile submissions against each isolated sandbox (bwrap, container).

Every test throws one attack (a folder under submissions/) into the arena (conftest.py) and checks
its own outcome, then the checks common to all: the evaluation is stored, no secret or answer
byte reached the output or the stored errors, the score is not the answers' score, and another
submission's results, code and scratch folder are unchanged.
"""
import os
import shutil
import time

import numpy as np
import psutil
import pytest

from evaluator.sandbox import get_sandbox
from evaluator.submission import Submission, SubmissionError, code_sha256, load_submission, validate_submission
from tests.builders import ISOLATED_PARAMS, requires_bwrap

from .conftest import ARENA_LIMITS

# Each attack that should find nothing, and steps whose failure its stored error must list
# (proof that the step ran and was blocked, not skipped).
FINDS_NOTHING = {
    "read-answers": ["answer file", "answers dir", "private env", "private dir", "cache", "walk /"],
    "read-proc": ["own environ", "parent environ", "parent mem", "all environs", "pid1 root"],
    "network": ["pg tcp", "redis", "rabbitmq", "pg unix", "engine sock", "dns", "udp 8.8.8.8", "tcp 1.1.1.1"],
    "write-database": ["sqlite", "pg tcp", "pg unix"],
    "write-repository": ["repo", "repo pkg", "site-packages", "own folder", "usr", "host tmp"],
    "mounts": ["remount submission", "remount /usr", "mount proc", "userns", "chroot", "setns"],
    "tamper-other": ["victim code", "victim rows", "other scratch"],
    "mountinfo": ["/proc/self/mountinfo", "/proc/self/mounts"],
}


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
@pytest.mark.parametrize("attack", sorted(FINDS_NOTHING))
def test_attack_finds_nothing(arena, sandbox, attack):
    before = arena.snapshot()
    result = arena.evaluate(arena.submission(attack), sandbox)
    assert result.statuses == ["error", "error"], result.errors
    for error in result.errors:
        assert error.startswith("Contained: "), error
        for step in FINDS_NOTHING[attack]:
            assert f"{step}:" in error, f"step {step!r} did not run: {error}"
    arena.assert_contained(result, before)


def _symlinked_submission(arena):
    folder = arena.submission("symlink-escape")
    (folder / "answer.bin").symlink_to(arena.targets["answer_file"])
    (folder / "answers").symlink_to(arena.targets["answers_dir"])
    (folder / "root").symlink_to("/")
    return folder


def test_symlinks_out_of_the_submission_are_refused(arena):
    folder = _symlinked_submission(arena)
    with pytest.raises(SubmissionError) as err:
        load_submission(folder)
    assert "answer.bin: symlink to" in str(err.value) and "outside the submission" in str(err.value)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_symlinks_resolve_inside_the_sandbox_only(arena, sandbox):
    # Past the loader's refusal (say, a link created after validation): the sandbox still contains it.
    folder = _symlinked_submission(arena)
    spec, _ = validate_submission(folder)
    sub = Submission(folder=folder, spec=spec, code_sha256=code_sha256(folder), git_commit=None)
    before = arena.snapshot()
    result = arena.evaluate(sub, sandbox)
    assert result.statuses == ["error", "error"], result.errors
    assert all(e.startswith("Contained: link to file:") for e in result.errors), result.errors
    arena.assert_contained(result, before)


# The answer and error files are mounted one by one: a forgery cannot even replace them, so each
# variant ends as a worker without an answer (the parent still refuses a link or FIFO it finds).
@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
@pytest.mark.parametrize("variant, status, reason", [
    ("answer-symlink", "crash", "exited with code 0 without an answer"),
    ("error-symlink", "crash", "without an answer"),
    ("fifos", "crash", "without an answer"),
])
def test_forged_scratch_files_are_not_followed(arena, sandbox, variant, status, reason):
    before = arena.snapshot()
    start = time.perf_counter()
    result = arena.evaluate(arena.submission("forged-scratch", variant=variant), sandbox)
    assert time.perf_counter() - start < 30, "the evaluator blocked on a forged file"
    assert result.statuses == [status] * 2, result.errors
    assert all(reason in e for e in result.errors), result.errors
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_in_memory_folders_are_sized(arena, sandbox):
    before = arena.snapshot()
    result = arena.evaluate(arena.submission("tmpfs-memory", fill_mb=600), sandbox)
    assert result.statuses == ["error", "error"], result.errors
    assert all("No space left on device" in e for e in result.errors), result.errors
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_fork_bomb_meets_the_process_limit(arena, sandbox):
    box = get_sandbox(sandbox)
    assert box.max_processes == 512
    box.max_processes = 64  # the same mechanism, reached sooner
    before = arena.snapshot()
    limits = ARENA_LIMITS.model_copy(update={"memory_mb": 4000})  # the process limit, not memory, must stop it
    result = arena.evaluate(arena.submission("fork-bomb", max_children=1000), box, limits)
    assert result.statuses == ["error", "error"], result.errors
    for error in result.errors:
        assert "process limit reached after" in error, error
        assert int(error.split("after ")[1].split()[0]) < 64
    arena.assert_contained(result, before)


@requires_bwrap
def test_fork_bomb_without_a_cgroup_is_killed_by_the_watch(arena, monkeypatch):
    from evaluator.sandbox import bwrap

    monkeypatch.setattr(bwrap, "pids_cgroup_root", lambda: None)
    box = get_sandbox("bwrap")
    box.max_processes = 64
    before = arena.snapshot()
    limits = ARENA_LIMITS.model_copy(update={"memory_mb": 4000})
    result = arena.evaluate(arena.submission("fork-bomb", max_children=1000), box, limits)
    assert result.statuses == ["crash", "crash"], result.errors
    assert all("process limit of 64 exceeded" in e for e in result.errors), result.errors
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
@pytest.mark.parametrize("files, file_mb, reason", [(40, 4, "MB of scratch"), (5000, 0, "files in scratch")])
def test_filling_the_scratch_folder_is_stopped(arena, sandbox, files, file_mb, reason):
    if file_mb == 0:
        pytest.skip("scratch is a tmpfs whose inode count neither bwrap nor Podman can set (nr_inodes); each "
                    "empty file is kernel memory charged to the worker's memory cgroup, which caps the count")
    box = get_sandbox(sandbox)
    box.scratch_mb, box.scratch_files = 64, 1000
    before = arena.snapshot()
    result = arena.evaluate(arena.submission("fill-disk", files=files, file_mb=file_mb), box)
    assert result.statuses == ["output", "output"], result.errors
    assert all(reason in e for e in result.errors), result.errors
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_nothing_outlives_the_time_limit(arena, sandbox):
    before = arena.snapshot()
    limits = ARENA_LIMITS.model_copy(update={"wall_time_s": 3})
    result = arena.evaluate(arena.submission("outlive-timeout"), sandbox, limits)
    assert result.statuses == ["timeout", "timeout"], result.errors
    deadline = time.time() + 5
    while time.time() < deadline:
        alive = [p for p in psutil.process_iter(["cmdline"]) if arena.marker_name in " ".join(p.info["cmdline"] or [])]
        if not alive:
            break
        time.sleep(0.2)
    for p in alive:
        p.kill()
    assert not alive, f"left running: {alive}"
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_output_flood_is_cut(arena, sandbox):
    before = arena.snapshot()
    result = arena.evaluate(arena.submission("flood-output"), sandbox)
    assert result.statuses == ["output", "output"], result.errors
    assert all(len(r.log_tail) <= 4000 for r in result.results)
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
@pytest.mark.parametrize("variant, status, reason", [
    ("numpy-subclass", "ok", ""),
    ("huge-array", "output", "output limit of 5 MB exceeded"),
    ("huge-shape", "invalid", "atoms"),
    ("object-dtype", "error", "expected numbers, got dtype object"),
    ("nan", "invalid", "atoms"),
    ("dict-subclass", "invalid", "expected exactly the field 'atoms'"),
    ("many-fields", "invalid", "expected exactly the field 'atoms'"),
    ("pickled-payload", "invalid", "unreadable answer file"),
    ("header-bomb", "invalid", "unreadable answer file"),
])
def test_misbehaving_answers_are_refused(arena, sandbox, variant, status, reason):
    before = arena.snapshot()
    result = arena.evaluate(arena.submission("misbehaving-answer", variant=variant), sandbox)
    assert result.statuses == [status] * 2, result.errors
    assert all(reason in e for e in result.errors), result.errors
    for r in result.results:
        # Whatever the method returned, the evaluator only ever holds plain numeric arrays.
        assert r.answer is None or all(type(v) is np.ndarray and v.dtype.kind in "biuf" for v in r.answer.values())
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
@pytest.mark.parametrize("variant", ["package", "numpy"])
def test_import_tricks_stay_in_the_worker(arena, sandbox, variant):
    folder = arena.submission("shadow-imports", variant=variant)
    if variant == "numpy":
        shutil.copy(folder / "numpy-shadow" / "numpy.py", folder / "numpy.py")
    before = arena.snapshot()
    result = arena.evaluate(folder, sandbox)
    assert result.statuses == ["error", "error"], result.errors
    # The shadow breaks the worker's own imports inside the sandbox; the evaluator never imports it.
    expected = "Contained: startup hooks ran: nothing" if variant == "package" else "module 'numpy' has no attribute"
    assert all(expected in e for e in result.errors), result.errors
    assert not (arena.root / arena.marker_name).exists()
    assert np.__file__.endswith(os.path.join("numpy", "__init__.py"))
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_sandbox_hardening_seen_from_inside(arena, sandbox):
    from evaluator.sandbox.base import SHM_MB, TMP_MB

    before = arena.snapshot()
    result = arena.evaluate(arena.submission("hardening-probe", tmp_mb=TMP_MB, shm_mb=SHM_MB, check_userns=False),
                            sandbox)
    assert result.statuses == ["ok", "ok"], result.errors
    arena.assert_contained(result, before)


# Podman's default seccomp profile allows unshare(CLONE_NEWUSER); the container sandbox ships its
# own (docker/seccomp.json), which refuses it as Docker's default does.
@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_nested_user_namespaces_are_refused(arena, sandbox):
    from evaluator.sandbox.base import SHM_MB, TMP_MB

    result = arena.evaluate(arena.submission("hardening-probe", tmp_mb=TMP_MB, shm_mb=SHM_MB), sandbox)
    assert result.statuses == ["ok", "ok"], result.errors


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
@pytest.mark.parametrize("variant", ["memfd", "sockets"])
def test_memory_outside_the_resident_set_is_limited(arena, sandbox, variant):
    before = arena.snapshot()
    result = arena.evaluate(arena.submission("hidden-memory", variant=variant, target_mb=900), sandbox)
    assert result.statuses == ["memory", "memory"], result.errors
    assert all("memory limit of 400 MB exceeded" in e for e in result.errors), result.errors
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
@pytest.mark.parametrize("variant", ["unlinked", "unreadable-dir"])
def test_hidden_scratch_files_count(arena, sandbox, variant):
    box = get_sandbox(sandbox)
    box.scratch_mb = 64
    before = arena.snapshot()
    result = arena.evaluate(arena.submission("hidden-disk", variant=variant, target_mb=200), box)
    assert result.statuses == ["output", "output"], result.errors
    assert all("scratch" in e for e in result.errors), result.errors
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_deleting_the_started_marker_is_the_methods_failure(arena, sandbox):
    before = arena.snapshot()
    result = arena.evaluate(arena.submission("delete-marker"), sandbox)
    assert result.statuses == ["crash", "crash"], result.errors
    assert all("exited with code 0 without an answer" in e for e in result.errors), result.errors
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_cpu_quota_holds_against_busy_processes(arena, sandbox):
    box = get_sandbox(sandbox)
    box.cpus = 0.5  # below one CPU, so that even a busy host shows the cap
    before = arena.snapshot()
    result = arena.evaluate(arena.submission("cpu-hog", processes=3, seconds=2.0), box)
    assert result.statuses == ["error", "error"], result.errors
    shares = [float(e.split("cpu share ")[1].split()[0]) for e in result.errors]
    assert all(s < 0.5 * 1.25 for s in shares), shares
    arena.assert_contained(result, before)


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_shared_files_carry_no_locks_or_watches(arena, sandbox):
    """Parallel workers share read-only files (the submission, the Python installation). Locks on
    them and watches of their accesses are kernel state every process reads: a channel between
    workers, and between submissions that run at once. Here the host holds the locks, as another
    worker would; the worker may neither see them nor take its own (nor watch the files), and
    answers as a file system without locks would, so that filelock still works on scratch."""
    folder = arena.submission("shared-locks")
    shared = folder / "method.py"
    with open(shared, "rb") as held_flock, open(shared, "r+b") as held_posix:
        import fcntl

        fcntl.flock(held_flock, fcntl.LOCK_EX)
        fcntl.lockf(held_posix, fcntl.LOCK_EX)
        before = arena.snapshot()
        result = arena.evaluate(folder, sandbox)
    assert result.statuses == ["error", "error"], result.errors
    for error in result.errors:
        assert error.startswith("Contained: "), error
        for step in ("flock", "posix lock", "ofd lock", "lock query", "high bits", "inotify", "dnotify"):
            assert f"{step}: OSError 38" in error, f"step {step!r} was not refused: {error}"  # ENOSYS
        assert "filelock on scratch: nothing" in error, error
    arena.assert_contained(result, before)

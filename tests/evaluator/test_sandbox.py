"""Each sandbox contains failures to the instance; bwrap also hides everything but the inputs."""
import os
import threading
import time
from pathlib import Path
from textwrap import dedent

import numpy as np
import pytest

from benchmark.metadata import ResourceLimits
from evaluator.sandbox import WorkerCancelled, WorkerJob, get_sandbox
from tests.builders import ISOLATED_PARAMS, REPO, SANDBOX_PARAMS, requires_bwrap, write_submission

LIMITS = ResourceLimits(wall_time_s=20, memory_mb=400, output_mb=5)


def _run(tmp_path, split, body: str, sandbox: str, limits: ResourceLimits = LIMITS, job_options=None, **problem):
    folder = write_submission(tmp_path, code="import numpy as np\n" + dedent(body))
    record = split.instances[0]
    job = WorkerJob(submission_dir=folder, entry="method:run",
                    problem={**record.public, "instance_id": record.id, "seed": 0, "device": "cpu", **problem},
                    inputs_file=split.inputs_path(record.id), answer_fields=["atoms"], limits=limits,
                    **(job_options or {}))
    return get_sandbox(sandbox).run(job)


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_answer_comes_back(tmp_path, tiny_split, sandbox):
    result = _run(tmp_path, tiny_split, """
        def run(problem):
            assert problem["samples"].shape == (400, 6) and problem["samples"].dtype == np.float32
            return np.eye(problem["n_features"], problem["dim"])
    """, sandbox)
    assert result.status == "ok", result.error
    assert np.array_equal(result.answer["atoms"], np.eye(12, 6))
    assert result.wall_s > 0


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_exception_is_reported_in_one_line(tmp_path, tiny_split, sandbox):
    result = _run(tmp_path, tiny_split, """
        def run(problem):
            raise ValueError("no convergence\\nafter 10 steps")
    """, sandbox)
    assert result.status == "error"
    assert result.error.startswith("ValueError: no convergence after 10 steps (method.py:")
    assert "Traceback" in result.log_tail


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_timeout(tmp_path, tiny_split, sandbox):
    limits = LIMITS.model_copy(update={"wall_time_s": 1.5})
    result = _run(tmp_path, tiny_split, """
        import time
        def run(problem):
            time.sleep(60)
    """, sandbox, limits)
    assert result.status == "timeout" and "1.5 s" in result.error
    assert result.wall_s < 10


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_a_cancelled_worker_is_killed_and_reported(tmp_path, tiny_split, sandbox):
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    start = time.perf_counter()
    with pytest.raises(WorkerCancelled, match="interrupted"):
        _run(tmp_path, tiny_split, """
            import time
            def run(problem):
                time.sleep(60)
        """, sandbox, job_options={"cancel": cancel})
    assert time.perf_counter() - start < 15          # well before the 20 s wall limit


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_the_worker_gets_the_threads_it_is_given(tmp_path, tiny_split, sandbox):
    result = _run(tmp_path, tiny_split, """
        import os
        def run(problem):
            threads = {os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
            assert threads == {"1"}, threads
            return np.eye(problem["n_features"], problem["dim"])
    """, sandbox, job_options={"threads": 1})
    assert result.status == "ok", result.error


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_memory_limit(tmp_path, tiny_split, sandbox):
    result = _run(tmp_path, tiny_split, """
        def run(problem):
            blocks = []
            for _ in range(100):
                blocks.append(np.ones(50_000_000 // 8))  # 50 MB at a time, touched
            return blocks
    """, sandbox)
    assert result.status == "memory" and "400 MB" in result.error


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_output_flood_is_cut(tmp_path, tiny_split, sandbox):
    result = _run(tmp_path, tiny_split, """
        import sys
        def run(problem):
            while True:
                sys.stdout.write("x" * 100_000)
    """, sandbox)
    assert result.status == "output"


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_non_numeric_answer_is_refused_by_the_worker(tmp_path, tiny_split, sandbox):
    result = _run(tmp_path, tiny_split, """
        def run(problem):
            return [object(), object()]
    """, sandbox)
    assert result.status == "error" and "expected numbers" in result.error


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_hard_exit_without_answer_is_a_crash(tmp_path, tiny_split, sandbox):
    result = _run(tmp_path, tiny_split, """
        import os
        def run(problem):
            os._exit(7)
    """, sandbox)
    assert result.status == "crash" and "exited with code 7" in result.error


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_isolated_hides_the_answers(tmp_path, tiny_split, sandbox):
    answers = tiny_split.answers_root / "answers" / f"{tiny_split.instances[0].id}.safetensors"
    assert answers.exists()
    result = _run(tmp_path, tiny_split, f"""
        def run(problem):
            open({str(answers)!r}, "rb").read()
    """, sandbox)
    assert result.status == "error" and result.error.startswith("FileNotFoundError")


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_isolated_hides_the_repository_and_home(tmp_path, tiny_split, sandbox):
    result = _run(tmp_path, tiny_split, f"""
        import os
        def run(problem):
            seen = [p for p in ({str(REPO / "benchmark")!r}, {str(REPO / "pyproject.toml")!r}, "/root/.ssh",
                                "/var/lib/postgresql") if os.path.exists(p)]
            if seen:
                raise RuntimeError(f"visible: {{seen}}")
            try:
                import benchmark
            except ImportError:
                return np.zeros((1, problem["dim"]))
            raise RuntimeError("the benchmark package is importable")
    """, sandbox)
    assert result.status == "ok", result.error


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_isolated_has_no_network(tmp_path, tiny_split, sandbox):
    result = _run(tmp_path, tiny_split, """
        import socket
        def run(problem):
            socket.create_connection(("127.0.0.1", 5432), timeout=2)
    """, sandbox)
    assert result.status == "error"
    assert result.error.startswith(("ConnectionRefusedError", "OSError"))


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_isolated_clears_the_environment_and_the_file_system_is_read_only(tmp_path, tiny_split, sandbox, monkeypatch):
    monkeypatch.setenv("PHASEBENCH_TEST_SECRET", "5f0c1e7a9b3d2468ace13579bdf02468")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    result = _run(tmp_path, tiny_split, """
        import os
        def run(problem):
            leaked = [k for k in os.environ if "SEED" in k or "TOKEN" in k or "PHASEBENCH" in k]
            if leaked:
                raise RuntimeError(f"leaked {leaked}")
            for path in ("/submission/new.py", "/usr/evil", "/in/inputs.safetensors"):
                try:
                    open(path, "w").write("x")
                except OSError:
                    continue
                raise RuntimeError(f"wrote {path}")
            open("ok.txt", "w").write("scratch (the working folder) is writable")
            return np.zeros((1, problem["dim"]))
    """, sandbox)
    assert result.status == "ok", result.error


@pytest.mark.parametrize("sandbox", ISOLATED_PARAMS)
def test_isolated_has_its_own_pid_namespace(tmp_path, tiny_split, sandbox):
    result = _run(tmp_path, tiny_split, """
        import os
        def run(problem):
            pids = [p for p in os.listdir("/proc") if p.isdigit()]
            if len(pids) > 5:
                raise RuntimeError(f"sees {len(pids)} processes")
            return np.zeros((1, problem["dim"]))
    """, sandbox)
    assert result.status == "ok", result.error


@requires_bwrap
def test_bwrap_python_roots_under_tmp_stay_visible(tmp_path, tiny_split, monkeypatch):
    # A checkout (and its venv) under /tmp must not be hidden by the sandbox's own /tmp.
    from evaluator.sandbox import bwrap

    extra = tmp_path / "venv-like"
    extra.mkdir()
    (extra / "marker").write_text("here")
    real = bwrap._python_roots
    monkeypatch.setattr(bwrap, "_python_roots", lambda: real() + [str(extra)])
    result = _run(tmp_path, tiny_split, f"""
        def run(problem):
            assert open({str(extra / "marker")!r}).read() == "here"
            return np.zeros((1, problem["dim"]))
    """, "bwrap")
    assert result.status == "ok", result.error


def test_a_sandbox_that_cannot_start_the_worker_is_not_the_methods_fault(tmp_path, tiny_split):
    from evaluator.sandbox import NoSandbox, SandboxError

    class Broken(NoSandbox):
        def command(self, python, host, job):
            argv, seen = super().command(python, host, job)
            return ["false"], seen

    folder = write_submission(tmp_path)
    record = tiny_split.instances[0]
    job = WorkerJob(folder, "method:run", {**record.public, "seed": 0}, tiny_split.inputs_path(record.id),
                    ["atoms"], LIMITS)
    with pytest.raises(SandboxError, match="could not start the worker"):
        Broken().run(job)


def test_docker_a_worker_that_exits_just_before_the_kill_is_not_an_error(tmp_path):
    """The engine refuses to kill a container that stopped between the last poll and the kill
    (a race seen in CI); the verdict already reached must stand, and the container is removed."""
    import docker

    from evaluator.sandbox import DockerSandbox

    class StoppedBeforeTheKill:
        attrs = {"State": {"Status": "running"}}
        removed = False

        def reload(self):
            pass

        def kill(self):
            self.attrs = {"State": {"Status": "exited", "ExitCode": 0}}
            raise docker.errors.APIError("can only kill running containers: container state improper")

        def remove(self, force=False):
            self.removed = True

    container = StoppedBeforeTheKill()
    sandbox = DockerSandbox(image="unused")
    sandbox._client = type("Client", (), {"containers": type("Containers", (), {
        "run": staticmethod(lambda image, **kwargs: container)})()})()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(WorkerCancelled):
        sandbox._run_container({}, tmp_path, LIMITS, cancel)
    assert container.removed


def test_job_cleanup_removes_folders_a_method_made_unreadable():
    """A worker's folder without read permission (0o300) holding files: a cleanup that ignores errors
    leaves it on the host's disk. Run as an unprivileged user (root reads any folder anyway)."""
    import tempfile

    from evaluator.sandbox.base import remove_tree

    base = Path(tempfile.mkdtemp(prefix="phasebench-cleanup-"))  # under /tmp: reachable by nobody
    root = base / "phasebench-job-x"
    root.mkdir()
    uid = 65534 if os.getuid() == 0 else os.getuid()
    os.chown(base, uid, uid)
    os.chown(root, uid, uid)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        try:
            if os.getuid() == 0:
                os.setgid(uid)
                os.setuid(uid)
            hidden = root / "scratch" / "hidden"
            hidden.mkdir(parents=True)
            for i in range(50):
                (hidden / f"ballast-{i}").write_bytes(b"x" * 4096)
            (hidden / "deeper").mkdir()
            (hidden / "deeper" / "f").write_bytes(b"y")
            (hidden / "deeper").chmod(0o300)
            hidden.chmod(0o300)
            remove_tree(root)
            os._exit(0 if not root.exists() else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    left = root.exists()
    remove_tree(base)
    assert os.waitstatus_to_exitcode(status) == 0 and not left, "the unreadable folder was left behind"


def _fake_gpu_host(root):
    """Two GPUs as the driver shows them: device nodes, /proc/driver/nvidia, /sys PCI folders."""
    (root / "dev").mkdir()
    for name in ("nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset"):
        (root / "dev" / name).touch()
    for minor, bus in ((0, "0000:18:00.0"), (1, "0000:3b:00.0")):
        info = root / "proc" / "driver" / "nvidia" / "gpus" / bus
        info.mkdir(parents=True)
        (info / "information").write_text(f"Model: \t\t NVIDIA H200\nBus Location: \t {bus}\nDevice Minor: \t {minor}\n")
        (root / "sys" / "devices" / "pci0000:00" / bus).mkdir(parents=True)
        (root / "sys" / "bus" / "pci" / "devices").mkdir(parents=True, exist_ok=True)
        (root / "sys" / "bus" / "pci" / "devices" / bus).symlink_to(root / "sys" / "devices" / "pci0000:00" / bus)


def test_bwrap_binds_only_the_assigned_gpu(tmp_path, monkeypatch, tiny_split):
    from functools import partial

    from evaluator.sandbox import SandboxError, bwrap

    _fake_gpu_host(tmp_path)
    fake = partial(bwrap.gpu_args, dev=str(tmp_path / "dev"), proc=str(tmp_path / "proc"), sys_root=str(tmp_path / "sys"))
    args = fake("1")
    pairs = [(args[i], args[i + 1], args[i + 2]) for i in range(len(args)) if args[i].startswith("--")
             and args[i] in ("--dev-bind", "--ro-bind", "--symlink")]
    assert ("--dev-bind", str(tmp_path / "dev" / "nvidia1"), "/dev/nvidia1") in pairs
    assert {p[2] for p in pairs if p[0] == "--dev-bind"} == {"/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm"}
    assert ("--ro-bind", str(tmp_path / "sys" / "devices" / "pci0000:00" / "0000:3b:00.0"),
            "/sys/devices/pci0000:00/0000:3b:00.0") in pairs
    assert ("--symlink", "/sys/devices/pci0000:00/0000:3b:00.0", "/sys/bus/pci/devices/0000:3b:00.0") in pairs
    assert not any("0000:18:00.0" in a or a.endswith("nvidia0") for a in args), args
    for visible in (None, "", "0,1", "GPU-1234", "7"):
        with pytest.raises(SandboxError, match="CUDA_VISIBLE_DEVICES"):
            fake(visible)

    # The whole command: no /sys and no other GPU, and inside the GPU is device 0.
    monkeypatch.setattr(bwrap, "gpu_args", fake)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    record = tiny_split.instances[0]
    job = WorkerJob(tmp_path, "method:run", {}, tiny_split.inputs_path(record.id), ["atoms"], LIMITS, device="cuda")
    host = {k: tmp_path / k for k in ("submission", "scratch", "job", "worker", "answer", "error", "oracle")}
    host["inputs"] = job.inputs_file
    argv, _ = bwrap.BubblewrapSandbox().command(["python3"], host, job)
    targets = [argv[i + 2] for i in range(len(argv) - 2) if argv[i] in ("--bind", "--ro-bind", "--dev-bind", "--ro-bind-try")]
    assert "/sys" not in targets and "/dev/nvidia0" not in targets and "/dev/nvidia1" in targets
    assert bwrap.BubblewrapSandbox().environment(job)["CUDA_VISIBLE_DEVICES"] == "0"


def test_staged_inputs_are_linked_and_opened_up_only_as_copies(tmp_path):
    from evaluator.sandbox.base import stage_file

    source = tmp_path / "dataset" / "inputs.safetensors"
    source.parent.mkdir()
    source.write_bytes(b"public arrays")
    source.chmod(0o600)
    linked = stage_file(source, tmp_path / "linked")
    assert os.path.samefile(linked, source), "a worker running as this user needs no copy"
    copied = stage_file(source, tmp_path / "copied", readable_by_all=True)
    assert not os.path.samefile(copied, source) and copied.read_bytes() == b"public arrays"
    assert copied.stat().st_mode & 0o777 == 0o644 and source.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "no-pidfd"])
def test_the_exit_waiter_sees_the_exit_reaps_and_closes_its_descriptor(pidfd, monkeypatch):
    """A worker that has exited is seen (and reaped) on the next look, without sleeping out the
    timeout; the pidfd is closed after; without pidfd_open, Popen.wait does the same, slower."""
    import subprocess
    import sys

    from evaluator.sandbox.base import _ExitWaiter

    if not pidfd:
        def no_pidfd(pid):
            raise OSError("pidfd_open unavailable")
        monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    fds_before = set(os.listdir("/proc/self/fd"))
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    with _ExitWaiter(proc) as exited:
        assert (exited.pidfd is not None) == pidfd
        assert not exited(0.01)            # still running
        waited = time.monotonic()
        assert exited(30.0)
        assert time.monotonic() - waited < 10   # it returned on the exit, not at the timeout
        assert proc.returncode == 0        # reaped
        assert exited(0.0)                 # and stays exited
    assert set(os.listdir("/proc/self/fd")) <= fds_before

"""The sandbox interface: run one method on one instance's public inputs, under limits.

Backends differ only in how the worker process is isolated (see ``command``); starting it,
enforcing wall time, memory and output limits, and reading its answer back are shared.
"""
from __future__ import annotations

import json
import os
import resource
import select
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import psutil

from benchmark.metadata import ResourceLimits
from benchmark.oracle import Oracle

from .oracle_channel import SOCKET_NAME, OracleServer

__all__ = ["Sandbox", "SandboxError", "WorkerJob", "WorkerResult", "SubprocessSandbox", "WORKER_ENTRY",
           "MAX_OPEN_FILES", "MAX_PROCESSES", "SCRATCH_FILES", "SCRATCH_MB", "SHM_MB", "TMP_MB", "JobFiles",
           "apply_oracle_usage", "WorkerCancelled", "collect_result", "job_files", "oracle_served", "remove_tree",
           "scratch_overrun", "tail_file", "worker_environment", "write_job"]

WORKER_ENTRY = Path(__file__).resolve().parent / "worker_entry.py"
_LOG_TAIL_BYTES = 4000
# Limits every isolated backend applies beyond a task's ResourceLimits. In-memory folders (/tmp,
# /dev/shm) hold pages no process owns, so a per-process memory count misses them: they are sized.
TMP_MB = 256
SHM_MB = 64
MAX_PROCESSES = 512
# Every open descriptor can pin kernel memory (a socket's buffers hold up to twice wmem_max each):
# a memory cgroup charges it, this bounds it where there is none.
MAX_OPEN_FILES = 256
# The isolated backends put scratch on a tmpfs of this size (its pages count against the memory
# limit, unlinked and unreadable files included). ``none`` keeps it on the host's disk, where
# RLIMIT_FSIZE caps one file and the parent's scan caps the folder (bytes and entries).
SCRATCH_MB = 1024
SCRATCH_FILES = 10_000
_SCRATCH_POLL_S = 0.2


@dataclass(frozen=True)
class WorkerJob:
    submission_dir: Path
    entry: str                       # module:function
    problem: dict[str, Any]          # public scalars (JSON); arrays come from inputs_file
    inputs_file: Path                # the instance's public arrays (safetensors)
    answer_fields: list[str]
    limits: ResourceLimits
    device: str = "cpu"
    oracle: Oracle | None = None     # served to the worker over the scratch folder's socket
    # BLAS/OpenMP threads the worker may start; None: one per CPU the evaluator may use. An
    # evaluation running several workers at once divides the CPUs, or their threads would spin
    # against each other.
    threads: int | None = None
    # Set by the evaluator to stop the worker early (the evaluation was interrupted): the backend
    # kills it and raises WorkerCancelled rather than leave it running on its own.
    cancel: threading.Event | None = field(default=None, compare=False)


@dataclass
class WorkerResult:
    status: str                      # an InstanceStatus value
    answer: dict[str, np.ndarray] | None = None
    error: str | None = None
    wall_s: float = 0.0
    method_s: float | None = None
    log_tail: str = ""
    peak_rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the method): the evaluation is not a result."""


class WorkerCancelled(Exception):
    """The evaluator stopped a worker through ``WorkerJob.cancel``; it has been killed."""


class Sandbox(ABC):
    name: ClassVar[str]
    #: Whether untrusted code is isolated from the host. ``none`` is not.
    isolated: ClassVar[bool]
    #: Limits beyond the task's; per instance so a test (or an operator) can tighten them.
    max_processes: int = MAX_PROCESSES
    scratch_mb: float = SCRATCH_MB
    scratch_files: int = SCRATCH_FILES
    #: CPUs a worker may use (a kernel quota where the backend has one); None: the job's threads.
    cpus: float | None = None
    #: What the person running an evaluation must be told before it starts (a backend that does not isolate).
    warning: ClassVar[str | None] = None

    def for_submission(self, submission: Any, log: Callable[[str], None] | None = None) -> Sandbox:
        """The sandbox that runs this submission: itself, unless the backend builds something per
        submission first (the container backend's image with the declared requirements)."""
        return self

    def cpu_quota(self, job: WorkerJob) -> float:
        return float(self.cpus or job.threads or len(os.sched_getaffinity(0)))

    @abstractmethod
    def run(self, job: WorkerJob) -> WorkerResult: ...

    def available(self) -> tuple[bool, str]:
        return True, ""

    def provenance(self) -> dict[str, str]:
        """What identifies the isolation layer in a score's provenance (e.g. the image digest)."""
        return {}


def _tree_rss(proc: psutil.Process) -> tuple[int, int]:
    """The process tree's resident memory and its number of processes."""
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0, 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total, len(procs)


def scratch_overrun(scratch: Path, max_mb: float, max_files: int) -> str | None:
    """Why the scratch folder is over its limits (bytes or entries), or None; stops counting early."""
    max_bytes = max_mb * 2**20
    size = entries = 0
    stack = [str(scratch)]
    while stack:
        try:
            it = os.scandir(stack.pop())
        except OSError:
            continue
        with it:
            for entry in it:
                entries += 1
                if entries > max_files:
                    return f"more than {max_files} files in scratch"
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    else:
                        size += entry.stat(follow_symlinks=False).st_blocks * 512
                except OSError:
                    continue
                if size > max_bytes:
                    return f"more than {max_mb:g} MB of scratch files"
    return None


@dataclass(frozen=True)
class JobFiles:
    """One job's files on the host. The worker reads ``job``; ``answer``, ``error`` and ``log`` are
    the only host files an isolated worker may write, each created empty by the parent and mounted
    one by one, so a method can neither add files beside them nor swap them for a link or a FIFO.
    ``scratch`` is the host folder that ``none`` uses as scratch (the isolated backends use a tmpfs)."""
    root: Path
    job: Path
    answer: Path
    error: Path
    log: Path
    scratch: Path

    @property
    def out(self) -> Path:
        return self.answer.parent


def job_files(root: Path, mode: int = 0o600) -> JobFiles:
    """Create a job's files under root; ``mode`` 0o666 when the worker runs as another host user."""
    out = root / "out"
    out.mkdir()
    files = JobFiles(root, root / "job.json", out / "answer.safetensors", out / "error.json", out / "worker.log",
                     root / "scratch")
    files.scratch.mkdir()
    for path in (files.answer, files.error, files.log):
        path.touch()
        path.chmod(mode)
    return files


def stage_file(source: Path, staged: Path, readable_by_all: bool = False) -> Path:
    """``source`` at ``staged`` in a job's folder, for the worker to mount: a hard link where the
    file system allows it (no copy), else a copy. The sandbox's mount table names the path a mount
    came from, so a worker sees the job's temporary folder there, not the dataset's. With
    ``readable_by_all`` (a worker running as another host user) an unreadable source is copied and
    opened up rather than linked, so that the dataset's own modes stay as they are."""
    linked = False
    if not readable_by_all or source.stat().st_mode & stat.S_IROTH:
        try:
            os.link(source, staged)
            linked = True
        except OSError:
            pass
    if not linked:
        shutil.copyfile(source, staged)
        if readable_by_all:
            staged.chmod(0o644)
    return staged


def remove_tree(root: Path) -> None:
    """Delete a job's folder whatever the worker left in it: every folder is opened up (0o700) before
    it is listed, so one without read or write permission (0o300, 0o500) and its files do not stay
    behind on the host's disk. Runs once the worker is gone."""
    stack = [str(root)]
    while stack:
        folder = stack.pop()
        try:
            if not stat.S_ISDIR(os.lstat(folder).st_mode):  # never chmod through a link
                continue
            os.chmod(folder, 0o700)
            with os.scandir(folder) as entries:
                stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
    shutil.rmtree(root, ignore_errors=True)


class SubprocessSandbox(Sandbox):
    """Runs the worker as a child process; subclasses wrap the command in an isolation layer."""

    #: Whether scratch is the host folder ``JobFiles.scratch`` (watched by scanning it) rather than
    #: a sized file system inside the sandbox (whose size the kernel enforces).
    scratch_on_host: ClassVar[bool] = True

    @abstractmethod
    def command(self, python: list[str], host: dict[str, Path], job: WorkerJob) -> tuple[list[str], dict[str, str]]:
        """The argv to start, and the paths the worker sees for: submission, inputs, scratch, job,
        worker, answer, error, oracle."""

    def environment(self, job: WorkerJob) -> dict[str, str]:
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", **worker_environment(job)}

    def _preexec(self, limits: ResourceLimits):
        fsize = int(limits.output_mb * 1024 * 1024)
        nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        nofile = MAX_OPEN_FILES if nofile_hard == resource.RLIM_INFINITY else min(MAX_OPEN_FILES, nofile_hard)

        def apply() -> None:
            # Every file the worker writes (answer, logs) is capped: a flood ends in SIGXFSZ.
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        return apply

    # Hooks for a backend that learns more from its isolation layer than from the process.
    def _pass_fds(self) -> tuple[int, ...]:
        """Descriptors the isolation layer needs in the child (bwrap's status pipe)."""
        return ()

    def _spawned(self) -> None:
        """Called once the child runs: the parent closes its copies of what it passed."""

    def _started(self, files: JobFiles) -> bool:
        """Whether the worker was started. Without a sandbox only the worker can say so, through a
        marker file: ``none`` runs trusted code, which has no reason to delete it."""
        return (files.scratch / "started").exists()

    def _kernel_verdict(self) -> str | None:
        """A limit the kernel enforced on the worker ("memory": its cgroup's OOM killer struck)."""
        return None

    def _live_scratch(self, files: JobFiles) -> Path | None:
        """Where the parent can watch the worker's scratch while it runs; None: the kernel limits it."""
        return files.scratch if self.scratch_on_host else None

    def run(self, job: WorkerJob) -> WorkerResult:
        root = Path(tempfile.mkdtemp(prefix="phasebench-job-"))
        try:
            return self._run(job, job_files(root))
        finally:
            remove_tree(root)

    def _run(self, job: WorkerJob, files: JobFiles) -> WorkerResult:
        host = {"submission": job.submission_dir, "inputs": stage_file(job.inputs_file, files.root / "inputs.safetensors"),
                "scratch": files.scratch, "job": files.job,
                "worker": Path(shutil.copy(WORKER_ENTRY, files.root / "worker.py")), "answer": files.answer,
                "error": files.error,
                "oracle": files.root / SOCKET_NAME}
        argv, seen = self.command([sys.executable, "-I", "-B"], host, job)
        write_job(job, seen, files.job)
        limits = job.limits
        start = time.perf_counter()
        with open(files.log, "wb") as log, oracle_served(job, files.root) as oracle:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                        env=self.environment(job), cwd=str(files.scratch), start_new_session=True,
                                        preexec_fn=self._preexec(limits), pass_fds=self._pass_fds())
            finally:
                self._spawned()
            verdict, detail, peak = self._watch(proc, limits, start, files, job.cancel)
        wall = time.perf_counter() - start
        verdict = self._kernel_verdict() or verdict
        if verdict is None and not self._started(files):
            raise SandboxError(f"sandbox {self.name!r} could not start the worker (exit code {proc.returncode}): "
                               f"{tail_file(files.log).strip()[-500:]}")
        result = collect_result(proc.returncode, verdict, files.out, tail_file(files.log), limits, detail,
                                scratch_limits=(self.scratch_mb, self.scratch_files))
        result.wall_s = wall
        result.peak_rss_mb = peak / 2**20
        return apply_oracle_usage(result, oracle)

    def _watch(self, proc: subprocess.Popen, limits: ResourceLimits, start: float, files: JobFiles,
               cancel: threading.Event | None = None) -> tuple[str | None, str, int]:
        """(verdict, detail, peak RSS): verdict None when the worker exited by itself."""
        ps = psutil.Process(proc.pid)
        mem_limit = limits.memory_mb * 2**20
        peak = 0
        delay = 0.002  # poll fast at first so short jobs return quickly, then back off
        next_scratch_check = start + _SCRATCH_POLL_S
        with _ExitWaiter(proc) as exited:
            while True:
                if exited(delay):
                    # A method can fill its scratch folder faster than the poll: the limit holds at the end too.
                    scratch = self._live_scratch(files)
                    overrun = scratch and scratch_overrun(scratch, self.scratch_mb, self.scratch_files)
                    return ("scratch", overrun, peak) if overrun else (None, "", peak)
                delay = min(delay * 1.5, 0.05)
                rss, n_procs = _tree_rss(ps)
                peak = max(peak, rss)
                # A backend with a kernel process limit never gets here; one without relies on this.
                if n_procs > self.max_processes:
                    self._kill(proc)
                    return "processes", str(self.max_processes), peak
                # Resident memory only: a memory cgroup, where the backend has one, counts the rest.
                if rss > mem_limit:
                    self._kill(proc)
                    return "memory", "", peak
                now = time.perf_counter()
                scratch = self._live_scratch(files)
                if scratch is not None and now > next_scratch_check:
                    next_scratch_check = now + _SCRATCH_POLL_S
                    overrun = scratch_overrun(scratch, self.scratch_mb, self.scratch_files)
                    if overrun:
                        self._kill(proc)
                        return "scratch", overrun, peak
                if now - start > limits.wall_time_s:
                    self._kill(proc)
                    return "timeout", "", peak
                if cancel is not None and cancel.is_set():
                    self._kill(proc)
                    raise WorkerCancelled("the evaluation was interrupted")

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


class _ExitWaiter:
    """``exited(timeout)``: True once the worker has exited (and is reaped), waiting at most ``timeout``.

    On Linux a pidfd turns readable the moment the process exits, so a short worker is seen to finish
    at once; ``Popen.wait(timeout)`` sleeps in steps of up to 50 ms, which a 100 ms worker would pay
    on every instance. Without pidfd_open (another OS, an old kernel) it is that fallback."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.pidfd: int | None = None
        try:
            self.pidfd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            return
        self.poller = select.poll()
        self.poller.register(self.pidfd, select.POLLIN)

    def __enter__(self) -> _ExitWaiter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None

    def __call__(self, timeout: float) -> bool:
        if self.pidfd is not None and not self.poller.poll(timeout * 1000):
            return False
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False


@contextmanager
def oracle_served(job: WorkerJob, folder: Path) -> Iterator[OracleServer | None]:
    """Serve the job's oracle, if it has one, while the worker runs (its socket in folder)."""
    if job.oracle is None:
        yield None
        return
    with OracleServer(job.oracle, folder) as server:
        yield server


def apply_oracle_usage(result: WorkerResult, server: OracleServer | None) -> WorkerResult:
    """Record the forward passes the parent served; a budget overrun fails the instance, whatever
    the method did after being refused (catching the error must not turn into an answer)."""
    if server is None:
        return result
    usage = server.usage
    result.extra["oracle"] = usage.as_details()
    if usage.overrun is not None and result.status not in ("timeout", "memory"):
        result.status, result.answer, result.error = "budget", None, usage.overrun
    return result


def worker_environment(job: WorkerJob) -> dict[str, str]:
    """The variables every backend gives a worker; nothing else of the host's environment."""
    threads = str(job.threads or len(os.sched_getaffinity(0)))
    env = {"LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1",
           "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    # Machine quirks, not secrets: some processors need these for OpenBLAS to pick a sound kernel,
    # and every backend must pick the same one for scores to agree.
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if key in os.environ:
            env[key] = os.environ[key]
    if job.device == "cuda" and "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    return env


def write_job(job: WorkerJob, seen: dict[str, str], path: Path) -> None:
    """The job file the worker reads; paths are as the worker sees them inside its sandbox."""
    payload = {"entry": job.entry, "problem": job.problem, "answer_fields": job.answer_fields,
               "submission": seen["submission"], "inputs": seen["inputs"], "scratch": seen["scratch"],
               "answer": seen["answer"], "error": seen["error"]}
    if job.oracle is not None:
        payload["oracle"] = {**job.oracle.describe(), "socket": seen["oracle"]}
    path.write_text(json.dumps(payload))


def _read_regular(path: Path, max_bytes: int) -> bytes | None:
    """The bytes of a regular file of at most max_bytes; None for anything else. The worker owns the
    scratch folder: a symlink there could point at the answers, a FIFO would block the read forever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_bytes:
            return None
        return f.read(max_bytes)


def _safetensors_metadata(data: bytes) -> dict:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8:8 + n]).get("__metadata__") or {}


def collect_result(returncode: int, verdict: str | None, out: Path, log_tail: str,
                   limits: ResourceLimits, detail: str = "",
                   scratch_limits: tuple[float, int] = (SCRATCH_MB, SCRATCH_FILES)) -> WorkerResult:
    """Read the answer and error files a finished worker left in ``out``; every backend ends here.
    An empty answer file is no answer: the parent creates both files before the worker starts."""
    if verdict == "processes":
        return WorkerResult("crash", error=f"process limit of {detail} exceeded", log_tail=log_tail)
    if verdict == "scratch":
        return WorkerResult("output", error=f"scratch folder limit exceeded: {detail}", log_tail=log_tail)
    if verdict == "timeout":
        return WorkerResult("timeout", error=f"wall-time limit of {limits.wall_time_s:g} s exceeded",
                            log_tail=log_tail)
    if verdict == "memory":
        return WorkerResult("memory", error=f"memory limit of {limits.memory_mb} MB exceeded", log_tail=log_tail)
    if returncode == -signal.SIGXFSZ:
        return WorkerResult("output", error=f"output limit of {limits.output_mb:g} MB exceeded (file size)",
                            log_tail=log_tail)
    err_bytes = _read_regular(out / "error.json", 65536)
    if err_bytes:
        try:
            err = json.loads(err_bytes)
            if err.get("type") == "ScratchLimit":
                # The worker saw its scratch file system full: the kernel enforced the size (or the
                # file count) of scratch, as the parent's scan does for a scratch on the host.
                mb, files = scratch_limits
                what = f"more than {files} files in scratch" if err.get("message") == "files" else \
                    f"more than {mb:g} MB of scratch files"
                return WorkerResult("output", error=f"scratch folder limit exceeded: {what} (no space left)",
                                    log_tail=log_tail)
            # safetensors reports the file-size limit as its own error, wrapping errno 27 (EFBIG).
            if err.get("type") == "OutputLimit" or "(os error 27)" in str(err.get("message")):
                return WorkerResult("output", error=f"output limit of {limits.output_mb:g} MB exceeded "
                                    f"(file size)", log_tail=log_tail)
            kind = "memory" if err.get("type") == "MemoryError" else "error"
            return WorkerResult(kind, error=f"{err['type']}: {err['message']}{err.get('where', '')}"[:500],
                                log_tail=log_tail)
        except (ValueError, KeyError, TypeError):
            pass
    answer_file = out / "answer.safetensors"
    if returncode == 0 and os.path.lexists(answer_file) and not stat.S_ISREG(answer_file.lstat().st_mode):
        return WorkerResult("invalid", error="the answer file is not a regular file (a symlink, FIFO or device)",
                            log_tail=log_tail)
    if returncode != 0 or not answer_file.is_file() or answer_file.stat().st_size == 0:
        last = log_tail.strip().splitlines()[-1:] or [""]
        how = f"killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
        return WorkerResult("crash", error=f"worker {how} without an answer {last[0][:200]}".strip(),
                            log_tail=log_tail)
    size = answer_file.stat().st_size
    if size > limits.output_mb * 2**20:
        return WorkerResult("output", error=f"answer of {size / 2**20:.1f} MB exceeds {limits.output_mb:g} MB",
                            log_tail=log_tail)
    from safetensors.numpy import load
    try:
        data = _read_regular(answer_file, size)
        if data is None:
            raise ValueError("the answer file changed while it was read")
        answer = load(data)
        method_s = float(_safetensors_metadata(data).get("method_runtime_s", "nan"))
    except Exception as exc:  # a forged or truncated file is the method's fault
        return WorkerResult("invalid", error=f"unreadable answer file ({type(exc).__name__}: {exc})"[:500],
                            log_tail=log_tail)
    return WorkerResult("ok", answer=answer, method_s=method_s, log_tail=log_tail)


def tail_file(path: Path) -> str:
    """The end of a log; empty if it is not a regular file (a worker may replace a log it can write)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return ""
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - _LOG_TAIL_BYTES))
        return f.read().decode("utf-8", "replace")

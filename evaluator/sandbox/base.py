"""The sandbox interface: run one method on one instance's public inputs, under limits.

Backends differ only in how the worker process is isolated (see ``command``); starting it,
enforcing wall time, memory and output limits, and reading its answer back are shared.
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator

import numpy as np
import psutil

from benchmark.metadata import ResourceLimits
from benchmark.oracle import Oracle

from .oracle_channel import SOCKET_NAME, OracleServer

__all__ = ["Sandbox", "SandboxError", "WorkerJob", "WorkerResult", "SubprocessSandbox", "WORKER_ENTRY",
           "apply_oracle_usage", "collect_result", "oracle_served", "tail_file", "worker_environment", "write_job"]

WORKER_ENTRY = Path(__file__).resolve().parent / "worker_entry.py"
_LOG_TAIL_BYTES = 4000


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


class Sandbox(ABC):
    name: ClassVar[str]
    #: Whether untrusted code is isolated from the host. ``none`` is not.
    isolated: ClassVar[bool]

    @abstractmethod
    def run(self, job: WorkerJob) -> WorkerResult: ...

    def available(self) -> tuple[bool, str]:
        return True, ""

    def provenance(self) -> dict[str, str]:
        """What identifies the isolation layer in a score's provenance (e.g. the image digest)."""
        return {}


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.Error:
        return 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


class SubprocessSandbox(Sandbox):
    """Runs the worker as a child process; subclasses wrap the command in an isolation layer."""

    @abstractmethod
    def command(self, python: list[str], host: dict[str, Path], job: WorkerJob) -> tuple[list[str], dict[str, str]]:
        """The argv to start, and the paths the worker sees for: submission, inputs, scratch, job, worker."""

    def environment(self, job: WorkerJob) -> dict[str, str]:
        return {"PATH": "/usr/local/bin:/usr/bin:/bin", **worker_environment(job)}

    def _preexec(self, limits: ResourceLimits):
        fsize = int(limits.output_mb * 1024 * 1024)

        def apply() -> None:
            # Every file the worker writes (answer, logs) is capped: a flood ends in SIGXFSZ.
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        return apply

    def run(self, job: WorkerJob) -> WorkerResult:
        scratch_root = Path(tempfile.mkdtemp(prefix="phasebench-job-"))
        try:
            return self._run(job, scratch_root)
        finally:
            shutil.rmtree(scratch_root, ignore_errors=True)

    def _run(self, job: WorkerJob, root: Path) -> WorkerResult:
        scratch = root / "scratch"
        job_dir = root / "job"
        scratch.mkdir()
        job_dir.mkdir()
        host = {"submission": job.submission_dir, "inputs": job.inputs_file, "scratch": scratch,
                "job": job_dir / "job.json", "worker": WORKER_ENTRY}
        argv, seen = self.command([sys.executable, "-I", "-B"], host, job)
        write_job(job, seen, host["job"])
        log_path = root / "worker.log"
        limits = job.limits
        start = time.perf_counter()
        with open(log_path, "wb") as log, oracle_served(job, scratch) as oracle:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                    env=self.environment(job), cwd=str(scratch), start_new_session=True,
                                    preexec_fn=self._preexec(limits))
            verdict, peak = self._watch(proc, limits, start)
        wall = time.perf_counter() - start
        if verdict is None and not (scratch / "started").exists():
            raise SandboxError(f"sandbox {self.name!r} could not start the worker (exit code {proc.returncode}): "
                               f"{tail_file(log_path).strip()[-500:]}")
        result = collect_result(proc.returncode, verdict, scratch, tail_file(log_path), limits)
        result.wall_s = wall
        result.peak_rss_mb = peak / 2**20
        return apply_oracle_usage(result, oracle)

    def _watch(self, proc: subprocess.Popen, limits: ResourceLimits, start: float) -> tuple[str | None, int]:
        ps = psutil.Process(proc.pid)
        mem_limit = limits.memory_mb * 2**20
        peak = 0
        delay = 0.002  # poll fast at first so short jobs return quickly, then back off
        while True:
            try:
                proc.wait(timeout=delay)
                return None, peak
            except subprocess.TimeoutExpired:
                pass
            delay = min(delay * 1.5, 0.05)
            rss = _tree_rss(ps)
            peak = max(peak, rss)
            if rss > mem_limit:
                self._kill(proc)
                return "memory", peak
            if time.perf_counter() - start > limits.wall_time_s:
                self._kill(proc)
                return "timeout", peak

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()



@contextmanager
def oracle_served(job: WorkerJob, scratch: Path) -> Iterator[OracleServer | None]:
    """Serve the job's oracle, if it has one, while the worker runs."""
    if job.oracle is None:
        yield None
        return
    with OracleServer(job.oracle, scratch) as server:
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
    threads = str(len(os.sched_getaffinity(0)))
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
               "submission": seen["submission"], "inputs": seen["inputs"], "scratch": seen["scratch"]}
    if job.oracle is not None:
        payload["oracle"] = {**job.oracle.describe(), "socket": f"{seen['scratch']}/{SOCKET_NAME}"}
    path.write_text(json.dumps(payload))


def collect_result(returncode: int, verdict: str | None, scratch: Path, log_tail: str,
                   limits: ResourceLimits) -> WorkerResult:
    """Read what a finished worker left in its scratch folder; every backend ends here."""
    if verdict == "timeout":
        return WorkerResult("timeout", error=f"wall-time limit of {limits.wall_time_s:g} s exceeded",
                            log_tail=log_tail)
    if verdict == "memory":
        return WorkerResult("memory", error=f"memory limit of {limits.memory_mb} MB exceeded", log_tail=log_tail)
    if returncode == -signal.SIGXFSZ:
        return WorkerResult("output", error=f"output limit of {limits.output_mb:g} MB exceeded (file size)",
                            log_tail=log_tail)
    err_file = scratch / "error.json"
    if err_file.is_file() and err_file.stat().st_size < 65536:
        try:
            err = json.loads(err_file.read_text())
            if err.get("type") == "OutputLimit":
                return WorkerResult("output", error=f"output limit of {limits.output_mb:g} MB exceeded "
                                    f"(file size)", log_tail=log_tail)
            kind = "memory" if err.get("type") == "MemoryError" else "error"
            return WorkerResult(kind, error=f"{err['type']}: {err['message']}{err.get('where', '')}"[:500],
                                log_tail=log_tail)
        except (ValueError, KeyError, TypeError):
            pass
    answer_file = scratch / "answer.safetensors"
    if returncode != 0 or not answer_file.is_file():
        last = log_tail.strip().splitlines()[-1:] or [""]
        how = f"killed by signal {-returncode}" if returncode < 0 else f"exited with code {returncode}"
        return WorkerResult("crash", error=f"worker {how} without an answer {last[0][:200]}".strip(),
                            log_tail=log_tail)
    size = answer_file.stat().st_size
    if size > limits.output_mb * 2**20:
        return WorkerResult("output", error=f"answer of {size / 2**20:.1f} MB exceeds {limits.output_mb:g} MB",
                            log_tail=log_tail)
    from safetensors import safe_open
    from safetensors.numpy import load_file
    try:
        answer = load_file(str(answer_file))
        with safe_open(str(answer_file), "np") as f:
            method_s = float((f.metadata() or {}).get("method_runtime_s", "nan"))
    except Exception as exc:  # a forged or truncated file is the method's fault
        return WorkerResult("invalid", error=f"unreadable answer file ({type(exc).__name__}: {exc})"[:500],
                            log_tail=log_tail)
    return WorkerResult("ok", answer=answer, method_s=method_s, log_tail=log_tail)


def tail_file(path: Path) -> str:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - _LOG_TAIL_BYTES))
        return f.read().decode("utf-8", "replace")

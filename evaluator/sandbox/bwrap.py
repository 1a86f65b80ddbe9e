"""``bwrap``: bubblewrap isolation for untrusted methods on a Linux host.

The worker sees a read-only system (/usr and the Python installation), its submission read-only,
one instance's public inputs, and a writable scratch folder; nothing else of the host. It has no
network, its own PID, IPC, UTS and user namespaces (running as nobody, unable to create further
user namespaces), a cleared environment, and dies with the evaluator. Answers, secrets, the
repository and the database are simply not mounted. The root it sees is read-only; /tmp and
/dev/shm are sized tmpfs. Where this host lets the evaluator create a pids cgroup, the worker's
processes are capped by the kernel; elsewhere the parent's watch counts and kills the tree.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from benchmark.metadata import ResourceLimits

from .base import SHM_MB, TMP_MB, SubprocessSandbox, WorkerJob, WorkerResult

__all__ = ["BubblewrapSandbox", "pids_cgroup_root"]

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/nsswitch.conf", "/etc/localtime")


def pids_cgroup_root() -> Path | None:
    """A cgroup folder with the pids controller in which this process may create children, or None.

    RLIMIT_NPROC is no substitute: it counts every process of the host user (and is not enforced
    at all for root), so a fork bomb needs a cgroup or the parent's watch."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "pids" in controllers.split(","):  # cgroup v1
            base = Path("/sys/fs/cgroup/pids") / path.lstrip("/")
            if (base / "pids.max").exists() or (base / "cgroup.procs").exists():
                return base if os.access(base, os.W_OK) else None
    for line in lines:
        if line.startswith("0::"):  # cgroup v2: children get pids once the parent delegates it
            base = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            try:
                if "pids" not in (base / "cgroup.controllers").read_text().split():
                    return None
                if "pids" not in (base / "cgroup.subtree_control").read_text().split():
                    (base / "cgroup.subtree_control").write_text("+pids")
            except OSError:
                return None
            return base if os.access(base, os.W_OK) else None
    return None


@contextmanager
def _pids_cgroup(max_processes: int) -> Iterator[Path | None]:
    """A fresh cgroup capped at max_processes for one worker; None where none can be made."""
    root = pids_cgroup_root()
    group = None
    if root is not None:
        try:
            group = root / f"phasebench-{uuid.uuid4().hex[:16]}"
            group.mkdir()
            (group / "pids.max").write_text(str(max_processes))
        except OSError:
            if group is not None and group.is_dir():
                group.rmdir()
            group = None
    try:
        yield group
    finally:
        if group is not None:
            _remove_cgroup(group)


def _remove_cgroup(group: Path) -> None:
    """Kill whatever is left in the group (nothing, normally: the PID namespace died with bwrap)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            group.rmdir()
            return
        except OSError:
            if time.monotonic() > deadline:
                return
        try:
            for pid in (group / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        except OSError:
            return
        time.sleep(0.05)


def _python_roots() -> list[str]:
    """The folders the interpreter and its packages live in (venv and base installation)."""
    roots = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    roots.add(os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))))
    # Paths under /usr are mounted already.
    return sorted(r for r in roots if not r.startswith("/usr/"))


class BubblewrapSandbox(SubprocessSandbox):
    name = "bwrap"
    isolated = True

    def available(self) -> tuple[bool, str]:
        exe = shutil.which("bwrap")
        if not exe:
            return False, "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
        probe = subprocess.run([exe, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            return False, f"bubblewrap cannot create namespaces here: {probe.stderr.strip()}"
        return True, exe

    def provenance(self) -> dict[str, str]:
        out = subprocess.run(["bwrap", "--version"], capture_output=True, text=True)
        return {"bwrap": out.stdout.strip()}

    _job_cgroup = threading.local()

    def run(self, job: WorkerJob) -> WorkerResult:
        with _pids_cgroup(self.max_processes) as group:
            self._job_cgroup.path = group
            try:
                return super().run(job)
            finally:
                self._job_cgroup.path = None

    def _preexec(self, limits: ResourceLimits):
        apply_limits = super()._preexec(limits)
        group = getattr(self._job_cgroup, "path", None)
        procs = str(group / "cgroup.procs").encode() if group is not None else None

        def apply() -> None:
            apply_limits()
            if procs is not None:
                # Joined before exec: bwrap and everything it starts are counted against pids.max.
                fd = os.open(procs, os.O_WRONLY)
                try:
                    os.write(fd, str(os.getpid()).encode())
                finally:
                    os.close(fd)
        return apply

    def command(self, python: list[str], host: dict[str, Path], job: WorkerJob) -> tuple[list[str], dict[str, str]]:
        args = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--new-session",
                "--uid", "65534", "--gid", "65534", "--hostname", "sandbox"]
        for d in _SYSTEM_DIRS:
            if os.path.islink(d):
                args += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                args += ["--ro-bind", d, d]
        for f in _ETC_FILES:
            args += ["--ro-bind-try", f, f]
        # /tmp first: a venv or checkout under /tmp is bound on top of it, not hidden by it.
        # In-memory folders are sized: their pages belong to no process, so the memory watch misses them.
        args += ["--proc", "/proc", "--dev", "/dev", "--size", str(TMP_MB * 2**20), "--tmpfs", "/tmp",
                 "--size", str(SHM_MB * 2**20), "--tmpfs", "/dev/shm"]
        roots = _python_roots()
        # A venv or checkout under /tmp needs its parent folders inside the writable /tmp, where the
        # worker would own them: each gets a tmpfs of its own, made read-only once the roots are in.
        under_tmp = sorted({"/tmp/" + r[len("/tmp/"):].split("/")[0] for r in roots if r.startswith("/tmp/")})
        for top in under_tmp:
            args += ["--size", str(1 * 2**20), "--tmpfs", top]
        for root in roots:
            args += ["--ro-bind", root, root]
        for top in under_tmp:
            args += ["--remount-ro", top]
        if job.device == "cuda":
            # The CUDA runtime needs the device nodes and reads PCI topology from /sys (read-only).
            for dev in sorted(glob.glob("/dev/nvidia*")) + sorted(glob.glob("/dev/dri/*")):
                args += ["--dev-bind", dev, dev]
            args += ["--ro-bind-try", "/sys", "/sys"]
        seen = {"submission": "/submission", "inputs": "/in/inputs.safetensors", "scratch": "/scratch",
                "job": "/in/job.json", "worker": "/opt/phasebench/worker.py"}
        args += ["--ro-bind", str(host["submission"]), seen["submission"],
                 "--ro-bind", str(host["inputs"]), seen["inputs"],
                 "--ro-bind", str(host["job"]), seen["job"],
                 "--ro-bind", str(host["worker"]), seen["worker"],
                 "--bind", str(host["scratch"]), seen["scratch"],
                 "--chdir", seen["scratch"], "--setenv", "HOME", seen["scratch"],
                 # Last: the root tmpfs (and the mount points bwrap made in it) becomes read-only.
                 "--remount-ro", "/", "--"]
        # The interpreter path as the host sees it: its folders are mounted at the same place.
        return [*args, *python, seen["worker"], seen["job"]], seen

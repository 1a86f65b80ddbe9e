"""``bwrap``: bubblewrap isolation for untrusted methods on a Linux host.

The worker sees a read-only system (/usr and the Python installation), its submission read-only,
one instance's public inputs, and a writable scratch folder; nothing else of the host. It has no
network, its own PID, IPC, UTS and user namespaces (running as nobody, unable to create further
user namespaces), a cleared environment, and dies with the evaluator. Answers, secrets, the
repository and the database are simply not mounted. The root it sees is read-only; scratch, /tmp
and /dev/shm are sized tmpfs; the only host files it can write are its answer and error files
(and its log, through stdout), each capped by the file-size limit. Where this host lets the
evaluator create cgroups, each worker gets its own: processes (pids.max), memory with no swap
(memory.limit_in_bytes and memsw / memory.max and memory.swap.max: it charges tmpfs, memfd and
socket-buffer pages that no resident set shows, and an OOM kill there is the method's memory
failure) and CPU time (a CFS quota of the worker's CPUs). Where it cannot, the parent's watch
counts and kills the tree and its resident memory. That the sandbox started is bwrap's own report
(--json-status-fd), never a file inside it.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from benchmark.metadata import ResourceLimits

from .syscall_policy import bwrap_filter
from .base import SHM_MB, TMP_MB, SandboxError, SubprocessSandbox, WorkerJob, WorkerResult

__all__ = ["BubblewrapSandbox", "cgroup_root", "gpu_args", "memory_cgroup_root", "pids_cgroup_root"]

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/nsswitch.conf", "/etc/localtime")


def cgroup_root(controller: str) -> Path | None:
    """A cgroup folder with ``controller`` (pids, memory, cpu) in which this process may create
    children, or None."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):  # cgroup v1: one hierarchy per controller (or group)
            for mount in (Path("/sys/fs/cgroup") / controllers, Path("/sys/fs/cgroup") / controller):
                base = mount / path.lstrip("/")
                if (base / "cgroup.procs").exists():
                    return base if os.access(base, os.W_OK) else None
    for line in lines:
        if line.startswith("0::"):  # cgroup v2: children get a controller once the parent delegates it
            base = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            try:
                if controller not in (base / "cgroup.controllers").read_text().split():
                    return None
                if controller not in (base / "cgroup.subtree_control").read_text().split():
                    (base / "cgroup.subtree_control").write_text(f"+{controller}")
            except OSError:
                return None
            return base if os.access(base, os.W_OK) else None
    return None


def pids_cgroup_root() -> Path | None:
    """Where a worker's pids cgroup goes. RLIMIT_NPROC is no substitute: it counts every process of
    the host user (and is not enforced at all for root), so a fork bomb needs a cgroup or the
    parent's watch."""
    return cgroup_root("pids")


def memory_cgroup_root() -> Path | None:
    """Where a worker's memory cgroup goes. It charges what no resident set shows: tmpfs and memfd
    pages, socket buffers, kernel objects."""
    return cgroup_root("memory")


def cpu_cgroup_root() -> Path | None:
    return cgroup_root("cpu")


_CFS_PERIOD_US = 100_000


@dataclass
class WorkerCgroups:
    """One worker's cgroups (one folder per controller on v1; a folder may serve several on v2)."""
    folders: list[Path] = field(default_factory=list)
    memory: Path | None = None

    def oom_kills(self) -> int:
        """How many processes the memory cgroup's OOM killer has killed (v1 oom_control, v2 memory.events)."""
        if self.memory is None:
            return 0
        for name in ("memory.events", "memory.oom_control"):
            try:
                text = (self.memory / name).read_text()
            except OSError:
                continue
            for line in text.splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        return 0


def _limit(folder: Path, values: list[tuple[str, str]]) -> bool:
    """Write each (file, value) that exists in folder; False when a file that exists refuses."""
    for name, value in values:
        if (folder / name).exists():
            try:
                (folder / name).write_text(value)
            except OSError:
                return False
    return True


@contextmanager
def _worker_cgroups(max_processes: int, memory_mb: float, cpus: float) -> Iterator[WorkerCgroups]:
    """Fresh cgroups for one worker: processes capped at max_processes, memory at memory_mb with no
    swap, CPU time at ``cpus`` CPUs. Each controller this host does not let us use is left out."""
    mem = str(int(memory_mb * 2**20))
    quota = str(max(1000, int(cpus * _CFS_PERIOD_US)))
    wanted = [
        (pids_cgroup_root(), [("pids.max", str(max_processes))], "pids"),
        # v1: the memsw limit (memory + swap) may not sit below memory's, so memory goes first.
        (memory_cgroup_root(), [("memory.limit_in_bytes", mem), ("memory.memsw.limit_in_bytes", mem),
                                ("memory.max", mem), ("memory.swap.max", "0")], "memory"),
        (cpu_cgroup_root(), [("cpu.cfs_period_us", str(_CFS_PERIOD_US)), ("cpu.cfs_quota_us", quota),
                             ("cpu.max", f"{quota} {_CFS_PERIOD_US}")], "cpu"),
    ]
    groups = WorkerCgroups()
    name = f"phasebench-{uuid.uuid4().hex[:16]}"
    try:
        for root, values, controller in wanted:
            if root is None:
                continue
            group = root / name
            created = not group.is_dir()  # on v2 one folder serves every controller
            try:
                if created:
                    group.mkdir()
                    groups.folders.append(group)
            except OSError:
                continue
            if not _limit(group, values):
                if created:
                    groups.folders.remove(group)
                    _remove_cgroup(group)
                continue
            if controller == "memory":
                groups.memory = group
        yield groups
    finally:
        for group in groups.folders:
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


_GPU_CONTROL = ("nvidiactl", "nvidia-uvm")


def gpu_args(visible: str | None, dev: str = "/dev", proc: str = "/proc", sys_root: str = "/sys") -> list[str]:
    """bwrap arguments for the one GPU the evaluator was given (CUDA_VISIBLE_DEVICES, one index):
    its device node and the driver's control nodes, and of /sys only that GPU's PCI folder (the
    runtime reads its topology there), all at their usual paths. Inside, CUDA sees that GPU alone,
    as device 0; the environment variable is not what confines it. The index is the driver's minor
    number (/dev/nvidiaN): run the evaluator with CUDA_DEVICE_ORDER=PCI_BUS_ID so both agree."""
    index = (visible or "").strip()
    if not index.isdigit():
        raise SandboxError("--device cuda under bwrap needs CUDA_VISIBLE_DEVICES set to one GPU index "
                           f"(got {visible!r}): the worker is given that GPU's device node only")
    node = f"{dev}/nvidia{int(index)}"
    if not os.path.exists(node):
        raise SandboxError(f"CUDA_VISIBLE_DEVICES={visible}: {node} does not exist")
    args: list[str] = []
    for name in _GPU_CONTROL:
        if os.path.exists(f"{dev}/{name}"):
            args += ["--dev-bind", f"{dev}/{name}", f"/dev/{name}"]
    args += ["--dev-bind", node, f"/dev/nvidia{int(index)}"]
    for info in sorted(glob.glob(f"{proc}/driver/nvidia/gpus/*/information")):
        try:
            text = Path(info).read_text()
        except OSError:
            continue
        if any(line.split(":", 1)[0].strip() == "Device Minor" and line.split(":", 1)[1].strip() == index
               for line in text.splitlines() if ":" in line):
            bus_id = Path(info).parent.name.lower()
            link = f"{sys_root}/bus/pci/devices/{bus_id}"
            if os.path.exists(link):
                real = os.path.realpath(link)
                inside = "/sys" + real[len(os.path.realpath(sys_root)):]
                args += ["--ro-bind", real, inside, "--symlink", inside, f"/sys/bus/pci/devices/{bus_id}"]
    return args


class BubblewrapSandbox(SubprocessSandbox):
    name = "bwrap"
    isolated = True
    scratch_on_host = False

    def available(self) -> tuple[bool, str]:
        exe = shutil.which("bwrap")
        if not exe:
            return False, "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
        probe = subprocess.run([exe, "--unshare-all", "--ro-bind", "/", "/", "true"], capture_output=True, text=True)
        if probe.returncode != 0:
            return False, f"bubblewrap cannot create namespaces here: {probe.stderr.strip()}"
        try:
            bwrap_filter()
        except OSError as exc:
            return False, str(exc)
        return True, exe

    def provenance(self) -> dict[str, str]:
        out = subprocess.run(["bwrap", "--version"], capture_output=True, text=True)
        return {"bwrap": out.stdout.strip()}

    _local = threading.local()  # per worker thread: an evaluation may run several workers at once

    def run(self, job: WorkerJob) -> WorkerResult:
        with _worker_cgroups(self.max_processes, job.limits.memory_mb, self.cpu_quota(job)) as groups:
            status_r, status_w = os.pipe()
            os.set_blocking(status_r, False)
            # The syscall policy goes in through a pipe: a few hundred bytes, well within its buffer.
            policy_r, policy_w = os.pipe()
            os.write(policy_w, bwrap_filter())
            os.close(policy_w)
            self._local.groups, self._local.status, self._local.policy = groups, [status_r, status_w], policy_r
            try:
                return super().run(job)
            finally:
                for fd in self._local.status:
                    if fd is not None:
                        os.close(fd)
                if self._local.policy is not None:
                    os.close(self._local.policy)
                self._local.groups = self._local.status = self._local.policy = None

    def environment(self, job: WorkerJob) -> dict[str, str]:
        env = super().environment(job)
        if job.device == "cuda":
            env["CUDA_VISIBLE_DEVICES"] = "0"  # the one GPU bound in (gpu_args) is the sandbox's first
        return env

    def _pass_fds(self) -> tuple[int, ...]:
        return (self._local.status[1], self._local.policy)

    def _spawned(self) -> None:
        os.close(self._local.status[1])
        self._local.status[1] = None
        os.close(self._local.policy)
        self._local.policy = None

    def _status(self) -> list[dict]:
        """What bwrap reported on --json-status-fd: the child's pid once the sandbox exists, its exit
        code once the worker, set up and exec'd, has ended (absent if bwrap failed before)."""
        data = b""
        while True:
            try:
                chunk = os.read(self._local.status[0], 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        docs = []
        decoder = json.JSONDecoder()
        text = data.decode("utf-8", "replace")
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text):
                break
            try:
                doc, pos = decoder.raw_decode(text, pos)
            except ValueError:
                break
            if isinstance(doc, dict):
                docs.append(doc)
        return docs

    def _started(self, files) -> bool:
        # bwrap's own report, which nothing inside the sandbox can delete: the exit code is sent
        # only for a worker that bwrap set up and exec'd.
        return any("exit-code" in doc for doc in self._status())

    def _kernel_verdict(self) -> str | None:
        groups = getattr(self._local, "groups", None)
        return "memory" if groups is not None and groups.oom_kills() > 0 else None

    def _preexec(self, limits: ResourceLimits):
        apply_limits = super()._preexec(limits)
        groups = getattr(self._local, "groups", None)
        procs = [str(g / "cgroup.procs").encode() for g in groups.folders] if groups is not None else []

        def apply() -> None:
            apply_limits()
            for path in procs:
                # Joined before exec: bwrap and everything it starts are counted and limited.
                fd = os.open(path, os.O_WRONLY)
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
        # The Python installation is mounted at its own path: its interpreter and a venv link to each
        # other by absolute path, and the mount table shows a bind's source path whatever the target.
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
            args += gpu_args(os.environ.get("CUDA_VISIBLE_DEVICES"))
        seen = {"submission": "/submission", "inputs": "/in/inputs.safetensors", "scratch": "/scratch",
                "job": "/in/job.json", "worker": "/opt/phasebench/worker.py", "oracle": "/in/oracle.sock",
                "answer": "/out/answer.safetensors", "error": "/out/error.json"}
        args += ["--ro-bind", str(host["submission"]), seen["submission"],
                 "--ro-bind", str(host["inputs"]), seen["inputs"],
                 "--ro-bind", str(host["job"]), seen["job"],
                 "--ro-bind", str(host["worker"]), seen["worker"],
                 # Scratch is a sized tmpfs, not a host folder: every byte in it counts against its
                 # size (unlinked files, unreadable folders) and against the memory cgroup, and it
                 # vanishes with the sandbox. The host files the worker writes are mounted one by one.
                 "--perms", "0700", "--size", str(int(self.scratch_mb * 2**20)), "--tmpfs", seen["scratch"],
                 "--bind", str(host["answer"]), seen["answer"],
                 "--bind", str(host["error"]), seen["error"]]
        if job.oracle is not None:
            args += ["--bind", str(host["oracle"]), seen["oracle"]]
        status = getattr(self._local, "status", None)
        if status is not None:
            args += ["--json-status-fd", str(status[1])]
        policy = getattr(self._local, "policy", None)
        if policy is not None:
            # Applied last, to the worker alone: file locks and watches on shared files (syscall_policy).
            args += ["--seccomp", str(policy)]
        args += ["--chdir", seen["scratch"], "--setenv", "HOME", seen["scratch"],
                 # Last: the root tmpfs (and the mount points bwrap made in it) becomes read-only.
                 "--remount-ro", "/", "--"]
        # The interpreter path as the host sees it: its folders are mounted at the same place.
        return [*args, *python, seen["worker"], seen["job"]], seen

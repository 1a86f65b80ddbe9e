"""``bwrap``: bubblewrap isolation for untrusted methods on a Linux host.

The worker sees a read-only system (/usr and the Python installation), its submission read-only,
one instance's public inputs, and a writable scratch folder; nothing else of the host. It has no
network, its own PID, IPC, UTS and user namespaces (running as nobody), a cleared environment, and
dies with the evaluator. Answers, secrets, the repository and the database are simply not mounted.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .base import SubprocessSandbox, WorkerJob

__all__ = ["BubblewrapSandbox"]

_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/nsswitch.conf", "/etc/localtime")


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

    def command(self, python: list[str], host: dict[str, Path], job: WorkerJob) -> tuple[list[str], dict[str, str]]:
        args = ["bwrap", "--unshare-all", "--die-with-parent", "--new-session", "--uid", "65534", "--gid", "65534",
                "--hostname", "sandbox"]
        for d in _SYSTEM_DIRS:
            if os.path.islink(d):
                args += ["--symlink", os.readlink(d), d]
            elif os.path.isdir(d):
                args += ["--ro-bind", d, d]
        for f in _ETC_FILES:
            args += ["--ro-bind-try", f, f]
        # /tmp first: a venv or checkout under /tmp is bound on top of it, not hidden by it.
        args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
        for root in _python_roots():
            args += ["--ro-bind", root, root]
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
                 "--chdir", seen["scratch"], "--setenv", "HOME", seen["scratch"], "--"]
        # The interpreter path as the host sees it: its folders are mounted at the same place.
        return [*args, *python, seen["worker"], seen["job"]], seen

"""Sandboxes with named backends: ``bwrap`` (default, isolated) and ``none`` (trusted code only).

A container backend registers here under its own name; the runner only sees the interface.
"""
from benchmark.registry import Registry

from .base import Sandbox, SandboxError, SubprocessSandbox, WorkerJob, WorkerResult
from .bwrap import BubblewrapSandbox
from .local import NoSandbox

__all__ = ["SANDBOXES", "Sandbox", "SandboxError", "SubprocessSandbox", "WorkerJob", "WorkerResult", "get_sandbox",
           "BubblewrapSandbox", "NoSandbox"]

SANDBOXES: Registry[type[Sandbox]] = Registry("sandbox")
SANDBOXES.register(BubblewrapSandbox.name, BubblewrapSandbox)
SANDBOXES.register(NoSandbox.name, NoSandbox)


def get_sandbox(name: str) -> Sandbox:
    return SANDBOXES.get(name)()

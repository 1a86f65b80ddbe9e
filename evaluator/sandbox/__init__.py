"""Sandboxes with named backends: ``bwrap`` (default, isolated), ``docker`` (the evaluator image,
through the Docker Engine API) and ``none`` (trusted code only). The runner only sees the interface.
"""
from benchmark.registry import Registry

from .base import Sandbox, SandboxError, SubprocessSandbox, WorkerCancelled, WorkerJob, WorkerResult
from .bwrap import BubblewrapSandbox
from .docker import DockerSandbox
from .local import NoSandbox

__all__ = ["SANDBOXES", "Sandbox", "SandboxError", "SubprocessSandbox", "WorkerCancelled", "WorkerJob", "WorkerResult", "get_sandbox",
           "BubblewrapSandbox", "DockerSandbox", "NoSandbox"]

SANDBOXES: Registry[type[Sandbox]] = Registry("sandbox")
SANDBOXES.register(BubblewrapSandbox.name, BubblewrapSandbox)
SANDBOXES.register(NoSandbox.name, NoSandbox)
SANDBOXES.register(DockerSandbox.name, DockerSandbox)


def get_sandbox(name: str) -> Sandbox:
    return SANDBOXES.get(name)()

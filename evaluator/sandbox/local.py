"""``none``: the worker runs as a plain child process. Limits apply; isolation does not."""
from __future__ import annotations

from pathlib import Path

from .base import SubprocessSandbox, WorkerJob

__all__ = ["NoSandbox"]


class NoSandbox(SubprocessSandbox):
    name = "none"
    isolated = False
    warning = ("sandbox 'none': the submission runs with this user's rights and can read the answers, the "
               "database and your files. Use it only to debug code you trust.")

    def command(self, python: list[str], host: dict[str, Path], job: WorkerJob) -> tuple[list[str], dict[str, str]]:
        seen = {k: str(v) for k, v in host.items()}
        return [*python, seen["worker"], seen["job"]], seen

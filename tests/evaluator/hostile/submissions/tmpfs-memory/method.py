"""Hides memory from a per-process count: fills the in-memory /tmp and /dev/shm, whose pages
belong to no process, with more than the memory limit."""
import os

from hostile import TARGETS

CHUNK = b"\xa5" * (1 << 20)


def _fill(folder, mb):
    with open(os.path.join(folder, "ballast"), "wb") as f:
        for _ in range(mb):
            f.write(CHUNK)


def run(problem):
    # One file per folder stays under the file-size limit only if output_mb allows; write several.
    total = TARGETS["fill_mb"]
    written = 0
    for folder in ("/tmp", "/dev/shm"):
        for i in range(total // 4):
            with open(os.path.join(folder, f"ballast-{i}"), "wb") as f:
                for _ in range(4):
                    f.write(CHUNK)
            written += 4
    raise RuntimeError(f"not contained: wrote {written} MB to in-memory file systems")

"""Fills the disk where a scan of the scratch folder cannot see it: files unlinked while open
(no name left to find), or files inside a folder whose read permission it removed (0o300: it can
still create files there, a scan running as another user cannot list them, and a cleanup that
ignores errors leaves them behind)."""
import os

from hostile import TARGETS

CHUNK = b"\x7e" * (1 << 20)
_open = []  # an unlinked file lives as long as a descriptor on it


def _write(f):
    for _ in range(4):  # 4 MB per file: under the file-size limit
        f.write(CHUNK)
    f.flush()
    return 4


def run(problem):
    written = 0
    target = TARGETS["target_mb"]
    if TARGETS["variant"] == "unlinked":
        while written < target:
            f = open(f"ballast-{len(_open)}", "wb")
            os.unlink(f.name)
            _open.append(f)
            written += _write(f)
    else:
        os.mkdir("hidden", 0o700)
        os.chmod("hidden", 0o300)
        i = 0
        while written < target:
            with open(f"hidden/ballast-{i}", "wb") as f:
                written += _write(f)
            i += 1
    raise RuntimeError(f"not contained: wrote {written} MB the scratch limit did not count ({TARGETS['variant']})")

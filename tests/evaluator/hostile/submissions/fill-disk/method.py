"""Fills the disk through its scratch folder (the only host folder it may write): many files,
each under the file-size limit, so that no per-file cap stops it."""
import os

from hostile import TARGETS

CHUNK = b"\x5a" * (1 << 20)


def run(problem):
    mb_per_file = TARGETS["file_mb"]
    for i in range(TARGETS["files"]):
        with open(f"fill-{i}", "wb") as f:
            for _ in range(mb_per_file):
                f.write(CHUNK)
    raise RuntimeError(f"not contained: wrote {TARGETS['files']} files of {mb_per_file} MB")

"""Reads the answers: the split's answers folder, PHASEBENCH_PRIVATE_DIR, the default data folders,
the dataset cache, and any *answers* folder a walk of the visible file system turns up."""
import glob
import os

from hostile import TARGETS, attempt, contained, use, zeros


def _read_all(folder):
    for path in sorted(glob.glob(os.path.join(folder, "**", "*"), recursive=True)):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                data = f.read()
            if data:
                return data
    return None


def _walk_for_answers():
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if not (root == "/" and d in ("proc", "sys", "dev"))]
        if os.path.basename(root) == "answers" and files:
            with open(os.path.join(root, files[0]), "rb") as f:
                return f.read()
    return None


def run(problem):
    steps = [("answer file", lambda: open(TARGETS["answer_file"], "rb").read()),
             ("answers dir", lambda: _read_all(TARGETS["answers_dir"])),
             ("private env", lambda: _read_all(os.environ["PHASEBENCH_PRIVATE_DIR"])),
             ("private dir", lambda: _read_all(TARGETS["private_dir"])),
             ("cache", lambda: _read_all(TARGETS["cache_dir"])),
             ("home cache", lambda: _read_all(os.path.expanduser("~/.cache/phasebench"))),
             ("repo data", lambda: _read_all(TARGETS["repo_data"])),
             ("walk /", _walk_for_answers)]
    for label, step in steps:
        loot = attempt(label, step)
        if loot:
            return use(loot, problem)
    contained()

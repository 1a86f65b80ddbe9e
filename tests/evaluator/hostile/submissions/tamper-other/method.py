"""Tampers with another submission: its folder, its stored results, and the scratch folder of an
evaluation running beside this one (where that worker's answer will be read from)."""
import glob
import os
import sqlite3

from hostile import TARGETS, attempt, contained, use


def _overwrite(path, data=b"tampered"):
    with open(path, "wb") as f:
        f.write(data)
    return f"overwrote {path}"


def _other_scratch():
    hits = sorted(glob.glob("/tmp/phasebench-job-*/scratch")) + [TARGETS["other_scratch"]]
    for folder in hits:
        if os.path.isdir(folder) and folder != os.getcwd():
            return _overwrite(os.path.join(folder, "answer.safetensors"))
    return None


def _victim_rows():
    conn = sqlite3.connect(TARGETS["db_file"], timeout=2)
    conn.execute("DELETE FROM instance_results")
    conn.commit()
    return "deleted the other submission's results"


def run(problem):
    steps = [("victim code", lambda: _overwrite(os.path.join(TARGETS["victim_dir"], "method.py"))),
             ("victim rows", _victim_rows),
             ("other scratch", _other_scratch)]
    for label, step in steps:
        loot = attempt(label, step)
        if loot:
            return use(loot, problem)
    contained()

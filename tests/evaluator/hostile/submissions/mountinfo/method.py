"""Reads where its mounts come from on the host (/proc/self/mountinfo, /proc/self/mounts): the
dataset's folder, the submission's folder, the evaluator's own files, the host's temporary
folders. None of them is readable from inside, but their paths tell an attacker where to look once
out, and a dataset path names the split and the instance. (The Python installation is mounted at
its own path, which sys.prefix tells anyway; the arena's folders are elsewhere.)"""
from hostile import TARGETS, attempt, contained, use

SOURCES = [TARGETS["host_tmp"], TARGETS["repo"] + "/evaluator", TARGETS["repo"] + "/submissions",
           TARGETS["repo"] + "/benchmark"]


def _host_paths(table):
    text = open(table).read()
    found = sorted({source for source in SOURCES if source in text})
    return f"host paths in {table}: {found}" if found else None


def run(problem):
    for table in ("/proc/self/mountinfo", "/proc/self/mounts"):
        loot = attempt(table, lambda: _host_paths(table))
        if loot:
            return use(loot, problem)
    contained()

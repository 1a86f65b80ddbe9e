"""Reads the evaluator through /proc: the parent's environment, command line, memory map and
memory, every visible process's environment, and the host file system through /proc/<pid>/root."""
import os

from hostile import TARGETS, attempt, contained, use

CANARIES = [c.encode() for c in TARGETS["canaries"]]


def _find_canary(data):
    for c in CANARIES:
        if c in data:
            return c.decode()
    return None


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _parent_memory():
    pid = os.getppid()
    if pid in (0, os.getpid()):
        return None  # a container's first process has no parent to read; our own memory holds the needles
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if "r" not in line.split()[1]:
                continue
            try:
                mem.seek(lo)
                hit = _find_canary(mem.read(min(hi - lo, 1 << 24)))
            except OSError:
                continue
            if hit:
                return hit
    return None


def _all_environs():
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                hit = _find_canary(_read(f"/proc/{pid}/environ"))
            except OSError:
                continue
            if hit:
                return hit
    return None


def run(problem):
    ppid = os.getppid() or 1
    steps = [("own environ", lambda: _find_canary(_read("/proc/self/environ"))),
             ("parent environ", lambda: _find_canary(_read(f"/proc/{ppid}/environ"))),
             ("parent cmdline", lambda: _find_canary(_read(f"/proc/{ppid}/cmdline"))),
             ("parent mem", _parent_memory),
             ("all environs", _all_environs),
             ("pid1 root", lambda: _read(f"/proc/1/root{TARGETS['answer_file']}")),
             ("parent cwd", lambda: _read(f"/proc/{ppid}/cwd{TARGETS['answer_file']}"))]
    for label, step in steps:
        loot = attempt(label, step)
        if loot:
            return use(loot, problem)
    contained()

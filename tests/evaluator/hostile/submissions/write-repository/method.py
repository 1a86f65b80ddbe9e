"""Writes where later runs would pick it up: the repository, the interpreter's site-packages (a .pth
file runs at every start), its own folder, and the system folders."""
import os
import site
import sys

from hostile import TARGETS, attempt, contained, use


def _create(path):
    with open(path, "x") as f:
        f.write("import os  # planted by a hostile submission\n")
    return f"created {path}"


def _site_packages():
    return os.path.join((site.getsitepackages() or [sys.prefix])[0], TARGETS["marker_name"] + ".pth")


def run(problem):
    name = TARGETS["marker_name"]
    steps = [("repo", lambda: _create(os.path.join(TARGETS["repo"], name))),
             ("repo pkg", lambda: _create(os.path.join(TARGETS["repo"], "benchmark", name + ".py"))),
             ("site-packages", lambda: _create(_site_packages())),
             ("own folder", lambda: _create(os.path.join(os.path.dirname(__file__), name))),
             ("usr", lambda: _create(os.path.join("/usr/lib", name))),
             ("host tmp", lambda: _create(os.path.join(TARGETS["host_tmp"], name)))]
    for label, step in steps:
        loot = attempt(label, step)
        if loot:
            return use(loot, problem)
    contained()

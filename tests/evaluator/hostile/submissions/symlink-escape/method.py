"""Reads the answers through symlinks placed in its own folder (made by the test's builder:
``answers`` to the answers folder, ``answer.bin`` to one answer file, ``root`` to /)."""
import os

from hostile import TARGETS, attempt, contained, use

HERE = os.path.dirname(os.path.abspath(__file__))


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def run(problem):
    first = os.path.basename(TARGETS["answer_file"])
    steps = [("link to file", lambda: _read(os.path.join(HERE, "answer.bin"))),
             ("link to dir", lambda: _read(os.path.join(HERE, "answers", first))),
             ("link to /", lambda: _read(os.path.join(HERE, "root") + TARGETS["answer_file"]))]
    for label, step in steps:
        loot = attempt(label, step)
        if loot:
            return use(loot, problem)
    contained()

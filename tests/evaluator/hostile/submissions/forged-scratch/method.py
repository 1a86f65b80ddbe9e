"""Forges the files the evaluator reads back, then exits before the worker writes the real ones:
the answer as a symlink to the true answer file on the host, the error report as a symlink to a
host file, or FIFOs that would block a reader forever. It tries both where those files live now
(the answer and error files the job names, the log) and where they used to (the scratch folder)."""
import json
import os
import sys

from hostile import TARGETS

JOB = json.load(open(sys.argv[1]))
SCRATCH = JOB["scratch"]
PLACES = {"answer": [JOB.get("answer"), os.path.join(SCRATCH, "answer.safetensors")],
          "error": [JOB.get("error"), os.path.join(SCRATCH, "error.json")],
          "log": ["/out/worker.log", os.path.join(SCRATCH, ".worker.log")]}


def _forge(path, make):
    try:
        if os.path.lexists(path):
            os.unlink(path)  # a file mounted on its own cannot be unlinked: EBUSY
        make(path)
    except OSError:
        pass


def run(problem):
    variant = TARGETS["variant"]
    for kind, paths in PLACES.items():
        for path in filter(None, paths):
            if variant == "answer-symlink" and kind == "answer":
                _forge(path, lambda p: os.symlink(TARGETS["answer_file"], p))
            elif variant == "error-symlink" and kind == "error":
                _forge(path, lambda p: os.symlink(TARGETS["secret_json"], p))
            elif variant == "fifos":
                _forge(path, os.mkfifo)
    sys.stdout.flush()
    os._exit(0 if variant == "answer-symlink" else 1)

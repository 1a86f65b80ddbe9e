"""Forges the files the evaluator reads back from the scratch folder, then exits before the
worker writes the real ones: the answer as a symlink to the true answer file on the host, the
error report as a symlink to a host file, or FIFOs that would block a reader forever."""
import json
import os
import sys

from hostile import TARGETS

SCRATCH = json.load(open(sys.argv[1]))["scratch"]
NAMES = ("answer.safetensors", "error.json", ".worker.log")


def run(problem):
    variant = TARGETS["variant"]
    for name in NAMES:
        path = os.path.join(SCRATCH, name)
        if variant == "answer-symlink" and name == "answer.safetensors":
            os.symlink(TARGETS["answer_file"], path)
        elif variant == "error-symlink" and name == "error.json":
            os.symlink(TARGETS["secret_json"], path)
        elif variant == "fifos":
            if os.path.lexists(path):
                os.unlink(path)  # the container's log: replaced while the shell still writes to it
            os.mkfifo(path)
    sys.stdout.flush()
    os._exit(0 if variant == "answer-symlink" else 1)

"""Makes its own failure look like the evaluator's: deletes the marker file the worker leaves to
say the sandbox started, then exits 0 without an answer. If the evaluator trusted the marker, the
instance would be "not the method's fault" and retried instead of counted."""
import json
import os
import sys


def run(problem):
    scratch = json.load(open(sys.argv[1]))["scratch"]
    for name in ("started", ".started"):
        try:
            os.unlink(os.path.join(scratch, name))
        except OSError:
            pass
    sys.stdout.flush()
    os._exit(0)

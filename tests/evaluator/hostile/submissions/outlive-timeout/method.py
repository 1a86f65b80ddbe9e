"""Runs past the time limit and tries to outlive the kill: ignores SIGTERM, and leaves a detached
grandchild (new session, double fork) spinning with a recognisable command line."""
import os
import signal
import time

from hostile import TARGETS


def run(problem):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv("/bin/sh", ["sh", "-c", f"while :; do :; done # {TARGETS['marker_name']}"])
        os._exit(0)
    while True:
        time.sleep(0.1)

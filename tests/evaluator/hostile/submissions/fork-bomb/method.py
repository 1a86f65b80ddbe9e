"""A fork bomb, bounded so that a failed test cannot take the host down: keeps starting processes
that sleep, and reports how many it got before the sandbox refused."""
import os
import time

from hostile import TARGETS


def run(problem):
    children = 0
    try:
        for _ in range(TARGETS["max_children"]):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            children += 1
    except OSError as exc:
        raise RuntimeError(f"process limit reached after {children} children: {exc}") from None
    raise RuntimeError(f"not contained: started {children} processes")

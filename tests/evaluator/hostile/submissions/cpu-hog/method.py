"""Takes more processor time than its share: busy-loops in several processes at once and reports
the processor time they got per second of wall time (1.0 is one whole CPU)."""
import os
import resource
import time

from hostile import TARGETS


def run(problem):
    seconds = TARGETS["seconds"]
    start = time.perf_counter()
    children = []
    for _ in range(TARGETS["processes"]):
        pid = os.fork()
        if pid == 0:
            end = time.perf_counter() + seconds
            while time.perf_counter() < end:
                pass
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    raise RuntimeError(f"cpu share {(usage.ru_utime + usage.ru_stime) / wall:.3f} over {wall:.1f} s")

"""Holds memory that no process's resident set shows, past the memory limit: memfd pages filled
with write() (never mapped), or bytes queued in socket buffers (socketpairs with the largest
SO_SNDBUF allowed). A count of resident memory misses both; a memory cgroup charges both."""
import os
import socket
import time

from hostile import TARGETS

CHUNK = b"\x3c" * (1 << 20)
_held = []  # kept open: closing would free the memory


def _memfd(target_mb):
    held = 0
    while held < target_mb:
        fd = os.memfd_create("ballast")
        _held.append(fd)
        for _ in range(4):  # 4 MB per memfd: under the file-size limit, which caps a memfd too
            os.write(fd, CHUNK)
        held += 4
    return held


def _sockets(target_mb):
    held = 0
    piece = CHUNK[:65536]
    while held < target_mb * 2**20:
        a, b = socket.socketpair()
        _held.append((a, b))
        for s in (a, b):
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 30)
            s.setblocking(False)
            while True:
                try:
                    held += s.send(piece)
                except BlockingIOError:
                    break
    return held // 2**20


def run(problem):
    fill = _memfd if TARGETS["variant"] == "memfd" else _sockets
    held = fill(TARGETS["target_mb"])
    time.sleep(1.0)  # long enough for any watch to look
    raise RuntimeError(f"not contained: held {held} MB outside resident memory ({TARGETS['variant']})")

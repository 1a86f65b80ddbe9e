"""The parent's end of the black-box oracle channel: a Unix socket in the job's scratch folder.

Every backend mounts the scratch folder into the worker, and a path-bound Unix socket crosses
network namespaces, so the same channel works with no network under bwrap and in a container.
The parent runs the model and counts the rows; the worker only ever receives outputs.

Wire format, both directions: a 4-byte big-endian header length, a JSON header, then the raw
array bytes the header describes (C order). Request header: {"shape", "dtype"}. Reply header:
{"shape", "dtype"} or {"error": message}. Anything malformed closes the connection: the worker's
client reconnects for its next call, and the parent never parses more than it has bounded.
"""
from __future__ import annotations

import json
import math
import os
import socket
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmark.oracle import MAX_ROWS_PER_CALL, Oracle

__all__ = ["OracleServer", "OracleUsage", "SOCKET_NAME"]

SOCKET_NAME = "oracle.sock"
_MAX_HEADER = 4096
_LENGTH = struct.Struct(">I")


@dataclass
class OracleUsage:
    budget: int
    calls: int = 0
    used: int = 0                       # forward passes served
    overrun: str | None = None          # why the budget was exceeded, if it was
    rejected: list[str] = field(default_factory=list)

    def as_details(self) -> dict[str, int]:
        return {"oracle_calls": self.calls, "oracle_forward_passes": self.used, "oracle_budget": self.budget}


class _Malformed(Exception):
    """The peer broke the protocol: drop the connection."""


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = conn.recv_into(view[got:], n - got)
        if k == 0:
            raise _Malformed("connection closed mid-message")
        got += k
    return bytes(buf)


def _send(conn: socket.socket, header: dict, payload: bytes | memoryview = b"") -> None:
    head = json.dumps(header).encode()
    conn.sendall(_LENGTH.pack(len(head)) + head)
    if payload:
        conn.sendall(payload)


class OracleServer:
    """Serves one oracle to one job's worker, in a background thread, for the job's lifetime."""

    def __init__(self, oracle: Oracle, scratch: Path):
        self.oracle = oracle
        self.path = scratch / SOCKET_NAME
        self.usage = OracleUsage(budget=int(oracle.budget))
        self._shape = tuple(int(s) for s in oracle.input_shape)
        self._dtype = np.dtype(oracle.input_dtype)
        self._row_bytes = math.prod(self._shape) * self._dtype.itemsize
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> "OracleServer":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        # The worker runs as another user (nobody) in bwrap and in containers.
        os.chmod(self.path, 0o777)
        sock.listen(4)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="phasebench-oracle", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            # One connection at a time, each served to its end: calls are counted in order.
            with conn:
                conn.settimeout(0.5)
                self._serve_connection(conn)

    def _serve_connection(self, conn: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                raw_len = conn.recv(_LENGTH.size, socket.MSG_WAITALL)
            except socket.timeout:
                continue
            except OSError:
                return
            if len(raw_len) < _LENGTH.size:
                return  # the worker closed the connection (or died)
            try:
                conn.settimeout(30)
                self._answer(conn, _LENGTH.unpack(raw_len)[0])
                conn.settimeout(0.5)
            except (_Malformed, OSError, ValueError) as exc:
                self.usage.rejected.append(f"{type(exc).__name__}: {exc}"[:200])
                return

    def _answer(self, conn: socket.socket, header_len: int) -> None:
        if header_len > _MAX_HEADER:
            raise _Malformed(f"header of {header_len} bytes")
        header = json.loads(_recv_exact(conn, header_len))
        if not isinstance(header, dict) or not isinstance(header.get("shape"), list):
            raise _Malformed("header without a shape")
        shape = tuple(header["shape"])
        if not all(isinstance(s, int) and s >= 0 for s in shape):
            raise _Malformed(f"bad shape {shape}")
        rows = shape[0] if shape else 0
        if header.get("dtype") != self._dtype.str or shape[1:] != self._shape or not 1 <= rows <= MAX_ROWS_PER_CALL:
            # The payload length is unknown to us now: say why, then drop the connection.
            _send(conn, {"error": f"expected an array of shape (1..{MAX_ROWS_PER_CALL}, "
                                  f"{', '.join(map(str, self._shape))}) and dtype {self._dtype.name}, "
                                  f"got shape {shape} and dtype {header.get('dtype')}"})
            raise _Malformed("bad request shape or dtype")
        x = np.frombuffer(_recv_exact(conn, rows * self._row_bytes), dtype=self._dtype).reshape(shape)
        with self._lock:
            usage = self.usage
            usage.calls += 1
            if usage.overrun is not None or usage.used + rows > usage.budget:
                if usage.overrun is None:
                    usage.overrun = (f"oracle budget of {usage.budget} forward passes exceeded at call "
                                     f"{usage.calls}: it asked for {rows} with {usage.budget - usage.used} left")
                _send(conn, {"error": f"oracle budget exhausted: {usage.overrun}"})
                return
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                _send(conn, {"error": "inputs must be finite"})
                return
            usage.used += rows
        try:
            y = np.ascontiguousarray(self.oracle.forward(x.copy()))
        except Exception as exc:
            # An input the model cannot take (a token out of range, say) fails the method's call,
            # not this thread: a dead server would leave the method waiting until its wall limit.
            self.usage.rejected.append(f"forward failed: {type(exc).__name__}: {exc}"[:200])
            _send(conn, {"error": f"the oracle failed on this input: {type(exc).__name__}: {exc}"[:500]})
            return
        _send(conn, {"shape": list(y.shape), "dtype": y.dtype.str}, memoryview(y.reshape(-1).view(np.uint8)))

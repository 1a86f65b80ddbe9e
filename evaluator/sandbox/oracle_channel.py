"""The parent's end of the black-box oracle channel: a Unix socket in the job's folder on the host.

Every backend mounts the socket into the worker, and a path-bound Unix socket crosses
network namespaces, so the same channel works with no network under bwrap and in a container.
The parent runs the model and counts the rows; the worker only ever receives outputs.

Wire format, both directions: a 4-byte big-endian header length, a JSON header, then the raw
array bytes the header describes (C order). Request header: {"shape", "dtype"}. Reply header:
{"shape", "dtype"} or {"error": message}. A request refused from its header (malformed, the wrong
shape or dtype, past the budget) gets the reason, then the connection closes with the payload unread:
the parent never takes in more than it has bounded, and the worker's client reconnects for its next
call.
"""
from __future__ import annotations

import json
import math
import os
import reprlib
import socket
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

import numpy as np

from benchmark.oracle import MAX_ROWS_PER_CALL, Oracle

__all__ = ["SOCKET_NAME", "OracleServer", "OracleUsage"]

SOCKET_NAME = "oracle.sock"
_MAX_HEADER = 4096
# MAX_ROWS_PER_CALL bounds a call's rows, not its bytes: an oracle with wide inputs would still let
# one call claim gigabytes of the parent. 512 MiB keeps rare-behavior's widest full call (65,536
# rows of 784 float64, 392 MiB) whole.
_MAX_PAYLOAD = 512 * 2**20
_LENGTH = struct.Struct(">I")
# Header values echoed back in a refusal are the peer's: bounded in depth and length, they cannot
# make the message (or its repr) the next thing to fail.
_echo = reprlib.Repr()
_echo.maxlevel, _echo.maxlist, _echo.maxstring, _echo.maxother = 2, 8, 40, 40


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


class _Refused(Exception):
    """A request refused from its header: the message goes to the client, then the connection closes."""


def _recv_into(conn: socket.socket, view: memoryview) -> None:
    got = 0
    while got < len(view):
        k = conn.recv_into(view[got:])
        if k == 0:
            raise _Malformed("connection closed mid-message")
        got += k


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    buf = bytearray(n)
    _recv_into(conn, memoryview(buf))
    return bytes(buf)


def _send(conn: socket.socket, header: dict, payload: bytes | memoryview = b"") -> None:
    head = json.dumps(header).encode()
    conn.sendall(_LENGTH.pack(len(head)) + head)
    if payload:
        conn.sendall(payload)


class OracleServer:
    """Serves one oracle to one job's worker, in a background thread, for the job's lifetime."""

    def __init__(self, oracle: Oracle, folder: Path):
        self.oracle = oracle
        self.path = folder / SOCKET_NAME
        self.usage = OracleUsage(budget=int(oracle.budget))
        self._shape = tuple(int(s) for s in oracle.input_shape)
        self._dtype = np.dtype(oracle.input_dtype)
        self._row_bytes = math.prod(self._shape) * self._dtype.itemsize
        self._max_rows = max(1, min(MAX_ROWS_PER_CALL, _MAX_PAYLOAD // max(1, self._row_bytes)))
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
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
        sock = self._sock
        assert sock is not None, "served only after __enter__ bound the socket"
        while not self._stop.is_set():
            try:
                conn, _ = sock.accept()
            except TimeoutError:
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
            except TimeoutError:
                continue
            except OSError:
                return
            if len(raw_len) < _LENGTH.size:
                return  # the worker closed the connection (or died)
            try:
                conn.settimeout(30)
                self._answer(conn, _LENGTH.unpack(raw_len)[0])
                conn.settimeout(0.5)
            except _Refused as exc:
                # Closing rather than draining: whatever follows the header, however long, is never
                # read, and the client still finds the reason queued ahead of the close.
                self.usage.rejected.append(str(exc)[:200])
                try:
                    _send(conn, {"error": str(exc)[:500]})
                except OSError:
                    pass  # the worker is gone: nobody to tell
                return
            except (_Malformed, OSError) as exc:
                self.usage.rejected.append(f"{type(exc).__name__}: {exc}"[:200])
                return
            except Exception as exc:  # noqa: BLE001
                # A request this code did not foresee fails its call, not the thread: a dead server
                # would leave the method waiting until its wall limit.
                self.usage.rejected.append(f"internal error: {type(exc).__name__}: {exc}"[:200])
                return

    def _parse_header(self, raw: bytes) -> tuple[tuple[int, ...], int]:
        try:
            # Decoded first: json.loads would take bytes as UTF-16 or -32 on a guess. Brackets nested
            # past the interpreter's recursion limit raise RecursionError, not a JSON error.
            header = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise _Refused(f"bad oracle request: header is not UTF-8 JSON ({type(exc).__name__}: {exc})") from None
        if not isinstance(header, dict):
            raise _Refused("bad oracle request: header must be a JSON object with a shape and a dtype, "
                           f"got {type(header).__name__}")
        shape = header.get("shape")
        # bool is an int to isinstance; true is not a row count.
        if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape):
            raise _Refused("bad oracle request: shape must be a list of non-negative integers, "
                           f"got {_echo.repr(shape)}")
        shape = tuple(shape)
        rows = shape[0] if shape else 0
        if header.get("dtype") != self._dtype.str or shape[1:] != self._shape or not 1 <= rows <= self._max_rows:
            raise _Refused(f"bad oracle request: expected an array of shape (1..{self._max_rows}, "
                           f"{', '.join(map(str, self._shape))}) and dtype {self._dtype.name}, "
                           f"got shape {_echo.repr(shape)} and dtype {_echo.repr(header.get('dtype'))}")
        return shape, rows

    def _answer(self, conn: socket.socket, header_len: int) -> None:
        if header_len > _MAX_HEADER:
            raise _Refused(f"bad oracle request: request header of {header_len} bytes (at most {_MAX_HEADER})")
        shape, rows = self._parse_header(_recv_exact(conn, header_len))
        usage = self.usage
        # Refused from the header's row count, before a byte of the payload is taken in: a call
        # past the budget costs the parent nothing. One connection is served at a time, so nothing
        # can spend the budget between this check and the count below.
        with self._lock:
            if usage.overrun is not None or usage.used + rows > usage.budget:
                usage.calls += 1
                if usage.overrun is None:
                    usage.overrun = (f"oracle budget of {usage.budget} forward passes exceeded at call "
                                     f"{usage.calls}: it asked for {rows} with {usage.budget - usage.used} left")
                raise _Refused(f"oracle budget exhausted: {usage.overrun}")
        # Received straight into the array the model gets: one copy of the payload, not three.
        x = np.empty(shape, dtype=self._dtype)
        _recv_into(conn, x.reshape(-1).view(np.uint8).data)
        with self._lock:
            usage.calls += 1
            if x.dtype.kind == "f" and not np.isfinite(x).all():
                _send(conn, {"error": "inputs must be finite"})
                return
            usage.used += rows
        try:
            y = np.ascontiguousarray(self.oracle.forward(x))
        except Exception as exc:  # noqa: BLE001
            # An input the model cannot take (a token out of range, say) fails the method's call,
            # not this thread: a dead server would leave the method waiting until its wall limit.
            self.usage.rejected.append(f"forward failed: {type(exc).__name__}: {exc}"[:200])
            _send(conn, {"error": f"the oracle failed on this input: {type(exc).__name__}: {exc}"[:500]})
            return
        _send(conn, {"shape": list(y.shape), "dtype": y.dtype.str}, y.reshape(-1).view(np.uint8).data)

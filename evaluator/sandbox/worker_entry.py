"""The worker: runs one method on one instance. Standalone on purpose.

This file is executed inside the sandbox, where the phasebench packages (and with them the data,
the answers and the database settings) are not importable; it needs only the standard library,
numpy and safetensors. It reads a job file, calls the submission's entry point with the public
problem, and writes the answer (or the error) into the two files the parent created for them (the
job file names them) for the parent to check.
"""
import errno
import importlib
import json
import os
import sys
import time
import traceback


def _to_arrays(result, answer_fields):
    import numpy as np

    if isinstance(result, dict):
        items = result.items()
    elif len(answer_fields) == 1:
        items = [(answer_fields[0], result)]
    else:
        raise TypeError(f"expected a dict with the fields {answer_fields}, got {type(result).__name__}")
    out = {}
    for key, value in items:
        if not isinstance(key, str):
            raise TypeError(f"answer keys must be strings, got {key!r}")
        if hasattr(value, "detach"):  # a torch tensor: move to host memory
            value = value.detach().cpu().numpy()
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"answer field {key!r}: expected numbers, got dtype {arr.dtype}")
        out[key] = np.ascontiguousarray(arr)
    return out


class OracleClient:
    """The method's handle to a model it may query but not see (the parent runs it and counts).

    ``oracle(x)`` takes a batch of shape (rows, *input_shape) (or one input) and returns the model's
    outputs; past ``budget`` forward passes it raises, and the instance fails whatever follows.
    """

    def __init__(self, socket_path, budget, input_shape, input_dtype):
        self._path = socket_path
        self._sock = None
        self.budget = budget
        self.used = 0
        self.input_shape = tuple(input_shape)
        self.input_dtype = input_dtype

    @property
    def remaining(self):
        return self.budget - self.used

    def _connect(self):
        import socket

        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock.connect(self._path)
        return self._sock

    def _drop(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _recv(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        assert self._sock is not None, "received only on a connected socket"
        while got < n:
            try:
                k = self._sock.recv_into(view[got:], n - got)
            except ConnectionResetError:
                k = 0
            if k == 0:
                self._drop()
                raise RuntimeError("the oracle closed the connection")
            got += k
        return buf

    def __call__(self, x):
        import numpy as np

        if hasattr(x, "detach"):
            x = x.detach().cpu().numpy()
        x = np.ascontiguousarray(np.asarray(x, dtype=self.input_dtype))
        if x.shape == self.input_shape:
            x = x[None]
        sock = self._connect()
        head = json.dumps({"shape": list(x.shape), "dtype": x.dtype.str}).encode()
        try:
            sock.sendall(len(head).to_bytes(4, "big") + head)
            sock.sendall(x.reshape(-1).view(np.uint8).data)
        except (BrokenPipeError, ConnectionResetError):
            # The oracle may refuse a request from its header alone and close before the payload
            # is sent; the refusal it wrote first is still queued for us to read.
            pass
        reply = json.loads(self._recv(int.from_bytes(self._recv(4), "big")))
        if "error" in reply:
            # Some refusals close the connection and some do not; a fresh one serves the next call.
            self._drop()
            raise RuntimeError(reply["error"])
        dtype = np.dtype(reply["dtype"])
        count = 1
        for s in reply["shape"]:
            count *= s
        out = np.frombuffer(self._recv(count * dtype.itemsize), dtype=dtype).reshape(reply["shape"])
        self.used += x.shape[0]
        return out


def _source_only_imports(folder):
    """Import the submission's own modules from their .py source only. CPython trusts a cached .pyc in
    __pycache__ (an unchecked-hash one without even reading the source) and imports a sourceless .pyc;
    neither is part of the code hash, so neither may run. Other paths keep their caches (fast imports)."""
    from importlib import machinery

    class SourceOnlyLoader(machinery.SourceFileLoader):
        def get_code(self, fullname):
            path = self.get_filename(fullname)
            return self.source_to_code(self.get_data(path), path)

    root = os.path.realpath(folder)
    loaders = [(machinery.ExtensionFileLoader, machinery.EXTENSION_SUFFIXES),
               (SourceOnlyLoader, machinery.SOURCE_SUFFIXES)]

    def hook(path):
        real = os.path.realpath(path or ".")
        if real == root or real.startswith(root + os.sep):
            return machinery.FileFinder(path, *loaders)
        raise ImportError("not the submission's folder")

    sys.path_hooks.insert(0, hook)
    sys.path_importer_cache.clear()


def _scratch_full(scratch):
    """"bytes" or "files" when the scratch file system has no room left, else None."""
    try:
        st = os.statvfs(scratch)
    except OSError:
        return None
    if st.f_files and st.f_favail == 0:
        return "files"
    if st.f_bavail * st.f_frsize < 2**20:
        return "bytes"
    return None


def _error_kind(exc, scratch):
    # Python ignores SIGXFSZ, so a write past the file-size limit surfaces as EFBIG here.
    if isinstance(exc, OSError) and exc.errno == errno.EFBIG:
        return "OutputLimit", None
    # A full scratch is its size limit (the message says which), like the file-size limit above;
    # other full folders (/tmp) stay the method's own error.
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        full = _scratch_full(scratch)
        if full:
            return "ScratchLimit", full
    return type(exc).__name__, None


def main(job_path):
    with open(job_path) as f:
        job = json.load(f)
    scratch = job["scratch"]
    # Only the backend without a sandbox (``none``, trusted code) reads this to learn that the
    # worker started; the isolated backends learn it from the sandbox, which a method cannot fake.
    open(os.path.join(scratch, "started"), "w").close()
    try:
        sys.path.insert(0, job["submission"])
        _source_only_imports(job["submission"])
        from safetensors.numpy import load_file, save

        problem = dict(job["problem"])
        problem.update(load_file(job["inputs"]))
        if job.get("oracle"):
            spec = job["oracle"]
            problem["oracle"] = OracleClient(spec["socket"], spec["budget"], spec["input_shape"], spec["input_dtype"])
        module_name, func_name = job["entry"].split(":")
        fn = getattr(importlib.import_module(module_name), func_name)
        start = time.perf_counter()
        result = fn(problem)
        elapsed = time.perf_counter() - start
        answer = _to_arrays(result, job["answer_fields"])
        data = save(answer, metadata={"method_runtime_s": repr(elapsed)})
        # Written in place (no temporary file and rename): the parent created this file, mounted on
        # its own, and reads it only once the worker is gone.
        with open(job["answer"], "wb") as f:
            f.write(data)
    except BaseException as exc:  # noqa: BLE001 - report everything, KeyboardInterrupt and SystemExit included
        tb = traceback.extract_tb(exc.__traceback__)
        where = f" ({os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
        message = " ".join(str(exc).split())[:400]
        kind, detail = _error_kind(exc, scratch)
        if detail:
            message = detail
        with open(job["error"], "w") as f:
            json.dump({"type": kind, "message": message, "where": where}, f)
        traceback.print_exc()
        sys.stdout.flush()
        os._exit(3)


if __name__ == "__main__":
    main(sys.argv[1])

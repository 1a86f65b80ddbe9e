"""The black-box oracle channel: the parent runs the model and counts; the worker only queries."""
from __future__ import annotations

import json
import re
import socket
import struct
from textwrap import dedent

import numpy as np
import pytest

from benchmark.dataset import SplitWriter, open_split
from benchmark.metadata import (
    AnswerField,
    DatasetRef,
    FieldSpec,
    Metric,
    ResourceLimits,
    TaskMetadata,
)
from benchmark.oracle import Oracle
from benchmark.task import Task
from evaluator.runner import evaluate_submission
from evaluator.sandbox import WorkerJob, get_sandbox
from evaluator.sandbox.oracle_channel import OracleServer
from evaluator.sandbox.worker_entry import OracleClient
from evaluator.store import InstanceStatus
from evaluator.submission import load_submission
from tests.builders import SANDBOX_PARAMS, registered, requires_bwrap, write_submission

LIMITS = ResourceLimits(wall_time_s=30, memory_mb=600, output_mb=5)


class LinearOracle(Oracle):
    """y = x @ w: a secret the method may only query."""

    def __init__(self, w: np.ndarray, budget: int):
        self.w = w
        self.budget = budget
        self.input_shape = (w.shape[0],)
        self.input_dtype = "float32"
        self.calls = 0

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.calls += 1
        return x @ self.w


def _server(tmp_path, budget=10, dim=3):
    w = np.arange(dim * 2, dtype=np.float32).reshape(dim, 2)
    return OracleServer(LinearOracle(w, budget), tmp_path), w


def test_client_gets_the_outputs_and_the_parent_counts(tmp_path):
    server, w = _server(tmp_path)
    with server:
        client = OracleClient(str(server.path), 10, (3,), "float32")
        x = np.ones((4, 3))
        assert np.array_equal(client(x), x.astype(np.float32) @ w)
        assert np.array_equal(client(np.ones(3)), (np.ones((1, 3), np.float32) @ w))  # one input
        assert client.used == 5 and client.remaining == 5
    assert (server.usage.calls, server.usage.used, server.usage.overrun) == (2, 5, None)


def test_the_budget_is_exact(tmp_path):
    server, _ = _server(tmp_path, budget=8)
    with server:
        client = OracleClient(str(server.path), 8, (3,), "float32")
        client(np.zeros((8, 3)))                     # exactly the budget: served
        with pytest.raises(RuntimeError, match="budget exhausted"):
            client(np.zeros((1, 3)))                 # forward pass 9: refused
        with pytest.raises(RuntimeError, match="budget exhausted"):
            client(np.zeros((1, 3)))                 # and every call after it
    assert server.usage.used == 8
    assert server.usage.overrun == ("oracle budget of 8 forward passes exceeded at call 2: "
                                    "it asked for 1 with 0 left")
    assert server.oracle.calls == 1                  # the model never ran past the budget


# 2 rows fit the socket buffer before the server answers (sometimes; it raced in CI); 60,000 rows
# (960 kB) cannot, so the server closes while the payload is still being sent: the refusal must
# still reach the method, not a BrokenPipeError.
@pytest.mark.parametrize("rows", [2, 60_000])
def test_wrong_shape_is_refused_without_counting(tmp_path, rows):
    server, _ = _server(tmp_path)
    with server:
        client = OracleClient(str(server.path), 10, (3,), "float32")
        client.input_shape = (4,)                    # a client that lies about the shape
        for _ in range(3):                           # refused every time, never a broken pipe
            with pytest.raises(RuntimeError, match=r"expected an array of shape \(1..65536, 3\)"):
                client(np.zeros((rows, 4)))
        client.input_shape = (3,)
        assert client(np.zeros((2, 3))).shape == (2, 2)   # the client reconnected by itself
    assert server.usage.used == 2 and server.usage.calls == 1


def test_a_model_that_fails_on_an_input_fails_the_call_not_the_server(tmp_path):
    class Picky(LinearOracle):
        def forward(self, x):
            if (x < 0).any():
                raise IndexError("token -1 out of range")
            return super().forward(x)

    server = OracleServer(Picky(np.ones((3, 2), np.float32), budget=10), tmp_path)
    with server:
        client = OracleClient(str(server.path), 10, (3,), "float32")
        with pytest.raises(RuntimeError, match="the oracle failed on this input: IndexError: token -1 out of range"):
            client(-np.ones((1, 3)))
        assert client(np.ones((1, 3))).tolist() == [[3.0, 3.0]]   # still served
    assert any("IndexError" in r for r in server.usage.rejected)


def _raw(server):
    """A peer that writes the wire format by hand; the timeout turns a server that waits, or died, into a failure."""
    raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    raw.settimeout(5)
    raw.connect(str(server.path))
    return raw


def _recv_all(raw, n):
    buf = b""
    while len(buf) < n:
        chunk = raw.recv(n - len(buf))
        assert chunk, f"the server closed the connection after {len(buf)} of {n} bytes"
        buf += chunk
    return buf


def _reply(raw):
    return json.loads(_recv_all(raw, struct.unpack(">I", _recv_all(raw, 4))[0]))


def _framed(head: bytes) -> bytes:
    return struct.pack(">I", len(head)) + head


def _client(server, budget=10):
    """The worker's client, given up after 5 s rather than left waiting on a server thread that died."""
    client = OracleClient(str(server.path), budget, (3,), "float32")
    client._connect().settimeout(5)
    return client


def test_an_over_budget_request_is_refused_from_its_header_alone(tmp_path):
    # The header says 65,536 rows against a budget of 10: the payload is never sent, so a server
    # that reads it before refusing waits here instead of answering.
    server, _ = _server(tmp_path, budget=10)
    with server:
        raw = _raw(server)
        raw.sendall(_framed(json.dumps({"shape": [65_536, 3], "dtype": "<f4"}).encode()))
        assert _reply(raw)["error"].startswith("oracle budget exhausted")
        assert raw.recv(1) == b""                    # and closed, with nothing drained
        raw.close()
    assert (server.usage.calls, server.usage.used, server.oracle.calls) == (1, 0, 0)
    assert server.usage.overrun == ("oracle budget of 10 forward passes exceeded at call 1: "
                                    "it asked for 65536 with 10 left")


# Refused from the header, the payload is left unread and the connection closed under the client,
# mid-send for 65,536 rows: it must still read the refusal, every time.
@pytest.mark.parametrize("rows", [2, 65_536])
def test_an_over_budget_call_gets_the_refusal_not_a_broken_pipe(tmp_path, rows):
    server, _ = _server(tmp_path, budget=1)
    with server:
        client = OracleClient(str(server.path), 1, (3,), "float32")
        for _ in range(3):
            with pytest.raises(RuntimeError, match="oracle budget exhausted: .* it asked for"):
                client(np.zeros((rows, 3)))
    assert (server.usage.calls, server.usage.used, server.oracle.calls) == (3, 0, 0)


@pytest.mark.parametrize("request_bytes, reason", [
    (struct.pack(">I", 10**9), r"request header of 1000000000 bytes"),    # over the bound: not read
    (_framed(b"[" * 4000), r"not UTF-8 JSON \(RecursionError"),           # deeper than the parser goes
    (_framed(b'{"shape": [1, 3], "dtype": "\xff"}'), r"not UTF-8 JSON \(UnicodeDecodeError"),
    (_framed(b"\xff\xfe{\x00}\x00"), r"not UTF-8 JSON \(UnicodeDecodeError"),  # UTF-16 is not taken either
    (_framed(b'{"shape": [1, 3'), r"not UTF-8 JSON \(JSONDecodeError"),
    (_framed(b"[1, 3]"), r"header must be a JSON object .*, got list"),
    (_framed(b'{"shape": [1.5, 3], "dtype": "<f4"}'), r"shape must be a list of non-negative integers"),
    (_framed(b'{"shape": [true, 3], "dtype": "<f4"}'), r"shape must be a list of non-negative integers"),
], ids=["over-long", "deeply-nested", "not-utf8", "utf16", "truncated", "not-an-object", "float-shape", "bool-shape"])
def test_a_malformed_header_fails_the_call_with_a_reason_not_the_server(tmp_path, request_bytes, reason):
    server, _ = _server(tmp_path)
    with server:
        raw = _raw(server)
        raw.sendall(request_bytes)
        message = _reply(raw)["error"]
        assert message.startswith("bad oracle request: ") and re.search(reason, message), message
        assert raw.recv(1) == b""                    # the rest of the stream cannot be trusted: closed
        raw.close()
        assert _client(server)(np.zeros((1, 3))).shape == (1, 2)   # the next call is served
    assert len(server.usage.rejected) == 1 and re.search(reason, server.usage.rejected[0])
    assert (server.usage.calls, server.usage.used) == (1, 1)


QUERY_METHOD = """
import numpy as np
def run(problem):
    oracle = problem["oracle"]
    assert oracle.budget == {budget} and oracle.input_shape == (3,)
    total = np.zeros(2, dtype=np.float32)
    for _ in range({calls}):
        try:
            total += oracle(np.ones((4, 3))).sum(axis=0)
        except RuntimeError:
            pass   # a method that swallows the refusal still fails the instance
    return {{"atoms": total}}
"""


def _job(tmp_path, tiny_split, code, oracle, name="oracle-user"):
    folder = write_submission(tmp_path, name=name, code=dedent(code))
    record = tiny_split.instances[0]
    return WorkerJob(submission_dir=folder, entry="method:run",
                     problem={"instance_id": record.id, "seed": 0, "device": "cpu"},
                     inputs_file=tiny_split.inputs_path(record.id), answer_fields=["atoms"], limits=LIMITS,
                     oracle=oracle)


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_worker_queries_through_every_sandbox(tmp_path, tiny_split, sandbox):
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    oracle = LinearOracle(w, budget=12)
    result = get_sandbox(sandbox).run(_job(tmp_path, tiny_split, QUERY_METHOD.format(budget=12, calls=3), oracle))
    assert result.status == "ok", (result.error, result.log_tail)
    assert np.allclose(result.answer["atoms"], 3 * 4 * w.sum(axis=0))
    assert result.extra["oracle"] == {"oracle_calls": 3, "oracle_forward_passes": 12, "oracle_budget": 12}


@pytest.mark.parametrize("sandbox", SANDBOX_PARAMS)
def test_one_pass_over_the_budget_fails_the_instance(tmp_path, tiny_split, sandbox):
    oracle = LinearOracle(np.ones((3, 2), np.float32), budget=12)
    result = get_sandbox(sandbox).run(_job(tmp_path, tiny_split, QUERY_METHOD.format(budget=12, calls=4), oracle))
    assert result.status == "budget" and result.answer is None
    assert result.error == "oracle budget of 12 forward passes exceeded at call 4: it asked for 4 with 0 left"


# --- through the runner: a task whose model lives only in the answers --------------------------

class SecretVectorTask(Task):
    """Find w from y = x @ w with a few queries; w is stored with the answers, never in the inputs."""

    metadata = TaskMetadata(
        name="secret-vector", version=1, description="recover a secret linear map through a black-box oracle",
        input_schema={"dim": FieldSpec(kind="int", description="input dimension", public_because="the question")},
        answer_schema={"w": AnswerField(kind="array", description="the recovered map", shape=["dim"])},
        metrics=[Metric(name="error", description="max abs error", higher_is_better=False, best=0.0, worst=1.0)],
        headline="error", groups=["g"], group_public=True, group_because="one group", limits=LIMITS,
        dataset=DatasetRef(repo_id="x/y", config="secret-vector", revision="0" * 40))

    def instance_specs(self, split, secret=None):
        return []

    def generate(self, spec):
        raise NotImplementedError

    def oracle(self, record, truth):
        return LinearOracle(truth["w"].reshape(-1, 1), budget=record.public["budget"])

    def score(self, answer, truth, record):
        return {"error": float(min(1.0, np.max(np.abs(answer["w"].ravel() - truth["w"]))))}

    def instance_details(self, answer, truth, record):
        return {"dim": record.public["dim"]}


@pytest.fixture
def secret_split(tmp_path):
    writer = SplitWriter(tmp_path / "data", "secret-vector", "dev", tmp_path / "data")
    rng = np.random.default_rng(0)
    for i, budget in enumerate((3, 2)):   # instance 1 cannot afford the 3 unit queries
        writer.add(f"sv-{i}", "g", {"dim": 3, "budget": budget}, {"unused": np.zeros(1, np.float32)},
                   {"w": rng.standard_normal(3).astype(np.float32)}, {})
    writer.close()
    return open_split("secret-vector", "dev", tmp_path / "data", tmp_path / "data")


UNIT_QUERIES = """
import numpy as np
def run(problem):
    assert set(problem) == {"dim", "budget", "instance_id", "group", "seed", "device", "unused", "oracle"}
    eye = np.eye(problem["dim"], dtype=np.float32)
    return {"w": np.concatenate([problem["oracle"](row[None]).ravel() for row in eye])}
"""


@requires_bwrap
def test_runner_serves_the_oracle_and_fails_only_the_overrun(tmp_path, secret_split, sqlite_store):
    task = SecretVectorTask()
    with registered(task):
        sub = load_submission(write_submission(tmp_path, name="unit-queries", code=UNIT_QUERIES,
                                               tasks={"secret-vector": "method:run"}))
        out = evaluate_submission(sub, task, secret_split, get_sandbox("bwrap"), sqlite_store)
    rows = {r.instance_id: r for r in sqlite_store.evaluation(out.evaluation_id, with_instances=True).instances}
    assert rows["sv-0"].status == InstanceStatus.OK and rows["sv-0"].metrics == {"error": 0.0}
    assert rows["sv-0"].details == {"dim": 3, "oracle_calls": 3, "oracle_forward_passes": 3, "oracle_budget": 3}
    assert rows["sv-1"].status == InstanceStatus.BUDGET and rows["sv-1"].metrics == {"error": 1.0}
    assert rows["sv-1"].error.startswith("oracle budget of 2 forward passes exceeded at call 3")
    assert json.dumps(rows["sv-1"].details)  # stored as plain JSON

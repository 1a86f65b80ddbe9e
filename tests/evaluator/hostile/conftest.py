"""The arena every hostile submission is thrown into: a split whose answers sit in a private folder,
secrets (canaries) planted where an attacker would look, a results database holding another
submission's evaluation, and another evaluation's scratch folder "running" beside it."""
from __future__ import annotations

import json
import shutil
import site
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import yaml
from sqlalchemy import text

from benchmark.dataset import SplitData
from benchmark.metadata import ResourceLimits
from benchmark.task import get_task
from evaluator.runner import Outcome, evaluate_submission
from evaluator.sandbox import Sandbox, WorkerJob, WorkerResult, get_sandbox
from evaluator.store import ResultsStore, make_engine, upgrade
from evaluator.submission import Submission, code_sha256, load_submission
from tests.builders import REPO, build_tiny_split, write_submission

FIXTURES = Path(__file__).resolve().parent / "submissions"
ENGINE_SOCKET = "/tmp/phasebench-podman.sock"
ARENA_LIMITS = ResourceLimits(wall_time_s=20, memory_mb=400, output_mb=5)


class _Instant(Sandbox):
    """Answers in-process, for the bystander's evaluation: no worker, nothing to isolate."""
    name = "instant"
    isolated = False

    def run(self, job: WorkerJob) -> WorkerResult:
        n, d = job.problem["n_features"], job.problem["dim"]
        return WorkerResult("ok", answer={"atoms": np.eye(n, d)}, wall_s=0.01)


class Recording(Sandbox):
    """Runs the real sandbox and keeps each worker's result, log tail included, for the leak check."""

    def __init__(self, inner: Sandbox):
        self.inner = inner
        self.name = inner.name
        self.isolated = inner.isolated
        self.results: list[WorkerResult] = []

    def provenance(self) -> dict[str, str]:
        return self.inner.provenance()

    def run(self, job: WorkerJob) -> WorkerResult:
        result = self.inner.run(job)
        self.results.append(result)
        return result


@dataclass
class Attack:
    outcome: Outcome
    results: list[WorkerResult]
    statuses: list[str]
    errors: list[str]


@dataclass
class Arena:
    root: Path
    split: SplitData
    store: ResultsStore
    db_file: Path
    victim_dir: Path
    victim_eval: int
    other_scratch: Path
    marker_name: str
    canaries: list[str]
    answer_markers: list[str]
    targets: dict = field(default_factory=dict)

    def snapshot(self) -> dict:
        """Everything the attacks must leave as it was."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(text("SELECT * FROM instance_results WHERE evaluation_id = :e ORDER BY id"),
                                {"e": self.victim_eval}).all()
            ev = conn.execute(text("SELECT * FROM evaluations WHERE id = :e"), {"e": self.victim_eval}).one()
        return {"rows": [tuple(r) for r in rows], "evaluation": tuple(ev), "victim_code": code_sha256(self.victim_dir),
                "other_scratch": {p.name: p.read_bytes() for p in sorted(self.other_scratch.iterdir())}}

    def marker_places(self) -> list[Path]:
        return [REPO / self.marker_name, REPO / "benchmark" / (self.marker_name + ".py"),
                Path(site.getsitepackages()[0]) / (self.marker_name + ".pth"), Path("/usr/lib") / self.marker_name,
                self.root / self.marker_name]

    def submission(self, attack: str, **targets) -> Submission:
        """A copy of the fixture folder ``attack`` with the shared helper and its targets."""
        folder = self.root / "subs" / attack
        shutil.copytree(FIXTURES / attack, folder, symlinks=True)
        shutil.copy(FIXTURES / "_common" / "hostile.py", folder / "hostile.py")
        (folder / "targets.json").write_text(json.dumps({**self.targets, **targets}))
        spec = {"name": attack, "authors": ["Hostile"], "description": "tries to break out", "license": "MIT",
                "url": "https://example.org", "tasks": {"planted-features": "method:run"}}
        (folder / "submission.yaml").write_text(yaml.safe_dump(spec))
        return folder

    def evaluate(self, folder: Path | Submission, sandbox: str | Sandbox, limits: ResourceLimits = ARENA_LIMITS
                 ) -> Attack:
        sub = folder if isinstance(folder, Submission) else load_submission(folder)
        recorder = Recording(get_sandbox(sandbox) if isinstance(sandbox, str) else sandbox)
        outcome = evaluate_submission(sub, get_task("planted-features"), self.split, recorder, self.store,
                                      limits=limits, force=True)
        ev = self.store.evaluation(outcome.evaluation_id, with_instances=True)
        return Attack(outcome, recorder.results, [i.status for i in ev.instances], [i.error or "" for i in ev.instances])

    def assert_contained(self, attack: Attack, before: dict) -> None:
        """The checks every attack must pass, whatever its own outcome."""
        ev = self.store.evaluation(attack.outcome.evaluation_id)
        assert ev.status in ("complete", "partial") and ev.n_instances == len(self.split.instances), ev.status
        assert ev.headline is not None and ev.headline < 1.0, "the attack scored as well as the answers"
        seen = "\n".join(attack.errors + [r.log_tail for r in attack.results] + [r.error or "" for r in attack.results])
        for secret in self.canaries + self.answer_markers:
            assert secret not in seen, f"secret {secret[:12]}... leaked into the output"
        assert self.snapshot() == before, "another submission's results, code or scratch changed"
        planted = [p for p in self.marker_places() if p.exists()]
        for p in planted:
            p.unlink()
        assert not planted, f"the attack wrote {planted}"
        assert sys.modules["benchmark"].__file__.startswith(str(REPO)), "the evaluator's benchmark was replaced"


@pytest.fixture
def arena(tmp_path, monkeypatch):
    root = tmp_path
    private = root / "private"
    split = build_tiny_split(root / "data", n_instances=2, split="test", answers_root=private)
    canaries = [f"CANARY-{kind}-{uuid.uuid4().hex}" for kind in ("env", "private", "cache", "secret")]
    monkeypatch.setenv("PHASEBENCH_CANARY_TOKEN", canaries[0])
    monkeypatch.setenv("HF_TOKEN", canaries[0])
    monkeypatch.setenv("PHASEBENCH_PRIVATE_DIR", str(private))
    (private / "CANARY.txt").write_text(canaries[1])
    cache = root / "cache"
    (cache / "datasets").mkdir(parents=True)
    (cache / "datasets" / "CANARY.txt").write_text(canaries[2])
    monkeypatch.setenv("PHASEBENCH_CACHE", str(cache))
    secret_json = private / "secret.json"
    secret_json.write_text(json.dumps({"type": "Secret", "message": canaries[3]}))
    answers = sorted((private / "planted-features" / "test" / "answers").glob("*.safetensors"))
    # The tail of an answer file is its array data: random floats, unique to the file.
    answer_markers = [p.read_bytes()[-24:].hex() for p in answers]

    db_file = root / "results.sqlite"
    engine = make_engine(f"sqlite:///{db_file}")
    upgrade(engine)
    store = ResultsStore(engine)
    victim_dir = write_submission(root / "subs", "victim")
    victim = evaluate_submission(load_submission(victim_dir), get_task("planted-features"), split, _Instant(), store)

    other_scratch = Path(tempfile.mkdtemp(prefix="phasebench-job-victim-")) / "scratch"
    other_scratch.mkdir()
    (other_scratch / "answer.safetensors").write_bytes(b"the other evaluation's answer")
    marker_name = f"hostile-marker-{uuid.uuid4().hex[:12]}"
    arena = Arena(root, split, store, db_file, victim_dir, victim.evaluation_id, other_scratch, marker_name,
                  canaries, answer_markers)
    arena.targets = {
        "answer_file": str(answers[0]), "answers_dir": str(answers[0].parent), "private_dir": str(private),
        "cache_dir": str(cache), "repo_data": str(REPO / "benchmark" / "data"), "db_file": str(db_file),
        "repo": str(REPO), "victim_dir": str(victim_dir), "other_scratch": str(other_scratch),
        "host_tmp": str(root), "marker_name": marker_name, "engine_socket": ENGINE_SOCKET,
        "secret_json": str(secret_json), "canaries": canaries}
    yield arena
    shutil.rmtree(other_scratch.parent, ignore_errors=True)
    engine.dispose()

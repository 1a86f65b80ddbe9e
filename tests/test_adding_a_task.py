"""The README's "Adding a task", followed to the letter from a temporary folder: one task package
(``task.py`` and its card notes) and one registry line (the package's ``__init__`` importing it), then
the commands a task author runs, end to end through the evaluator and the website, with no edit in
evaluator/ or leaderboard/."""
from __future__ import annotations

import re
import sys
from pathlib import Path
from textwrap import dedent

import pytest
from click.testing import CliRunner

from benchmark.task import TASKS, all_tasks
from evaluator.cli import main
from evaluator.sandbox import BubblewrapSandbox
from tests.builders import write_submission

NAME = "toy-sum"
SANDBOX = "bwrap" if BubblewrapSandbox().available()[0] else "none"

TASK_PY = '''
import numpy as np

from benchmark.answers import scalar
from benchmark.metadata import AnswerField, DatasetRef, FieldSpec, Metric, ResourceLimits, TaskMetadata
from benchmark.task import GeneratedInstance, Task, register_task


@register_task
class ToySum(Task):
    metadata = TaskMetadata(
        name="toy-sum", version=1, description="Sum a vector of numbers.",
        input_schema={{
            "n": FieldSpec(kind="int", description="length of x", public_because="the shape of x"),
            "x": FieldSpec(kind="array", dtype="float64", shape=["n"], description="the numbers",
                           public_because="the question itself"),
        }},
        answer_schema={{"total": AnswerField(kind="scalar", description="the sum of x")}},
        metrics=[Metric(name="abs_error", description="|total - sum(x)|, capped at 10", higher_is_better=False,
                        best=0.0, worst=10.0)],
        headline="abs_error", groups=["short", "long"], group_public=True,
        group_because="the length, which n gives anyway",
        limits=ResourceLimits(wall_time_s=60, memory_mb=2000, output_mb=1),
        dataset=DatasetRef(repo_id="example/toy", config="toy-sum", revision="{revision}"))

    def draw_configs(self, split, rng):
        return [("short", {{"n": 3}}), ("long", {{"n": 50}}), ("long", {{"n": 80}})]

    def generate(self, spec):
        x = np.random.default_rng(spec.seed).standard_normal(spec.params["n"])
        return GeneratedInstance({{"n": spec.params["n"]}}, {{"x": x}}, {{"total": np.array(x.sum())}})

    def score(self, answer, truth, record):
        return {{"abs_error": min(10.0, abs(scalar(answer["total"]) - scalar(truth["total"])))}}
'''

NOTES = "How the toy draws: three instances, standard normal numbers.\n"


def _write_package(root: Path, revision: str) -> None:
    pkg = root / "toy_tasks"
    (pkg / "toy_sum" / "card").mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text("from .toy_sum import task  # noqa: F401  (the registry line)\n")
    (pkg / "toy_sum" / "__init__.py").write_text("")
    (pkg / "toy_sum" / "task.py").write_text(TASK_PY.format(revision=revision))
    (pkg / "toy_sum" / "card" / f"{NAME}.md").write_text(NOTES)


def _import_package(root: Path) -> None:
    for mod in [m for m in sys.modules if m == "toy_tasks" or m.startswith("toy_tasks.")]:
        del sys.modules[mod]
    if NAME in TASKS:
        TASKS.unregister(NAME)
    __import__("toy_tasks")


@pytest.fixture
def toy_root(tmp_path, monkeypatch):
    list(all_tasks())  # the built-in tasks first
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    yield tmp_path / "pkgs"
    if NAME in TASKS:
        TASKS.unregister(NAME)
    for mod in [m for m in sys.modules if m == "toy_tasks" or m.startswith("toy_tasks.")]:
        del sys.modules[mod]


def _run(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_a_task_added_in_one_folder_runs_end_to_end(toy_root, tmp_path):
    data, db = tmp_path / "data", f"sqlite:///{tmp_path / 'results.sqlite'}"
    # 1. The task package with a placeholder pin: the first build says which revision to pin.
    _write_package(toy_root, "0" * 40)
    _import_package(toy_root)
    code, out = _run("data", "build", "--task", NAME, "--data-dir", str(data))
    assert code == 1 and "differs from the pinned" in out, out
    revision = re.search(rf"{NAME}/dev: built in .* \((sha256:[0-9a-f]{{64}})\)", out)
    assert revision, out
    # 2. Pinned: the same build now verifies.
    _write_package(toy_root, revision.group(1))
    _import_package(toy_root)
    code, out = _run("data", "build", "--task", NAME, "--data-dir", str(data))
    assert code == 0 and f"{NAME}/dev: verified" in out, out
    card = (data / "README.md").read_text(encoding="utf-8")
    assert f"## {NAME} (version 1)" in card and NOTES.strip() in card and "| `abs_error` (headline) | ↓" in card
    # 3. A method, validated and evaluated in the sandbox.
    sub = write_submission(tmp_path / "subs", name="toy-summer", tasks={NAME: "method:run"}, code=dedent("""
        import numpy as np
        def run(problem):
            return {"total": np.array(float(np.sum(problem["x"])))}
    """))
    code, out = _run("validate", str(sub))
    assert code == 0, out
    code, out = _run("evaluate", str(sub), "--task", NAME, "--split", "dev", "--sandbox", SANDBOX,
                     "--data-dir", str(data), "--db", db)
    assert code == 0, out
    # 4. The website shows it: on the overview, its board with the row, its card section.
    from leaderboard import create_app
    from leaderboard.board import get_board

    app = create_app({"TESTING": True, "DATABASE_URL": db})
    client = app.test_client()
    assert NAME in client.get("/").get_data(as_text=True)
    page = client.get(f"/tasks/{NAME}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "toy-summer" in html and "From the dataset card" in html
    assert "How the toy draws" in html
    with app.app_context():
        board = get_board(TASKS.get(NAME).metadata, "dev")
        assert [(r.submission.name, r.rank, r.evaluation.status) for r in board.current] == [
            ("toy-summer", 1, "complete")]
        assert board.current[0].headline == pytest.approx(0.0, abs=1e-9)
        assert set(board.current[0].groups) == {"short", "long"}
    app.extensions["phasebench_db"].engine.dispose()

"""What a push to the Hub would do, checked as data: the files, and the commit operations each
repository gets. No network: a recording stand-in takes HfApi's place."""
import pytest
from click.testing import CliRunner
from huggingface_hub import CommitOperationAdd, CommitOperationDelete

import huggingface_hub
from evaluator.cli import main
from evaluator.hub import commit_operations, plan_push, plan_results_push, push_dataset, push_results
from evaluator.results.dataset import export_results
from evaluator.store import make_engine, upgrade
from tests.builders import build_tiny_split
from tests.leaderboard.conftest import make_evaluation

TINY = "planted-features/{split}/{kind}/tiny-0.safetensors"


class RecordingHfApi:
    """Stands in for huggingface_hub.HfApi: records every call, serves ``remote`` as repo contents."""
    calls: list = []
    remote: dict[str, list[str]] = {}

    def __init__(self, *args, **kwargs):
        pass

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def list_repo_files(self, repo_id, **kwargs):
        return list(self.remote.get(repo_id, []))

    def create_commit(self, repo_id, operations, **kwargs):
        operations = list(operations)
        self.calls.append(("create_commit", repo_id, operations))

        class Info:
            commit_url = f"https://huggingface.co/datasets/{repo_id}/commit/0"
        return Info()


@pytest.fixture
def hub(monkeypatch):
    RecordingHfApi.calls, RecordingHfApi.remote = [], {}
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingHfApi)
    return RecordingHfApi


@pytest.fixture
def both_splits(tmp_path):
    build_tiny_split(tmp_path / "pub", n_instances=1)
    build_tiny_split(tmp_path / "pub", split="test", answers_root=tmp_path / "priv", n_instances=1)
    (tmp_path / "pub" / "README.md").write_text("---\nconfigs: []\n---\n# card\n")
    (tmp_path / "pub" / ".phasebench-revision").write_text("0" * 40 + "\n")  # local marker, never pushed
    return plan_push(tmp_path / "pub", tmp_path / "priv")


def _ops(ops):
    return [(type(op).__name__, op.path_in_repo) for op in ops]


def test_plan_lists_exactly_the_public_and_the_private_files(both_splits):
    assert both_splits.public == sorted([
        "README.md",
        "planted-features/dev/answers/tiny-0.safetensors", "planted-features/dev/inputs/tiny-0.safetensors",
        "planted-features/dev/instances.jsonl", "planted-features/dev/manifest.json",
        "planted-features/test/inputs/tiny-0.safetensors", "planted-features/test/instances.jsonl",
        "planted-features/test/manifest.json"])
    # The answers' own manifest goes with them, so a pulled answers folder verifies on its own.
    assert both_splits.private == ["planted-features/test/answers/tiny-0.safetensors",
                                   "planted-features/test/manifest.json"]


def test_push_makes_one_commit_per_repository_with_the_answers_only_in_the_private_one(both_splits, hub):
    hub.remote = {"org/tasks": [".gitattributes", "README.md", "planted-features/dev/inputs/gone.safetensors"]}
    lines = push_dataset(both_splits, "org/tasks", "org/answers")
    assert lines == ["org/tasks: https://huggingface.co/datasets/org/tasks/commit/0",
                     "org/answers: https://huggingface.co/datasets/org/answers/commit/0"]
    creates = [c for c in hub.calls if c[0] == "create_repo"]
    assert creates == [("create_repo", "org/tasks", {"repo_type": "dataset", "exist_ok": True}),
                       ("create_repo", "org/answers", {"repo_type": "dataset", "private": True, "exist_ok": True})]
    (_, pub_repo, pub_ops), (_, priv_repo, priv_ops) = [c for c in hub.calls if c[0] == "create_commit"]
    assert pub_repo == "org/tasks" and priv_repo == "org/answers"
    # A removed instance is deleted; .gitattributes, which the Hub manages, is kept.
    assert _ops(pub_ops) == [("CommitOperationAdd", f) for f in both_splits.public] + [
        ("CommitOperationDelete", "planted-features/dev/inputs/gone.safetensors")]
    assert not any("test/answers" in op.path_in_repo for op in pub_ops)
    assert _ops(priv_ops) == [("CommitOperationAdd", TINY.format(split="test", kind="answers")),
                              ("CommitOperationAdd", "planted-features/test/manifest.json")]
    # Each add uploads the local file of the same relative path.
    add = pub_ops[1]
    assert add.path_or_fileobj == str(both_splits.data_dir / add.path_in_repo)


def test_push_refuses_answers_without_a_separate_private_repo(both_splits, hub):
    with pytest.raises(ValueError, match="private repository is needed"):
        push_dataset(both_splits, "org/tasks", None)
    with pytest.raises(ValueError, match="must differ from the public one"):
        push_dataset(both_splits, "org/tasks", "org/tasks")
    assert not [c for c in hub.calls if c[0] == "create_commit"]


def test_commit_operations_are_sorted_adds_then_deletes(tmp_path):
    for name in ("a.txt", "b.txt"):
        (tmp_path / name).write_text(name)
    ops = commit_operations(tmp_path, ["b.txt", "a.txt"], existing=["z.txt", "a.txt", ".gitattributes"])
    assert [type(o) for o in ops] == [CommitOperationAdd, CommitOperationAdd, CommitOperationDelete]
    assert [o.path_in_repo for o in ops] == ["a.txt", "b.txt", "z.txt"]


def test_results_push_plan_and_commit(tmp_path, hub):
    engine = make_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    upgrade(engine)
    make_evaluation(engine, name="pca", headline=0.6, baseline=True)
    export_results(engine, tmp_path / "ds")
    plan = plan_results_push(tmp_path / "ds")
    assert _ops(plan.operations) == [("CommitOperationAdd", "README.md"),
                                     ("CommitOperationAdd", "data/evaluations.jsonl")]
    hub.remote = {"org/results": [".gitattributes", "README.md", "evaluations.jsonl"]}  # an older layout
    assert push_results(plan, "org/results") == "org/results: https://huggingface.co/datasets/org/results/commit/0"
    [(_, repo, ops)] = [c for c in hub.calls if c[0] == "create_commit"]
    assert _ops(ops)[-1] == ("CommitOperationDelete", "evaluations.jsonl")

    out = CliRunner().invoke(main, ["results", "push", str(tmp_path / "ds"), "--repo-id", "org/results", "--dry-run"])
    assert out.exit_code == 0
    assert out.output.splitlines() == ["org/results: 2 file(s)", "  add README.md", "  add data/evaluations.jsonl"]


def test_results_push_of_a_folder_that_is_not_an_export(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing README.md, data/evaluations.jsonl"):
        plan_results_push(tmp_path)

"""Corrupted, truncated or altered dataset files are refused, naming the file, before any method runs."""
import pytest

from benchmark.dataset import DataError
from benchmark.task import get_task
from evaluator.runner import evaluate_submission
from evaluator.sandbox import get_sandbox
from evaluator.submission import load_submission
from tests.builders import build_tiny_split, write_submission


@pytest.mark.parametrize("where, damage", [
    ("inputs", lambda b: b[: len(b) // 2]),                        # truncated
    ("inputs", lambda b: b[:-1] + bytes([b[-1] ^ 1])),             # one bit flipped
    ("answers", lambda b: b[:-8] + b"\0" * 8),                    # altered answer values
    ("answers", lambda b: b""),                                     # emptied
])
def test_damaged_file_is_named_and_nothing_runs(tmp_path, sqlite_store, where, damage):
    split = build_tiny_split(tmp_path / "data", n_instances=2, split="test", answers_root=tmp_path / "private")
    root = split.root if where == "inputs" else split.answers_root
    path = root / where / f"{split.instances[1].id}.safetensors"
    path.write_bytes(damage(path.read_bytes()))
    marker = tmp_path / "method-ran"
    folder = write_submission(tmp_path / "subs", code=f"""
        import numpy as np
        def run(problem):
            open({str(marker)!r}, "w").close()
            return np.zeros((1, problem["dim"]))
    """)
    with pytest.raises(DataError, match=f"{path}: sha256 differs from the manifest"):
        evaluate_submission(load_submission(folder), get_task("planted-features"), split, get_sandbox("none"),
                            sqlite_store)
    assert not marker.exists(), "a method ran on damaged data"
    assert sqlite_store.evaluations_of("tiny-method") == [], "an evaluation row was written"


def test_file_missing_from_the_manifest_is_named(tmp_path):
    split = build_tiny_split(tmp_path / "data", n_instances=1)
    manifest = split.root / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f"inputs/{split.instances[0].id}.safetensors", "inputs/x"))
    with pytest.raises(DataError, match="not listed in"):
        split.verify()
    manifest.write_text("{not json")
    with pytest.raises(DataError, match="unreadable manifest"):
        split.verify()


def test_sound_split_verifies(tmp_path):
    build_tiny_split(tmp_path / "data", n_instances=2, split="test", answers_root=tmp_path / "private").verify()

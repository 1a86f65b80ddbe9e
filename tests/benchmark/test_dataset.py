import pytest

from benchmark.dataset import DataError, open_split, verify_split
from tests.builders import build_tiny_split


def test_split_round_trip(tmp_path):
    split = build_tiny_split(tmp_path, n_instances=2)
    assert [r.id for r in split.instances] == ["tiny-0", "tiny-1"]
    assert split.load_inputs("tiny-0")["samples"].shape == (400, 6)
    assert split.load_answer("tiny-1")["features"].shape == (12, 6)
    assert split.revision.startswith("sha256:")
    assert verify_split("planted-features", "dev", tmp_path) == []


def test_verify_names_a_corrupted_file(tmp_path):
    build_tiny_split(tmp_path, n_instances=2)
    path = tmp_path / "planted-features" / "dev" / "inputs" / "tiny-1.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert verify_split("planted-features", "dev", tmp_path) == [f"{path}: sha256 differs from the manifest"]


def test_truncated_array_file_is_a_clear_error(tmp_path):
    split = build_tiny_split(tmp_path, n_instances=1)
    path = split.inputs_path("tiny-0")
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(DataError, match="tiny-0.safetensors: unreadable"):
        split.load_inputs("tiny-0")


def test_malformed_index_line_is_named(tmp_path):
    build_tiny_split(tmp_path, n_instances=1)
    index = tmp_path / "planted-features" / "dev" / "instances.jsonl"
    index.write_text(index.read_text() + "{not json\n")
    with pytest.raises(DataError, match=r"instances.jsonl:2: malformed"):
        open_split("planted-features", "dev", tmp_path)


def test_test_split_keeps_answers_apart(tmp_path):
    private = tmp_path / "private"
    split = build_tiny_split(tmp_path / "public", split="test", answers_root=private, n_instances=1)
    assert not (tmp_path / "public" / "planted-features" / "test" / "answers").exists()
    assert split.load_answer("tiny-0")["features"].shape == (12, 6)
    without = open_split("planted-features", "test", tmp_path / "public", tmp_path / "nowhere")
    assert not without.has_answers
    with pytest.raises(DataError, match="answers are not available"):
        without.load_answer("tiny-0")


def test_missing_split_says_how_to_build(tmp_path):
    with pytest.raises(DataError, match="phasebench data build"):
        open_split("planted-features", "dev", tmp_path)

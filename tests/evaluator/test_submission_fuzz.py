"""submission.yaml fuzzed: every file gets a list of problems naming the file (and the field), or a
valid spec; never an exception."""
import tempfile
from pathlib import Path

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluator.submission import SPEC_FILE, SubmissionError, load_submission, validate_submission

FIELDS = ["name", "authors", "description", "license", "url", "baseline", "gpu", "requirements", "tasks"]
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=8)
VALID = {"name": "fuzz", "authors": ["A"], "description": "d", "license": "MIT", "url": "u",
         "tasks": {"planted-features": "method:run"}}
specs = st.fixed_dictionaries({}, optional={f: values for f in FIELDS}) | st.builds(
    lambda field, value: {**VALID, field: value}, st.sampled_from(FIELDS + ["unknown"]), values)


def _check(content: bytes):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "fuzz"
        folder.mkdir()
        (folder / "method.py").write_text("def run(problem):\n    return None\n")
        (folder / SPEC_FILE).write_bytes(content)
        spec, problems = validate_submission(folder)
        assert spec is not None or problems
        for p in problems:
            assert p.startswith(str(folder)), p
            assert "Traceback" not in p
        try:
            load_submission(folder)
        except SubmissionError as exc:
            assert exc.problems == problems


@settings(max_examples=150, deadline=None)
@given(specs)
def test_fuzzed_fields(spec):
    _check(yaml.safe_dump(spec, allow_unicode=True).encode())


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_fuzzed_bytes(content):
    _check(content)


def test_field_errors_name_the_file_and_field(tmp_path):
    folder = tmp_path / "fuzz"
    folder.mkdir()
    (folder / SPEC_FILE).write_text(yaml.safe_dump({**VALID, "authors": "one string", "tasks": {"x": "no colon"}}))
    _, problems = validate_submission(folder)
    assert any(p.startswith(f"{folder / SPEC_FILE}: authors:") for p in problems), problems
    assert any(f"{folder / SPEC_FILE}: tasks" in p and "module:function" in p for p in problems), problems

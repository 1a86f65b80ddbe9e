"""scripts/fit_constants.py: the copy it evaluates differs from the submission in the one constant only."""
import importlib.util

import pytest
import yaml

from tests.builders import REPO

_spec = importlib.util.spec_from_file_location("fit_constants", REPO / "scripts" / "fit_constants.py")
fit_constants = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fit_constants)


def test_a_variant_rewrites_one_constant_and_renames_the_copy(tmp_path):
    folder = REPO / "submissions" / "relu-sae"
    out = fit_constants.variant(folder, tmp_path, "method.py", "L1", "0.1")
    before, after = (folder / "method.py").read_text().splitlines(), (out / "method.py").read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after) if a != b]
    assert len(before) == len(after) and len(changed) == 1
    assert changed[0][1].startswith("L1 = 0.1 ") and "#" in changed[0][1]   # the comment is kept
    spec = yaml.safe_load((out / "submission.yaml").read_text())
    assert spec["name"] == out.name == "relu-sae-l1-0p1"


def test_a_constant_that_is_not_assigned_once_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="0 module-level assignments of NOPE"):
        fit_constants.variant(REPO / "submissions" / "relu-sae", tmp_path, "method.py", "NOPE", "1")

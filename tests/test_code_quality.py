"""ruff and pyright, as configured in pyproject.toml, pass on the whole repository: CI runs them
here so that a finding fails the suite like a failing test."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import REPO


def _tool(name: str) -> str:
    found = Path(sys.executable).parent / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: it is in the test extra (pip install -e '.[test]')")
    return path


def test_ruff_finds_nothing():
    out = subprocess.run([_tool("ruff"), "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_pyright_finds_nothing():
    out = subprocess.run([_tool("pyright")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-8000:] + out.stderr[-2000:]

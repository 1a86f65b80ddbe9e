"""The packages depend one way: benchmark/ (tasks, statistics) knows nothing of the evaluator or the
website, and the evaluator knows nothing of the website except ``phasebench serve``, which starts
it, and ``phasebench results card``, which renders its boards. What both the evaluator and the
website read (the stored summaries, the ranking, the report) lives in evaluator/results/. Checked on the source with ``ast``, so an import inside a function
counts as much as one at the top of a module."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# package -> (top-level packages it must not import, files allowed to anyway)
RULES = {
    "benchmark": ({"evaluator", "leaderboard"}, set()),
    "evaluator": ({"leaderboard"}, {"evaluator/cli/serve.py", "evaluator/cli/results_card.py"}),
}


def imported_packages(path: Path) -> set[str]:
    """Top-level packages a module imports (relative imports stay inside its own package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def violations(package: str) -> list[str]:
    forbidden, allowed = RULES[package]
    out = []
    for path in sorted((REPO / package).rglob("*.py")):
        rel = path.relative_to(REPO).as_posix()
        bad = imported_packages(path) & forbidden
        if bad and rel not in allowed:
            out.append(f"{rel} imports {', '.join(sorted(bad))}")
    return out


@pytest.mark.parametrize("package", sorted(RULES))
def test_imports_point_one_way(package):
    assert violations(package) == []


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from leaderboard.board import x\n    import benchmark.stats\n")
    assert imported_packages(module) == {"leaderboard", "benchmark"}

"""The results card (`phasebench results card`): each task's board as the site computes it, written
from the database alone, so the same database gives the same bytes."""
from __future__ import annotations

import re

import pytest
import yaml
from click.testing import CliRunner

from evaluator.cli import main

from .conftest import noisy_instances

PF = "recall@0.9"


@pytest.fixture
def filled(add):
    add(name="const", headline=0.3, meta={"floor": True}, instances=noisy_instances([0.3] * 12, metric=PF))
    add(name="lookup", headline=0.4, meta={"floor": True}, instances=noisy_instances([0.4] * 12, metric=PF))
    add(name="fitted", headline=0.95, meta={"fitted_on": ["dev"]}, instances=noisy_instances([0.95] * 12, metric=PF))
    add(name="method", headline=0.6, baseline=True, groups={"T0": 0.55, "T1": 0.65},
        instances=noisy_instances([0.55, 0.65] * 6, metric=PF))


def _rows(card: str, task: str) -> dict[str, list[str]]:
    section = card[card.index(f"## {task} (version"):]
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    return {cells[0]: cells for cells in ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])}


def test_the_card_holds_the_boards_rows_skill_and_floors(filled, site_db_url, tmp_path, client):
    out = tmp_path / "RESULTS.md"
    result = CliRunner().invoke(main, ["results", "card", "--db", site_db_url, "--split", "dev", "--out", str(out)])
    assert result.exit_code == 0, result.output
    card = out.read_text(encoding="utf-8")
    assert yaml.safe_load(card.split("---\n")[1])["pretty_name"] == "PhaseBench results (dev)"
    rows = _rows(card, "planted-features")
    # ranked rows, then in-sample, then floors (best first), as the board orders them
    assert list(rows) == ["method", "fitted", "lookup", "const"]
    assert [rows[n][1] for n in rows] == ["baseline", "in-sample", "best floor", "floor"]
    assert rows["fitted"][2] == "dev" and rows["method"][3].startswith("0.600 [")
    # the same skill and gain the site's API reports
    api = client.get("/api/v1/tasks/planted-features/leaderboard").get_json()["rows"][0]["skill"]
    skill = float(rows["method"][-5].split()[0])
    gain = float(rows["method"][-4].split()[0])
    assert skill == pytest.approx(api["skill"], abs=5e-4) and gain == pytest.approx(api["gain"], abs=5e-4)
    assert "lookup (0.400)" in card
    # every declared group seen in the rows gets a column with the headline per group
    header = next(line for line in card[card.index("## planted-features"):].splitlines() if line.startswith("| "))
    assert re.search(r"\| T0 \| T1 \|", header)


def test_the_same_database_gives_the_same_bytes(filled, site_db_url, tmp_path):
    from leaderboard.cards import write_results_card

    a = write_results_card(site_db_url, "dev", tmp_path / "a.md").read_bytes()
    b = write_results_card(site_db_url, "dev", tmp_path / "b.md").read_bytes()
    assert a == b


def test_an_empty_split_says_so(filled, site_db_url, tmp_path):
    from leaderboard.cards import write_results_card

    card = write_results_card(site_db_url, "test", tmp_path / "t.md").read_text(encoding="utf-8")
    assert "No finished evaluation on this split." in card and "## planted-features" not in card

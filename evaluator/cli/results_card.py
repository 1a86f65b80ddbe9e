"""``phasebench results card``: the results card, every task's board on a split as markdown tables.

The tables are the leaderboard's boards, so this is the one evaluator command besides ``serve`` that
imports the website's code (tests/test_import_direction.py lists both).
"""
from __future__ import annotations

from pathlib import Path

import click

from benchmark.dataset import BOARD_SPLITS

from ..store import redact
from ..store.session import database_url
from ._params import db_option

__all__ = ["card"]


@click.command("card")
@db_option
@click.option("--split", type=click.Choice(BOARD_SPLITS), default="dev", show_default=True)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="file to write the card to (the repository's RESULTS.md is the dev split's)")
def card(db_url: str | None, split: str, out: Path) -> None:
    """Write the results card: each task's board on a split, floors and skill included."""
    from leaderboard.cards import write_results_card

    url = database_url(db_url)
    click.echo(f"{redact(url)} ({split}) -> {write_results_card(url, split, out)}")

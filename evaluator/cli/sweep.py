"""``phasebench sweep``: give up on jobs and evaluations that no worker will finish."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import click

from ..store import SchemaOutOfDate, make_engine, require_current
from ..store.jobs import JobStore
from ._params import db_option


@click.command()
@click.option("--running-hours", type=click.FloatRange(min=0, min_open=True), required=True,
              help="give up on jobs and evaluations running for longer than this; choose it above the longest "
                   "evaluation you run (instances x time limit), or live work is cut off")
@click.option("--queued-hours", type=click.FloatRange(min=0, min_open=True), default=None,
              help="also give up on jobs queued for longer than this (a lost broker message); default: leave "
                   "queued jobs alone")
@click.option("--dry-run", is_flag=True, help="list what would be swept, change nothing")
@db_option
def sweep(running_hours, queued_hours, dry_run, db_url) -> None:
    """Mark jobs and evaluations that outlived their worker as failed / interrupted.

    A worker that dies after its last infrastructure retry, while the database was down too, leaves
    its job 'running' with no message left in the broker; a `phasebench evaluate` killed mid-run leaves
    its evaluation 'running'. Neither ever counts as a result; the sweep records that they are over,
    with a reason, so that `phasebench jobs` and the leaderboard stop showing them as in progress."""
    engine = make_engine(db_url)
    try:
        require_current(engine)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    now = datetime.now(timezone.utc)
    rows = JobStore(engine).sweep(now - timedelta(hours=running_hours),
                                  None if queued_hours is None else now - timedelta(hours=queued_hours),
                                  dry_run=dry_run)
    verb = "would give up" if dry_run else "gave up"
    for r in rows:
        since = r.since.strftime("%Y-%m-%d %H:%M") if r.since else "?"
        new = ("failed" if r.kind == "job" else "interrupted")
        click.echo(f"{r.kind} {r.id}: {r.was} since {since} UTC ({r.what}) -> {new}{' (dry run)' if dry_run else ''}")
    jobs = sum(r.kind == "job" for r in rows)
    click.echo(f"{verb} on {jobs} job(s) and {len(rows) - jobs} evaluation(s)")

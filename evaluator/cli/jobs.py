import json

import click

from ..store import SchemaOutOfDate, make_engine, require_current
from ..store.jobs import JobStore
from ..store.models import JobState
from ._params import db_option

_STATES = [JobState.QUEUED, JobState.RUNNING, JobState.DONE, JobState.FAILED]


@click.command()
@click.option("--state", "states", multiple=True, type=click.Choice(_STATES), help="only jobs in these states")
@click.option("--submission", default=None, help="only this submission's jobs")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per job")
@db_option
def jobs(states, submission, limit, as_json, db_url) -> None:
    """List queued, running, done and failed jobs, newest first, with queue positions."""
    engine = make_engine(db_url)
    try:
        require_current(engine)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    store = JobStore(engine)
    views = store.list(states, submission, limit)
    if as_json:
        for v in views:
            click.echo(json.dumps(v.to_json()))
        return
    counts = store.counts()
    click.echo("  ".join(f"{s}: {counts.get(s, 0)}" for s in _STATES))
    head = ("job", "state", "pos", "submission", "task", "split", "tries", "worker", "evaluation", "reason")
    rows: list[tuple[str, ...]] = [head]
    for v in views:
        j = v.job
        rows.append((str(j.id), j.state, "" if v.position is None else str(v.position), j.submission_name, j.task,
                     j.split, str(j.attempts), j.worker or "", "" if j.evaluation_id is None else str(j.evaluation_id),
                     (j.reason or "")[:80]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())

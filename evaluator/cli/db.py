import click

from ..store import SchemaOutOfDate, make_engine, redact, upgrade
from ..store.session import database_url


@click.group()
def db() -> None:
    """Manage the results database."""


@db.command("upgrade")
@click.option("--db", "db_url", envvar="PHASEBENCH_DB", help="database URL (default: $PHASEBENCH_DB or a SQLite file)")
def db_upgrade(db_url: str | None) -> None:
    """Create or migrate the schema to the newest revision."""
    url = database_url(db_url)
    try:
        rev = upgrade(make_engine(url))
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"results database {redact(url)} at schema revision {rev}")

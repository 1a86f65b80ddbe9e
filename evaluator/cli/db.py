import click

from ..store import SchemaOutOfDate, make_engine, redact, upgrade
from ..store.session import database_url
from ._params import db_option


@click.group()
def db() -> None:
    """Manage the results database."""


@db.command("upgrade")
@db_option
def db_upgrade(db_url: str | None) -> None:
    """Create or migrate the schema to the newest revision."""
    url = database_url(db_url)
    try:
        rev = upgrade(make_engine(url))
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"results database {redact(url)} at schema revision {rev}")

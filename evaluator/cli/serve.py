import click

from ..store.session import database_url, redact
from ._params import db_option


@click.command()
@db_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(db_url: str | None, host: str, port: int) -> None:
    """Serve the leaderboard website."""
    from leaderboard import create_app

    url = database_url(db_url)
    app = create_app({"DATABASE_URL": url})
    click.echo(f"PhaseBench leaderboard on http://{host}:{port} (results: {redact(url)})")
    app.run(host=host, port=port, debug=False)

"""``phasebench data secret``: the operator's key that every test split is drawn from."""
from pathlib import Path

import click

from benchmark.split_secret import (
    SECRET_ENV,
    SECRET_FILE_ENV,
    SecretError,
    default_secret_file,
    load_test_secret,
    new_secret_text,
    write_secret_file,
)

__all__ = ["secret"]


@click.group()
def secret() -> None:
    """Make or check the test split's secret (256 random bits; never committed, logged or stored)."""


@secret.command("new")
@click.option("--file", "path", type=click.Path(path_type=Path), default=None,
              help=f"where to write it, mode 0600 (default: ${SECRET_FILE_ENV} or var/test-secret, which git ignores)")
@click.option("--print", "to_stdout", is_flag=True,
              help=f"print it instead (for a CI secret: store it as {SECRET_ENV}); nothing is written")
@click.option("--force", is_flag=True, help="replace an existing secret (the published test split needs the old one)")
def new(path: Path | None, to_stdout: bool, force: bool) -> None:
    """Make a fresh secret from the operating system's random source."""
    text = new_secret_text()
    if to_stdout:
        click.echo(text)
        return
    path = path or default_secret_file()
    try:
        write_secret_file(path, text, force=force)
    except SecretError as exc:
        raise click.UsageError(str(exc)) from None
    click.echo(f"wrote a new test-split secret to {path} (mode 0600). Keep a copy where the test answers are kept; "
               "without it the test split cannot be rebuilt.")


@secret.command("check")
def check() -> None:
    """Say whether the configured secret would be accepted (without showing it)."""
    try:
        load_test_secret()
    except SecretError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("the test-split secret is present and strong enough")

import sys
from pathlib import Path

import click

from ..submission import validate_submission


@click.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(folders: tuple[Path, ...]) -> None:
    """Check submission folders without running their code; report every problem."""
    bad = 0
    for folder in folders:
        spec, problems = validate_submission(folder)
        if problems or spec is None:
            bad += 1
            click.secho(f"{folder}: {len(problems)} problem(s)", fg="red", err=True)
            for p in problems:
                click.echo(f"  {p}", err=True)
        else:
            click.secho(f"{folder}: ok ({spec.name}: {', '.join(spec.tasks)})", fg="green")
    sys.exit(1 if bad else 0)

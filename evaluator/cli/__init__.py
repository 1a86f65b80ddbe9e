"""The ``phasebench`` command: one module per subcommand."""
import click

from benchmark.settings import SettingsError, get_settings

from .. import __version__
from .ci import ci
from .data import data
from .db import db
from .enqueue import enqueue
from .evaluate import evaluate
from .results import results
from .results_card import card as results_card
from .jobs import jobs
from .serve import serve
from .settings import settings
from .sweep import sweep
from .tasks import tasks
from .validate import validate
from .worker import worker

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phasebench")
def main() -> None:
    """PhaseBench: benchmark tasks with planted ground truth for physics-of-AI-safety methods."""
    # Checked before any subcommand runs: an invalid PHASEBENCH_* variable is named here, not a
    # traceback from whichever module reads it first.
    try:
        get_settings()
    except SettingsError as exc:
        raise click.ClickException(f"invalid setting: {exc} (`phasebench settings` lists them)") from None


results.add_command(results_card)

for command in (tasks, data, validate, evaluate, serve, db, enqueue, worker, jobs, sweep, results, ci,
                settings):
    main.add_command(command)

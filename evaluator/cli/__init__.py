"""The ``phasebench`` command: one module per subcommand."""
import importlib

import click

from benchmark.settings import SettingsError, get_settings

from .. import __version__

__all__ = ["main"]

#: The subcommands, each defined by the module of its name, imported only when the command runs (or
#: --help lists them all): `phasebench db upgrade` or `validate` must not wait for the runner, the
#: queue and scipy.stats to import (about a second) to do a few milliseconds of work.
_COMMANDS = ("tasks", "data", "validate", "evaluate", "serve", "db", "enqueue", "worker", "jobs", "sweep", "results",
             "ci", "settings")


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            module = importlib.import_module(f"{__name__}.{cmd_name}")
            self.add_command(getattr(module, cmd_name), cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="phasebench")
def main() -> None:
    """PhaseBench: benchmark tasks with planted ground truth for physics-of-AI-safety methods."""
    # Checked before any subcommand runs: an invalid PHASEBENCH_* variable is named here, not a
    # traceback from whichever module reads it first.
    try:
        get_settings()
    except SettingsError as exc:
        raise click.ClickException(f"invalid setting: {exc} (`phasebench settings` lists them)") from None

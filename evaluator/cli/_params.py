"""Option callbacks shared by the subcommands: bad values become usage errors, never tracebacks."""
from __future__ import annotations

import click

from benchmark.registry import UnknownNameError
from benchmark.task import get_task

__all__ = ["known_task_names"]


def known_task_names(ctx: click.Context, param: click.Parameter, names: tuple[str, ...]) -> tuple[str, ...]:
    """``--task`` values, each a registered task ("did you mean ...?" otherwise)."""
    for name in names:
        try:
            get_task(name)
        except UnknownNameError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return names

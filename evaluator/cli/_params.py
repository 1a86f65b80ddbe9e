"""Options shared by the subcommands, each declared once; bad values become usage errors naming
the option, never tracebacks."""
from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click
from pydantic import ValidationError

from benchmark.dataset import SPLITS
from benchmark.registry import UnknownNameError
from benchmark.settings import default_of, get_settings
from benchmark.task import get_task

from ..sandbox import SANDBOXES
from ..store.session import DEFAULT_DB_URL

if TYPE_CHECKING:
    from ..request import EvaluationRequest

# The queue and the request (which imports the runner, and it scipy.stats) are imported where they are
# used: every subcommand imports this module, and most of them need neither.

__all__ = ["known_task_names", "db_option", "broker_option", "queue_option", "task_module_option",
           "request_options"]


def known_task_names(ctx: click.Context, param: click.Parameter, names: tuple[str, ...]) -> tuple[str, ...]:
    """``--task`` values, each a registered task ("did you mean ...?" otherwise)."""
    for name in names:
        try:
            get_task(name)
        except UnknownNameError as exc:
            raise click.BadParameter(str(exc), ctx=ctx, param=param) from None
    return names


# Click reads no variable for these: a flag left out is None, and the settings (benchmark/settings.py)
# supply the variable or the default, so the command line, the queue and the website resolve them
# one way.
db_option = click.option(
    "--db", "db_url",
    help=f"results database URL (default: $PHASEBENCH_DB or {DEFAULT_DB_URL}); the job queue's "
         "commands and every worker must share it")
broker_option = click.option(
    "--broker", "broker_url",
    help=f"Celery broker URL: amqp://... (RabbitMQ) or redis://... (default: $PHASEBENCH_BROKER or "
         f"{default_of('broker')})")
queue_option = click.option(
    "--queue", "queue_prefix",
    help=f"queue name prefix: jobs go to <prefix>.cpu or <prefix>.cuda (default: $PHASEBENCH_QUEUE or "
         f"{default_of('queue')})")


def _import_task_modules(ctx: click.Context, param: click.Parameter, modules: tuple[str, ...]) -> None:
    from ..queue.config import import_task_modules

    import_task_modules(modules or get_settings().task_modules)


# Eager: the modules register their tasks before any other option (``--task``) is checked.
task_module_option = click.option(
    "--task-module", multiple=True, is_eager=True, expose_value=False, callback=_import_task_modules,
    help="import this module first to register extra tasks (repeatable; default: $PHASEBENCH_TASK_MODULES, "
         "comma-separated)")

#: Each EvaluationRequest field that an option sets, and that option (errors name the option).
_OPTION_OF_FIELD = {
    "submissions": "SUBMISSIONS", "tasks": "--task", "split": "--split", "sandbox": "--sandbox",
    "device": "--device", "force": "--force", "data_dir": "--data-dir", "data_repo": "--data-repo",
    "private_dir": "--private-dir", "limits.wall_time_s": "--time-limit", "limits.memory_mb": "--memory-limit",
    "limits.output_mb": "--output-limit", "workers": "--workers",
}

_REQUEST_OPTIONS = (
    click.argument("submissions", nargs=-1, required=True, type=click.Path(path_type=Path)),
    click.option("--task", "tasks", multiple=True,
                 help="only these tasks (default: every task the submission answers)"),
    click.option("--split", type=click.Choice(SPLITS), default="dev", show_default=True,
                 help="train scores are stored but never enter a board (a method is fitted there)"),
    click.option("--sandbox", type=click.Choice(SANDBOXES.names()), default="bwrap", show_default=True),
    click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
                 help="queued cuda jobs go to the GPU queue, served by `phasebench worker --gpus ...`"),
    click.option("--force", is_flag=True,
                 help="evaluate again even if a stored result has the same reuse key (code, task version, "
                      "split, data revision, baselines library, sandbox)"),
    click.option("--data-dir", type=click.Path(path_type=Path), default=None,
                 help="local dataset folder (default: $PHASEBENCH_DATA or the embedded copy); for a queued job, "
                      "the folder as the workers see it"),
    click.option("--data-repo", default=None,
                 help="read the tasks from a Hub dataset at a pinned commit, org/name@<commit> (cached locally; "
                      "a queued job fetches it on its worker)"),
    click.option("--private-dir", type=click.Path(path_type=Path), default=None,
                 help="the test split's answers (default: $PHASEBENCH_PRIVATE_DIR)"),
    click.option("--time-limit", type=float, default=None,
                 help="override the task's per-instance wall-time limit (s): one for every instance, in place of "
                      "per-instance ones (grokking-onset's per architecture)"),
    click.option("--memory-limit", type=int, default=None, help="override the task's per-instance memory limit (MB)"),
    click.option("--output-limit", type=float, default=None, help="override the task's per-instance output limit (MB)"),
    click.option("--workers", type=int, default=1, show_default=True,
                 help="instances evaluated at once, each worker with an equal share of the CPUs for its threads "
                      "(memory: up to N times the task's per-instance limit)"),
)
_REQUEST_PARAMS = ("submissions", "tasks", "split", "sandbox", "device", "force", "data_dir", "data_repo",
                   "private_dir", "time_limit", "memory_limit", "output_limit", "workers")


def build_request(values: dict[str, Any]) -> EvaluationRequest:
    """The request the options describe; an invalid one is a usage error naming the option."""
    from ..request import EvaluationRequest, first_error

    try:
        return EvaluationRequest.model_validate({
            "submissions": list(values["submissions"]), "tasks": list(values["tasks"]), "split": values["split"],
            "sandbox": values["sandbox"], "device": values["device"], "force": values["force"],
            "data_dir": values["data_dir"], "data_repo": values["data_repo"], "private_dir": values["private_dir"],
            "workers": values["workers"],
            "limits": {"wall_time_s": values["time_limit"], "memory_mb": values["memory_limit"],
                       "output_mb": values["output_limit"]}})
    except ValidationError as exc:
        where, msg = first_error(exc)
        option = _OPTION_OF_FIELD.get(where)
        if option is None:
            raise click.UsageError(msg) from None
        raise click.BadParameter(msg, param_hint=f"'{option}'") from None


def request_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of one evaluation request (evaluate, enqueue); the command gets ``request``."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in _REQUEST_PARAMS}
        return command(*args, request=build_request(values), **kwargs)

    for decorate in reversed(_REQUEST_OPTIONS):
        wrapper = decorate(wrapper)
    return wrapper

import math
import sys
from pathlib import Path

import click
from tqdm import tqdm

from benchmark.dataset import SPLITS, DataError, open_split
from benchmark.registry import UnknownNameError
from benchmark.task import get_task

from ._params import known_task_names
from ..hub import resolve_data_repo
from ..runner import Outcome, evaluate_submission
from ..sandbox import SANDBOXES, SandboxError, get_sandbox
from ..store import ResultsStore, SchemaOutOfDate, make_engine, redact, upgrade
from ..store.session import database_url
from ..submission import SubmissionError, load_submission


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def summary_table(outcomes: list[Outcome]) -> str:
    head = ("submission", "task", "split", "status", "headline", "95% CI", "failed", "time", "")
    rows: list[tuple[str, ...]] = [head]
    for o in outcomes:
        rows.append((o.submission, o.task, o.split, o.status, f"{o.headline_metric} {_fmt(o.headline)}",
                     f"[{_fmt(o.ci[0])}, {_fmt(o.ci[1])}]", f"{o.n_failed}/{o.n_instances}",
                     f"{_fmt(o.runtime_s, 1)} s", "(stored result reused)" if o.reused else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


@click.command()
@click.argument("submissions", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--task", "task_names", multiple=True, callback=known_task_names,
              help="only these tasks (default: every task the submission answers)")
@click.option("--split", type=click.Choice(SPLITS), default="dev", show_default=True,
              help="train scores are stored but never enter a board (a method is fitted there)")
@click.option("--sandbox", "sandbox_name", type=click.Choice(SANDBOXES.names()), default="bwrap", show_default=True)
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--db", "db_url", envvar="PHASEBENCH_DB", help="results database URL (default: $PHASEBENCH_DB or ./var/phasebench.sqlite)")
@click.option("--force", is_flag=True, help="evaluate again even if a stored result for this code and data exists")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="local dataset folder (default: $PHASEBENCH_DATA or the embedded copy)")
@click.option("--data-repo", default=None,
              help="read the tasks from a Hub dataset at a pinned commit, org/name@<commit> (cached locally)")
@click.option("--private-dir", type=click.Path(path_type=Path), default=None)
@click.option("--time-limit", type=click.FloatRange(min=0, min_open=True), default=None, help="override the task's per-instance wall-time limit (s)")
@click.option("--memory-limit", type=click.IntRange(min=1), default=None, help="override the task's per-instance memory limit (MB)")
@click.option("--output-limit", type=click.FloatRange(min=0, min_open=True), default=None, help="override the task's per-instance output limit (MB)")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="instances evaluated at once, each worker with an equal share of the CPUs for its threads "
                   "(memory: up to N times the task's per-instance limit)")
def evaluate(submissions, task_names, split, sandbox_name, device, db_url, force, data_dir, data_repo, private_dir,
             time_limit, memory_limit, output_limit, workers) -> None:
    """Evaluate submissions, each instance in its own sandboxed worker, and store the scores."""
    if data_repo:
        if data_dir:
            raise click.UsageError("give --data-dir or --data-repo, not both")
        try:
            data_dir = resolve_data_repo(data_repo)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
    sandbox = get_sandbox(sandbox_name)
    ok, why = sandbox.available()
    if not ok:
        raise click.ClickException(f"sandbox {sandbox_name!r} is unavailable: {why}")
    if not sandbox.isolated:
        click.secho(f"WARNING: {sandbox.warning}", fg="yellow", bold=True, err=True)
    if device == "cuda" and workers > 1:
        # Workers would share the one GPU's memory, which no sandbox limits per worker.
        raise click.UsageError("--workers above 1 is for --device cpu: workers on one GPU would share its memory "
                               "with no per-worker limit")
    if device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise click.ClickException("--device cuda: no CUDA device is visible to torch here")

    url = database_url(db_url)
    engine = make_engine(url)
    try:
        rev = upgrade(engine)
    except SchemaOutOfDate as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"results database: {redact(url)} (schema {rev})", err=True)
    store = ResultsStore(engine)

    outcomes: list[Outcome] = []
    failures = 0
    for folder in submissions:
        try:
            sub = load_submission(folder)
        except SubmissionError as exc:
            failures += 1
            click.secho(f"{folder}: not evaluated, the submission is invalid:", fg="red", err=True)
            for p in exc.problems:
                click.echo(f"  {p}", err=True)
            continue
        wanted = [t for t in sub.spec.tasks if not task_names or t in task_names]
        if not wanted:
            click.echo(f"{sub.name}: answers none of the tasks {', '.join(task_names)}; skipped", err=True)
            continue
        try:
            # The container sandbox runs a submission that declares extra requirements on its own
            # image (evaluator image + those requirements), built here, before any worker runs.
            sub_sandbox = sandbox.for_submission(sub, log=lambda m: click.echo(m, err=True))
        except SandboxError as exc:
            failures += 1
            click.secho(f"{sub.name}: not evaluated, its image could not be built: {exc}", fg="red", err=True)
            continue
        for task_name in wanted:
            try:
                task = get_task(task_name)
                split_data = open_split(task.name, split, data_dir, private_dir)
                overrides = {"wall_time_s": time_limit, "memory_mb": memory_limit, "output_mb": output_limit}
                limits = task.metadata.limits.model_validate(
                    {**task.metadata.limits.model_dump(), **{k: v for k, v in overrides.items() if v is not None}})
                outcomes.append(evaluate_submission(
                    sub, task, split_data, sub_sandbox, store, device=device, force=force, limits=limits,
                    workers=workers,
                    progress=lambda total, desc: tqdm(total=total, desc=desc, unit="instance", file=sys.stderr)))
            except (DataError, UnknownNameError) as exc:
                failures += 1
                click.secho(f"{sub.name} / {task_name}: not evaluated: {exc}", fg="red", err=True)
            except SandboxError as exc:
                failures += 1
                click.secho(f"{sub.name} / {task_name}: evaluation failed, not the method's fault: {exc}",
                            fg="red", err=True)
    if outcomes:
        click.echo(summary_table(outcomes))
    sys.exit(1 if failures else 0)

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING

import click

from ..store import ResultsStore, SchemaOutOfDate, make_engine, redact, upgrade
from ..store.session import database_url
from ._params import db_option, request_options

if TYPE_CHECKING:
    from ..request import EvaluationRequest, NotEvaluated
    from ..runner import Outcome


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
@request_options
@db_option
def evaluate(request: EvaluationRequest, db_url: str | None) -> None:
    """Evaluate submissions, each instance in its own sandboxed worker, and store the scores."""
    # Here, not at the top: `phasebench --help` imports this module, and the runner imports scipy.stats.
    from tqdm import tqdm

    from ..request import Evaluated, MachineUnfit, evaluate_request

    if request.device == "cuda":
        # Checked here, for the inline run; a queued cuda job runs on the GPUs its worker was given (--gpus).
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

    outcomes: list[Outcome] = []
    failures = 0
    results = evaluate_request(
        request, ResultsStore(engine), warn=lambda m: click.secho(m, fg="yellow", bold=True, err=True),
        info=lambda m: click.echo(m, err=True),
        progress=lambda total, desc: tqdm(total=total, desc=desc, unit="instance", file=sys.stderr))
    try:
        for result in results:
            if isinstance(result, Evaluated):
                outcomes.append(result.outcome)
            else:
                failures += result.failed
                report_not_evaluated(result, "evaluated")
    except MachineUnfit as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        # Now, not whenever the generator is collected: the next evaluation may be in flight, and its
        # workers must be killed and its row marked before the command exits.
        results.close()
    if outcomes:
        click.echo(summary_table(outcomes))
    sys.exit(1 if failures else 0)


def report_not_evaluated(item: NotEvaluated, verb: str) -> None:
    """One line (and the problems) on stderr, for ``phasebench evaluate`` and ``enqueue`` alike."""
    where = item.name if item.task is None else f"{item.name} / {item.task}"
    if item.kind == "no-task":
        click.echo(f"{where}: {item.reason}; skipped", err=True)
        return
    why = {"invalid": f"not {verb}, {item.reason}", "image": f"not {verb}, {item.reason}",
           "data": f"not {verb}: {item.reason}",
           "infra": f"evaluation failed, not the method's fault: {item.reason}"}[item.kind]
    click.secho(f"{where}: {why}" + (":" if item.problems else ""), fg="red", err=True)
    for p in item.problems:
        click.echo(f"  {p}", err=True)

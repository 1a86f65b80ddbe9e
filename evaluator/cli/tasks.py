import json

import click

from benchmark.task import all_tasks


@click.command()
@click.option("--json", "as_json", is_flag=True, help="print the full metadata as JSON")
def tasks(as_json: bool) -> None:
    """List the registered tasks and their headline metrics."""
    metas = [t.metadata for t in all_tasks()]
    if as_json:
        click.echo(json.dumps([m.model_dump() for m in metas], indent=2))
        return
    for m in metas:
        arrow = "higher is better" if m.headline_metric.higher_is_better else "lower is better"
        click.echo(f"{m.name} (v{m.version}): headline {m.headline} ({arrow}); groups {', '.join(m.groups)}")
        click.echo(f"    {m.description}")

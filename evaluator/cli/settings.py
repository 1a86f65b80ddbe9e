"""``phasebench settings``: every PHASEBENCH_* setting, its value here, its default and its meaning."""
import click

from benchmark.settings import Settings, env_name, get_settings, markdown_table, shown_default, shown_value

__all__ = ["settings"]


@click.command()
@click.option("--markdown", is_flag=True, help="print the README's table (defaults only, no values of this machine)")
def settings(markdown: bool) -> None:
    """List the settings (environment variables): current value (secrets hidden), default, meaning."""
    if markdown:
        click.echo(markdown_table(), nl=False)
        return
    current = get_settings()
    for field, info in Settings.model_fields.items():
        source = (f"from the environment; default {shown_default(field)}" if field in current.model_fields_set
                  else "the default")
        click.echo(f"{env_name(field)} = {shown_value(current, field)}  ({source})")
        click.echo(f"    {info.description}")

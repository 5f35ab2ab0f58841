"""Help while writing a routine: `voiceguide new` and `voiceguide schema`."""

from __future__ import annotations

from pathlib import Path

import click

from voiceguide import api
from voiceguide.cli.commands import CONTEXT, cli


@cli.command(context_settings=CONTEXT)
@click.argument("template", required=False, default=api.DEFAULT_TEMPLATE)
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="Write the routine to this file (and the routine schema beside it); default: print it.")
@click.option("--force", is_flag=True, help="Replace the file if it exists.")
@click.option("--list", "list_", is_flag=True, help="List the templates.")
def new(template: str, output: Path | None, force: bool, list_: bool) -> None:
    """Start a routine from a TEMPLATE: stretch (the default), breathing, meditation or intervals.

    The routine is commented for a first read and builds as it is. With -o,
    routine.schema.json is written beside it, which the routine's first line
    points an editor at (see `voiceguide schema`).

    \b
    Example:
      voiceguide new -o my-stretch.yaml
      voiceguide new breathing -o breathing.yaml
      voiceguide new --list
    """
    if list_:
        for name in api.TEMPLATES:
            default = " (the default)" if name == api.DEFAULT_TEMPLATE else ""
            click.echo(f"{name:<11} {api.template_summary(name)}{default}")
        return
    if output is None:
        click.echo(api.template_text(template), nl=False)
        return
    written = api.write_template(template, output, force=force)
    beside = f", and {written[1].name} beside it for editors" if len(written) > 1 else ""
    click.echo(f"wrote {output} from the {template} template{beside}")
    click.echo(f"next: voiceguide build {output}")


@cli.command(context_settings=CONTEXT)
@click.option("--profile", is_flag=True, help="The schema of profile files (--profile) instead of routines.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the schema to this file (replacing it); default: print it.")
def schema(profile: bool, output: Path | None) -> None:
    """Print the JSON Schema of routine files, for an editor's YAML support.

    Point an editor at it with a first line in the routine such as
    `# yaml-language-server: $schema=routine.schema.json`; it then completes
    keys, explains them, and marks mistakes as you type. `voiceguide check`
    still has the last word: timing and templates are checked there.

    \b
    Example:
      voiceguide schema -o routine.schema.json
      voiceguide schema --profile -o profile.schema.json
    """
    if output is None:
        click.echo(api.schema_text(profile=profile), nl=False)
        return
    api.write_schema(output, profile=profile)
    click.echo(f"wrote {output}")

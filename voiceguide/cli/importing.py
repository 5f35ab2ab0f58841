"""`voiceguide import`: routines from other tools, as voiceguide routines."""

from __future__ import annotations

from pathlib import Path

import click

from voiceguide import api
from voiceguide.cli.commands import CONTEXT, cli

# The names --from takes (voiceguide.importing.FORMATS, not imported: the command line's front stays light).
SOURCES = ("w2a", "apg")


@cli.command("import", context_settings=CONTEXT)
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the routine to this file (default: print it).")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option("--from", "source_format", type=click.Choice(SOURCES),
              help="The source's format: w2a (a workout YAML) or apg (audio_program_generator's "
                   "'phrase; seconds' lines); by default told from the file.")
def import_routine(source: Path, output: Path | None, force: bool, source_format: str | None) -> None:
    """Read a w2a workout or an audio_program_generator phrase file as a routine.

    Every duration is kept; each thing that cannot be carried over is one
    warning on stderr. The routine is printed, or written to --output (an
    existing file only with --force).

    \b
    Example:
      voiceguide import workout.yaml -o my-workout.yaml
      voiceguide import phrases.txt > my-phrases.yaml
    """
    imported = api.import_routine(source, source_format)
    for lost in imported.lost:
        click.echo(f"{lost.where}: warning: {lost.message}", err=True)
    if output is None:
        click.echo(imported.text, nl=False)
        return
    imported.save(output, replace=force)
    steps = f"{imported.steps} step{'' if imported.steps == 1 else 's'}"
    click.echo(f"{output}: routine of {steps} written; try it with: voiceguide plan {output}")

"""`voiceguide voices`: what the speech engines can speak with."""

from __future__ import annotations

import json
from pathlib import Path

import click

from voiceguide import api
from voiceguide.cli.commands import CONTEXT, _environment, cache_dir_option, cli


@cli.command(context_settings=CONTEXT)
@click.option("--engine", default="pyttsx3", show_default=True, help="Speech engine: pyttsx3, piper, or a plugin's.")
@click.option("--language", help="Only the voices that speak this language: a code (de, pt-br) or a name (German); "
                                  "the one a routine's `language:` would take comes first.")
@click.option("--json", "as_json", is_flag=True, help="Print the voices as JSON.")
@cache_dir_option
def voices(engine: str, language: str | None, as_json: bool, cache_dir: Path | None) -> None:
    """List the voices of a speech engine: id, name, languages.

    Use an id or a language as `voice:` in a routine or with --voice.

    \b
    Example:
      voiceguide voices | grep -i english
      voiceguide voices --language de
      voiceguide voices --engine piper
    """
    found = api.voices(engine, _environment(cache_dir), language)
    if language is not None and not found:
        click.echo(f"note: no voice of engine {engine} speaks '{language}'", err=True)
    if as_json:
        click.echo(json.dumps([{"id": v.id, "name": v.name, "languages": list(v.languages)} for v in found], indent=2))
        return
    width = max((len(v.id) for v in found), default=2)
    for v in found:
        click.echo(f"{v.id:<{width}}  {v.name}  ({', '.join(v.languages)})")

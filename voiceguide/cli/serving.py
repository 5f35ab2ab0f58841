"""`voiceguide serve`: the sessions of a folder, for a phone on the same network."""

from __future__ import annotations

import shutil
from pathlib import Path

import click

from voiceguide.cli.commands import CONTEXT, _environment, cli


@cli.command(context_settings=CONTEXT)
@click.argument("folder", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets a phone on the same network open it.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True,
              help="Port to listen on; 0 picks a free one.")
def serve(folder: Path | None, host: str, port: int) -> None:
    """Play the sessions in FOLDER (default: output/) in a phone's browser or podcast app.

    Serves a page that lists the sessions and plays each one with its steps,
    and a podcast feed of them (/feed.xml), from this computer only unless
    --host says otherwise. Stop with Ctrl-C.

    \b
    Example:
      voiceguide serve --host 0.0.0.0
    """
    from voiceguide.serve import FEED_PATH, Library, SessionServer, is_local, qr_codes, url_for

    output_dir = _environment().output_dir
    library = Library(folder or output_dir)
    server = SessionServer(library, host, port)
    url = url_for(host, server.port)
    count = len(library.sessions())
    feed = url.rstrip("/") + FEED_PATH
    click.echo(f"Serving {count} session{'s' if count != 1 else ''} from {folder or output_dir} at {url}")
    click.echo(f"Podcast feed: {feed}")
    if is_local(host):
        click.echo("Only this computer can open it; for a phone on the same Wi-Fi, add --host 0.0.0.0.")
    else:
        click.echo("notice: the sessions are visible to every device on this network while this runs", err=True)
        # Both: the page plays at once in any browser; the feed's address goes into a podcast app.
        codes = [("The page, for a browser", url), ("The feed, for a podcast app", feed)]
        click.echo(qr_codes(codes, shutil.get_terminal_size().columns), nl=False)
    click.echo("Press Ctrl-C to stop.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        click.echo("stopped")
    finally:
        server.server_close()

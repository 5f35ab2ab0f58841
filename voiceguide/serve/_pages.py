"""The HTML pages (the session list and a session's player) and the static files they load."""

from __future__ import annotations

import html
from importlib import resources
from urllib.parse import quote

from voiceguide.durations import format_clock
from voiceguide.serve._library import Library, SessionFile

ASSETS = {"style.css": "text/css; charset=utf-8", "player.js": "text/javascript; charset=utf-8"}


def asset(name: str) -> bytes:
    return resources.files("voiceguide.serve").joinpath("web").joinpath(name).read_bytes()


def _link(prefix: str, session: SessionFile) -> str:
    return f"/{prefix}/{quote(session.name, safe='')}"


def _clock(seconds: float) -> str:
    return format_clock(round(seconds) * 1000)


def _page(title: str, body: str, script: str | None = None, feed: bool = False) -> bytes:
    head = f'<script src="/static/{script}" defer></script>' if script else ""
    if feed:  # discovery: a podcast app given the page's address finds the feed through it
        head += '<link rel="alternate" type="application/rss+xml" title="voiceguide sessions" href="/feed.xml">'
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1, viewport-fit=cover\">"
        "<meta name=\"color-scheme\" content=\"light dark\">"
        f"<title>{html.escape(title)}</title>"
        "<link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/static/style.css\">"
        f"{head}</head><body>{body}</body></html>\n"
    ).encode()


def list_page(library: Library, feed_url: str) -> bytes:
    sessions = library.sessions()
    if not sessions:
        items = ("<p class=\"empty\">No sessions here yet. Build one with "
                 "<code>voiceguide build ROUTINE</code>, then reload this page.</p>")
    else:
        rows = []
        for session in sessions:
            cover = f'<img src="{_link("cover", session)}" alt="">' if session.has_cover else "<span></span>"
            rows.append(
                f'<li><a class="session" href="{_link("play", session)}">{cover}'
                f'<span class="title">{html.escape(session.title)}</span>'
                f'<span class="meta"><span class="duration">{_clock(session.duration)}</span>{_count(session)}'
                '</span></a></li>')
        items = f'<ul class="sessions">{"".join(rows)}</ul>'
    subscribe = (
        '<section class="subscribe"><h2>In a podcast app</h2>'
        "<p>Add this address in a podcast app that reads feeds itself (AntennaPod, for example): each session "
        "becomes an episode, with its steps as chapters, to download and play offline.</p>"
        f'<p><a class="feed" href="/feed.xml">{html.escape(feed_url)}</a></p></section>')
    return _page("voiceguide sessions", f"<main><h1>Sessions</h1>{items}{subscribe}</main>", feed=True)


def _count(session: SessionFile) -> str:
    count = len(session.steps)
    return f" · {count} step{'s' if count != 1 else ''}" if count else ""


def player_page(session: SessionFile) -> bytes:
    steps = "".join(
        f'<li><button class="step" type="button" data-start="{step.start:.3f}" data-end="{step.end:.3f}">'
        f'<span class="step-title">{html.escape(step.title)}</span>'
        f'<span class="step-time">{_clock(step.start)}</span></button></li>'
        for step in session.steps)
    cover = f'<img class="cover" src="{_link("cover", session)}" alt="">' if session.has_cover else ""
    body = (
        f'<main class="player"><a class="back" href="/">‹ Sessions</a>{cover}'
        f'<h1>{html.escape(session.title)}</h1>'
        f'<audio id="audio" src="{_link("audio", session)}" preload="metadata"></audio>'
        '<button id="toggle" class="toggle" type="button" aria-label="Play">'
        '<span class="icon play" aria-hidden="true"></span></button>'
        f'<p id="clock" class="clock">0:00 / {_clock(session.duration)}</p>'
        f'<ol id="steps" class="steps">{steps}</ol>'
        f'<p><a class="download" href="{_link("download", session)}" download>Download the MP3 '
        f'({session.size / 1_000_000:.1f} MB)</a></p></main>'
    )
    return _page(session.title, body, "player.js")

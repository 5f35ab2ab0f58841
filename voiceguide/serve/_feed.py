"""The folder's sessions as a podcast feed (RSS 2.0 with the iTunes and Podcasting 2.0 namespaces), and each
session's chapters as Podcasting 2.0 JSON chapters; both read from the MP3s' own tags, so they agree with them.

The XML is built as a tree and serialised by ElementTree, which escapes every
title and description; characters XML 1.0 cannot hold at all are dropped.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from email.utils import format_datetime
from urllib.parse import quote

from voiceguide import __version__
from voiceguide.durations import format_clock
from voiceguide.serve._library import Chapter, Library, SessionFile

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
ATOM = "http://www.w3.org/2005/Atom"
FEED_TYPE = "application/rss+xml; charset=utf-8"
CHAPTERS_TYPE = "application/json+chapters"
CHAPTERS_VERSION = "1.2.0"
FEED_TITLE = "voiceguide sessions"  # the album a build writes (TALB), so the app and the MP3s say the same
FEED_PATH = "/feed.xml"

# The prefixes podcast apps and validators expect to see; ElementTree would otherwise write ns0, ns1.
for _prefix, _uri in (("itunes", ITUNES), ("podcast", PODCAST), ("atom", ATOM)):
    ET.register_namespace(_prefix, _uri)

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def link(base: str, route: str, session: SessionFile, suffix: str = "") -> str:
    """The absolute URL of one of a session's routes (audio, cover, chapters, play)."""
    return f"{base}/{route}/{quote(session.name + suffix, safe='')}"


def guid(session: SessionFile, digest: str) -> str:
    """The episode's id: the same for the same bytes under the same name, whenever and wherever it is served;
    a rebuild that changes a single byte is a new episode. The name is in it so that two copies stay two."""
    return "voiceguide-" + hashlib.sha256(f"{session.name}\0{digest}".encode()).hexdigest()[:32]


def feed(library: Library, base: str) -> bytes:
    """The RSS 2.0 feed of every session in the folder, newest first; URLs under ``base`` (scheme and host)."""
    episodes = library.episodes()
    rss = ET.Element("rss", {"version": "2.0"})
    channel = ET.SubElement(rss, "channel")
    _text(channel, "title", FEED_TITLE)
    _text(channel, "link", f"{base}/")
    _text(channel, "description", "Sessions built by voiceguide, each with its steps as chapters.")
    ET.SubElement(channel, f"{{{ATOM}}}link", {"href": base + FEED_PATH, "rel": "self", "type": FEED_TYPE.split(";")[0]})
    _text(channel, "generator", f"voiceguide {__version__}")
    if episodes:
        _text(channel, "lastBuildDate", _date(max(session.modified_ns for session, _ in episodes)))
    cover = next((session for session, _ in episodes if session.has_cover), None)
    if cover is not None:
        image = ET.SubElement(channel, "image")
        _text(image, "url", link(base, "cover", cover))
        _text(image, "title", FEED_TITLE)
        _text(image, "link", f"{base}/")
        ET.SubElement(channel, f"{{{ITUNES}}}image", {"href": link(base, "cover", cover)})
    _text(channel, f"{{{ITUNES}}}author", "voiceguide")
    ET.SubElement(channel, f"{{{ITUNES}}}category", {"text": "Health & Fitness"})
    _text(channel, f"{{{ITUNES}}}explicit", "false")
    _text(channel, f"{{{ITUNES}}}type", "episodic")
    for session, digest in episodes:
        _item(channel, session, digest, base)
    ET.indent(rss)
    written = io.BytesIO()
    # The declaration in its usual form; ElementTree would write its own with single quotes.
    written.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    ET.ElementTree(rss).write(written, encoding="utf-8", xml_declaration=False)
    return written.getvalue() + b"\n"


def _item(channel: ET.Element, session: SessionFile, digest: str, base: str) -> None:
    item = ET.SubElement(channel, "item")
    _text(item, "title", session.title)
    _text(item, "description", _notes(session))
    _text(item, "link", link(base, "play", session))
    ET.SubElement(item, "enclosure", {"url": link(base, "audio", session), "length": str(session.size),
                                      "type": "audio/mpeg"})
    _text(item, "guid", guid(session, digest)).set("isPermaLink", "false")
    _text(item, "pubDate", _date(session.modified_ns))
    # Whole seconds, as Apple's documentation asks; apps read it before downloading, the player then measures.
    _text(item, f"{{{ITUNES}}}duration", str(round(session.duration)))
    if session.has_cover:
        ET.SubElement(item, f"{{{ITUNES}}}image", {"href": link(base, "cover", session)})
    _text(item, f"{{{ITUNES}}}explicit", "false")
    if session.steps:
        ET.SubElement(item, f"{{{PODCAST}}}chapters", {"url": link(base, "chapters", session, ".json"),
                                                       "type": CHAPTERS_TYPE})


def _notes(session: SessionFile) -> str:
    """The description, then the steps with their start times, which several apps turn into links that seek."""
    steps = "\n".join(f"{format_clock(math.floor(step.start) * 1000)} {step.title}" for step in _in_time(session))
    parts = [session.description, f"Steps:\n{steps}" if steps else ""]
    return "\n\n".join(part for part in parts if part) or session.title


def chapters(session: SessionFile) -> bytes:
    """The session's chapters (its CHAP frames) as a Podcasting 2.0 JSON chapters file; times in seconds."""
    document = {
        "version": CHAPTERS_VERSION,
        "title": session.title,
        "fileName": session.name,
        "chapters": [{"startTime": round(step.start, 3), "endTime": round(step.end, 3), "title": step.title}
                     for step in _in_time(session)],
    }
    return (json.dumps(document, indent=2) + "\n").encode()


def _in_time(session: SessionFile) -> list[Chapter]:
    # The JSON format orders chapters by start time; a hand-made table of contents may not.
    return sorted(session.steps, key=lambda step: step.start)


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    element = ET.SubElement(parent, tag)
    element.text = _NOT_XML.sub("", text)
    return element


def _date(nanoseconds: int) -> str:
    """An RFC 822 date, as RSS 2.0 wants it."""
    return format_datetime(datetime.fromtimestamp(nanoseconds / 1e9, timezone.utc), usegmt=True)

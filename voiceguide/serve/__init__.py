"""Serve the sessions in a folder to a phone: a list and a player per session for its browser, the MP3s with
ranges, and a podcast feed of them for its podcast app.

Everything a page needs comes from this server (no CDN, no external fonts), so
it works on a Wi-Fi without internet. Each session's title, duration and steps
are read from the MP3's own tags (TIT2, CHAP), so a bare MP3 needs no sidecar.
Only the MP3s directly in the folder are reachable, read-only; every other path
is answered with 4xx.

The parts: _library reads the folder's MP3s, _pages draws the HTML, _feed
writes the podcast feed and its chapters, _http answers requests, _address
tells the phone where to look.
"""

from __future__ import annotations

from voiceguide.serve._address import base_from_host, is_local, lan_address, qr_code, qr_codes, url_for
from voiceguide.serve._feed import FEED_PATH, chapters, feed, guid
from voiceguide.serve._http import DEFAULT_HOST, DEFAULT_PORT, TIMEOUT, SessionServer
from voiceguide.serve._library import Chapter, Library, SessionFile

__all__ = [
    "DEFAULT_HOST", "DEFAULT_PORT", "FEED_PATH", "TIMEOUT", "Chapter", "Library", "SessionFile", "SessionServer",
    "base_from_host", "chapters", "feed", "guid", "is_local", "lan_address", "qr_code", "qr_codes", "url_for",
]

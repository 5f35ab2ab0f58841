"""The HTTP side: a read-only handler for the pages, the assets, the MP3s (with ranges), the podcast feed and its
chapters, and its server."""

from __future__ import annotations

import errno
import os
import re
import socket
import socketserver
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedIOBase
from typing import BinaryIO
from urllib.parse import quote, unquote

from voiceguide import __version__
from voiceguide.errors import ServeError
from voiceguide.serve._address import base_from_host, url_for
from voiceguide.serve._feed import CHAPTERS_TYPE, FEED_PATH, FEED_TYPE, chapters, feed
from voiceguide.serve._library import Library, SessionFile, cover_of
from voiceguide.serve._pages import ASSETS, asset, list_page, player_page

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# A phone that pauses stops reading; past this the connection is dropped and the
# phone asks again with a Range. It also bounds how long a slow client holds a thread.
TIMEOUT = 20.0
CHUNK = 64 * 1024
# The pages load nothing from elsewhere; the browser enforces it too.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
                               "media-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class BadRequest(Exception):
    """A request target no session or page can answer: refused with 400."""



def parse_target(target: str) -> list[str]:
    """The decoded path segments of a request target; BadRequest for anything that tries to leave the folder.

    Each segment is decoded on its own, so an encoded slash cannot join two of
    them, and a decoded ``..``, backslash or NUL is refused rather than resolved.
    """
    if not target.startswith("/") or target.startswith("//"):
        raise BadRequest("the request target must be a path")
    path = target.split("?", 1)[0].split("#", 1)[0]
    if path == "/":
        return []
    segments = []
    for raw in path[1:].split("/"):
        try:
            segment = unquote(raw, errors="strict")
        except UnicodeDecodeError:
            raise BadRequest("the path is not UTF-8") from None
        if segment in ("", ".", "..") or any(c in segment for c in "/\\\0") or not segment.isprintable():
            raise BadRequest("the path leaves the folder or is malformed")
        segments.append(segment)
    return segments


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The first and last byte of a ``Range: bytes=...`` header; None for several ranges (served whole).

    ValueError when the header is malformed or asks for nothing inside the file.
    """
    match = re.fullmatch(r"\s*bytes\s*=\s*(.*?)\s*", header)
    if match is None:
        raise ValueError("not a byte range")
    parts = [p.strip() for p in match.group(1).split(",")]
    if any(not re.fullmatch(r"\d*-\d*", p) or p == "-" for p in parts):
        raise ValueError("malformed range")
    if len(parts) > 1:
        return None
    first, last = parts[0].split("-")
    if not first:  # the last N bytes
        count = int(last)
        if count == 0 or size == 0:
            raise ValueError("empty suffix range")
        return max(0, size - count), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if end < start or start >= size:
        raise ValueError("range outside the file")
    return start, min(end, size - 1)



class Handler(BaseHTTPRequestHandler):
    """GET and HEAD for the pages, the assets and the sessions; nothing can be written."""

    server: SessionServer
    protocol_version = "HTTP/1.1"
    # Answers to unreadable request lines get a status line too, not a bare HTTP/0.9 body.
    default_request_version = "HTTP/1.0"
    server_version = f"voiceguide/{__version__}"
    error_content_type = "text/plain; charset=utf-8"
    error_message_format = "%(code)d %(message)s\n"

    def version_string(self) -> str:
        return self.server_version

    def setup(self) -> None:
        # typeshed calls timeout a class variable, but setup() reads it per instance: each server has its own.
        self.timeout = self.server.timeout_seconds  # type: ignore[misc]
        super().setup()

    def parse_request(self) -> bool:
        """The base parser, stricter: broken header lines are refused, and only GET and HEAD are answered."""
        if not super().parse_request():
            return False
        # The target as sent: the base class turns a leading '//' into '/', which would hide it from parse_target.
        self.target = self.requestline.split()[1]
        if self.headers.defects:
            self.send_error(HTTPStatus.BAD_REQUEST, "Malformed header")
            return False
        if self.command not in ("GET", "HEAD"):
            # Connection: close, since the request's body is never read.
            self._send_text(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET and HEAD only",
                            {"Allow": "GET, HEAD", "Connection": "close"})
            return False
        if "Content-Length" in self.headers or "Transfer-Encoding" in self.headers:
            self.close_connection = True  # an unread body would be taken for the next request
        return True

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, body: bool) -> None:
        try:
            segments = parse_target(self.target)
        except BadRequest as error:
            self._send_text(HTTPStatus.BAD_REQUEST, str(error))
            return
        library = self.server.library
        if not segments:
            page = list_page(library, self._base() + FEED_PATH)
            self._send(HTTPStatus.OK, page, "text/html; charset=utf-8", body=body)
            return
        if segments == [FEED_PATH[1:]]:
            self._send(HTTPStatus.OK, feed(library, self._base()), FEED_TYPE, body=body)
            return
        if len(segments) == 2 and segments[0] == "static" and segments[1] in ASSETS:
            self._send(HTTPStatus.OK, asset(segments[1]), ASSETS[segments[1]], body=body)
            return
        name = segments[1] if len(segments) == 2 else ""
        if segments[0] == "chapters":  # /chapters/NAME.mp3.json: the JSON of NAME.mp3
            name = name.removesuffix(".json") if name.endswith(".json") else ""
        session = library.session(name) if name else None
        if session is None:
            self._send_text(HTTPStatus.NOT_FOUND, "no such session or page")
        elif segments[0] == "play":
            self._send(HTTPStatus.OK, player_page(session), "text/html; charset=utf-8", body=body)
        elif segments[0] in ("audio", "download"):
            self._send_audio(session, attachment=segments[0] == "download", body=body)
        elif segments[0] == "cover" and (cover := cover_of(library, session)) is not None:
            self._send(HTTPStatus.OK, cover[1], cover[0], body=body)
        elif segments[0] == "chapters":
            self._send(HTTPStatus.OK, chapters(session), CHAPTERS_TYPE, body=body)
        else:
            self._send_text(HTTPStatus.NOT_FOUND, "no such session or page")

    def _base(self) -> str:
        """The scheme and host for absolute URLs: those the client reached this server by (its Host header, when
        it is a plain host and port), else the address it listens on."""
        host, port = self.server.server_address[:2]
        return base_from_host(self.headers.get("Host")) or url_for(str(host), int(port)).rstrip("/")

    def _send_audio(self, session: SessionFile, attachment: bool, body: bool) -> None:
        file = self.server.library.open(session.name)
        if file is None:  # gone since it was listed, or no longer a session
            self._send_text(HTTPStatus.NOT_FOUND, "no such session or page")
            return
        with file:
            stat = os.fstat(file.fileno())
            size = stat.st_size
            etag = f'"{stat.st_mtime_ns:x}-{size:x}"'
            headers = {"Accept-Ranges": "bytes", "ETag": etag, "Cache-Control": "no-cache",
                       "Last-Modified": self.date_time_string(int(stat.st_mtime))}
            if attachment:
                headers["Content-Disposition"] = _disposition(session.name)
            span = (0, size - 1)
            status = HTTPStatus.OK
            wanted = self.headers.get("Range")
            # If-Range: a range of a file rebuilt since the phone last read it would mix two sessions.
            if wanted is not None and self.headers.get("If-Range", etag) == etag:
                try:
                    asked = parse_range(wanted, size)
                except ValueError:
                    self._send_text(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, "range not satisfiable",
                                    {"Content-Range": f"bytes */{size}", **headers})
                    return
                if asked is not None:
                    span, status = asked, HTTPStatus.PARTIAL_CONTENT
                    headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{size}"
            self._head(status, "audio/mpeg", span[1] - span[0] + 1, headers)
            if body:
                _copy(file, self.wfile, span[0], span[1] - span[0] + 1)

    def _send(self, status: HTTPStatus, content: bytes, content_type: str, headers: dict[str, str] | None = None,
              body: bool = True) -> None:
        all_headers = {"Cache-Control": "no-cache", **(headers or {})}
        self._head(status, content_type, len(content), all_headers)
        if body:
            self.wfile.write(content)

    def _send_text(self, status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> None:
        self._send(status, f"{status.value} {status.phrase}: {message}\n".encode(), "text/plain; charset=utf-8",
                   headers, body=self.command != "HEAD")

    def _head(self, status: HTTPStatus, content_type: str, length: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        for name, value in {**SECURITY_HEADERS, **headers}.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a phone streaming a session makes many requests, none worth a line."""


def _disposition(name: str) -> str:
    fallback = re.sub(r'[^A-Za-z0-9._ -]', "_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _copy(source: BinaryIO, target: BufferedIOBase, start: int, count: int) -> None:
    source.seek(start)
    while count > 0:
        chunk = source.read(min(CHUNK, count))
        if not chunk:  # the file shrank under us: the client sees a short body and asks again
            break
        target.write(chunk)
        count -= len(chunk)


class SessionServer(ThreadingHTTPServer):
    """A threaded HTTP server for one folder's sessions; each client has its own thread and a timeout."""

    daemon_threads = True
    # Connections waiting to be accepted. With socketserver's 5, a page that a few phones open at once
    # overflows it, and each connection past it waits for the client to try again: seconds, growing. The
    # system caps it (somaxconn); accepting is quick, the waiting ones each get a thread at once.
    request_queue_size = 1024

    def __init__(self, library: Library, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                 timeout: float = TIMEOUT):
        self.library = library
        self.timeout_seconds = timeout
        try:
            self.address_family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
            super().__init__((host, port), Handler)
        except (OSError, UnicodeError) as error:
            raise ServeError(f"cannot listen on {host}:{port}: {getattr(error, 'strerror', None) or error}"
                             + ("; choose another --port, or --port 0 for any free one"
                                if getattr(error, "errno", None) == errno.EADDRINUSE else "")) from None

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host's name up in DNS, which can hang without a network.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    @property
    def port(self) -> int:
        return self.server_address[1]

    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up or sends garbage is its own problem: no traceback, keep serving."""


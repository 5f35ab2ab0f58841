"""Serve the sessions in a folder to a phone's browser: a list, a player per session, the MP3s with ranges.

Everything a page needs comes from this server (no CDN, no external fonts), so
it works on a Wi-Fi without internet. Each session's title, duration and steps
are read from the MP3's own tags (TIT2, CHAP), so a bare MP3 needs no sidecar.
Only the MP3s directly in the folder are reachable, read-only; every other path
is answered with 4xx.
"""

from __future__ import annotations

import errno
import html
import os
import re
import socket
import socketserver
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, unquote

from voiceguide import __version__
from voiceguide.durations import format_clock
from voiceguide.errors import InputError, ServeError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# A phone that pauses stops reading; past this the connection is dropped and the
# phone asks again with a Range. It also bounds how long a slow client holds a thread.
TIMEOUT = 20.0
CHUNK = 64 * 1024
ASSETS = {"style.css": "text/css; charset=utf-8", "player.js": "text/javascript; charset=utf-8"}
COVER_TYPES = ("image/jpeg", "image/png")
# The pages load nothing from elsewhere; the browser enforces it too.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; "
                               "media-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class Step:
    title: str
    start: float
    end: float


@dataclass(frozen=True)
class Session:
    """One MP3 in the folder, as its tags describe it; times in seconds."""

    name: str
    path: Path
    title: str
    duration: float
    size: int
    steps: tuple[Step, ...]
    has_cover: bool


class BadRequest(Exception):
    """A request target no session or page can answer: refused with 400."""


class Library:
    """The sessions of one folder, read from their tags once per (path, mtime, size)."""

    def __init__(self, folder: Path):
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder; build a session first (voiceguide build ROUTINE)")
        self.folder = folder.resolve()
        self._cache: dict[tuple[str, str, int, int], Session | None] = {}
        self._lock = threading.Lock()

    def sessions(self) -> list[Session]:
        """Every readable session in the folder, by title."""
        try:
            names = sorted(entry.name for entry in os.scandir(self.folder))
        except OSError:
            return []
        found = [s for s in map(self.session, names) if s is not None]
        return sorted(found, key=lambda s: (s.title.casefold(), s.name))

    def session(self, name: str) -> Session | None:
        """The session stored as ``name`` directly in the folder, or None for anything else."""
        path = self._inside(name)
        if path is None:
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        key = (name, str(path), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        session = read_session(name, path, stat.st_size)
        with self._lock:
            # A rebuilt file gets a new key: forget what was read from its old version.
            for old in [k for k in self._cache if k[:2] == key[:2]]:
                del self._cache[old]
            self._cache[key] = session
        return session

    def _inside(self, name: str) -> Path | None:
        """The real path of an MP3 named ``name`` in the folder, if it and its target are inside it."""
        if (not name.lower().endswith(".mp3") or name.startswith(".") or "/" in name or "\\" in name
                or "\0" in name or not _printable(name)):
            return None
        real = Path(os.path.realpath(self.folder / name))
        # A symlink may point to another file of the folder, never out of it.
        if not real.is_relative_to(self.folder) or real == self.folder or not real.is_file():
            return None
        return real


def _printable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8 cannot be put in a URL
        return False
    return name.isprintable()


def read_session(name: str, path: Path, size: int) -> Session | None:
    """Title, duration and steps from an MP3's tags; None when the file is not a readable MP3."""
    from mutagen import MutagenError
    from mutagen.mp3 import MP3

    try:
        audio = MP3(path)
    except (MutagenError, OSError):
        return None
    tags = audio.tags
    duration = float(audio.info.length)
    title = str(tags["TIT2"].text[0]) if tags is not None and "TIT2" in tags and tags["TIT2"].text else ""
    steps = _steps(tags, duration) if tags is not None else ()
    has_cover = tags is not None and any(frame.mime in COVER_TYPES for frame in tags.getall("APIC"))
    return Session(name, path, title.strip() or Path(name).stem, duration, size, steps, has_cover)


def _steps(tags, duration: float) -> tuple[Step, ...]:
    """The chapters in the order of the top-level table of contents, else by start time."""
    chapters = {chap.element_id: chap for chap in tags.getall("CHAP")}
    order = next((toc.child_element_ids for toc in tags.getall("CTOC") if toc.flags & 1), None)
    if order and all(element in chapters for element in order):
        ordered = [chapters[element] for element in order]
    else:
        ordered = sorted(chapters.values(), key=lambda chap: chap.start_time)
    steps = []
    for number, chap in enumerate(ordered, 1):
        title = chap.sub_frames.get("TIT2")
        name = str(title.text[0]).strip() if title is not None and title.text else ""
        start = min(chap.start_time / 1000, duration)
        steps.append(Step(name or f"Step {number}", start, max(start, min(chap.end_time / 1000, duration))))
    return tuple(steps)


def cover_of(session: Session) -> tuple[str, bytes] | None:
    """The session's cover art (front cover first) as (MIME type, bytes)."""
    from mutagen import MutagenError
    from mutagen.id3 import ID3

    try:
        pictures = [p for p in ID3(session.path).getall("APIC") if p.mime in COVER_TYPES]
    except (MutagenError, OSError):
        return None
    if not pictures:
        return None
    picture = min(pictures, key=lambda p: p.type != 3)
    return picture.mime, picture.data


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


def _asset(name: str) -> bytes:
    return resources.files("voiceguide").joinpath("web", name).read_bytes()


def _link(prefix: str, session: Session) -> str:
    return f"/{prefix}/{quote(session.name, safe='')}"


def _clock(seconds: float) -> str:
    return format_clock(round(seconds) * 1000)


def _page(title: str, body: str, script: str | None = None) -> bytes:
    scripts = f'<script src="/static/{script}" defer></script>' if script else ""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1, viewport-fit=cover\">"
        "<meta name=\"color-scheme\" content=\"light dark\">"
        f"<title>{html.escape(title)}</title>"
        "<link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/static/style.css\">"
        f"{scripts}</head><body>{body}</body></html>\n"
    ).encode()


def list_page(library: Library) -> bytes:
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
    return _page("voiceguide sessions", f"<main><h1>Sessions</h1>{items}</main>")


def _count(session: Session) -> str:
    count = len(session.steps)
    return f" · {count} step{'s' if count != 1 else ''}" if count else ""


def player_page(session: Session) -> bytes:
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
        self.timeout = self.server.timeout_seconds
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
            self._send(HTTPStatus.OK, list_page(library), "text/html; charset=utf-8", body=body)
            return
        if len(segments) == 2 and segments[0] == "static" and segments[1] in ASSETS:
            self._send(HTTPStatus.OK, _asset(segments[1]), ASSETS[segments[1]], body=body)
            return
        session = library.session(segments[1]) if len(segments) == 2 else None
        if session is None:
            self._send_text(HTTPStatus.NOT_FOUND, "no such session or page")
        elif segments[0] == "play":
            self._send(HTTPStatus.OK, player_page(session), "text/html; charset=utf-8", body=body)
        elif segments[0] in ("audio", "download"):
            self._send_audio(session, attachment=segments[0] == "download", body=body)
        elif segments[0] == "cover" and (cover := cover_of(session)) is not None:
            self._send(HTTPStatus.OK, cover[1], cover[0], body=body)
        else:
            self._send_text(HTTPStatus.NOT_FOUND, "no such session or page")

    def _send_audio(self, session: Session, attachment: bool, body: bool) -> None:
        file = _open(session.path)
        if file is None:  # gone since it was listed
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


def _open(path: Path) -> BinaryIO | None:
    try:
        return path.open("rb")
    except OSError:
        return None


def _disposition(name: str) -> str:
    fallback = re.sub(r'[^A-Za-z0-9._ -]', "_", name)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _copy(source: BinaryIO, target: BinaryIO, start: int, count: int) -> None:
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


def is_local(host: str) -> bool:
    """Whether ``host`` is reachable from this computer only."""
    return host in ("localhost", "::1") or host.startswith("127.")


def lan_address() -> str | None:
    """This computer's address on its local network, as a phone on the same Wi-Fi would reach it.

    Connecting a UDP socket sends no packet; it only makes the system pick the
    interface it would route through, whose address is the one we want.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere real
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith(("127.", "0.")) else address


def url_for(host: str, port: int) -> str:
    """The address to open: the LAN address when serving on every interface."""
    if host in ("0.0.0.0", "::", ""):
        host = lan_address() or "localhost"
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def qr_code(url: str) -> str:
    """The URL as a QR code drawn with block characters, for a phone's camera."""
    import io

    import segno

    text = io.StringIO()
    segno.make(url, error="m").terminal(out=text, compact=True)
    return text.getvalue()

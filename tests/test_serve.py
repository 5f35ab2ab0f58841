"""`voiceguide serve`: the pages used in a real headless Chromium, and the server tried with hostile requests.

Sessions are built with the real `voiceguide build`; what the pages show is
compared with the timeline `voiceguide plan --json` printed for them.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import segno
from browser import Browser, find_chromium
from click.testing import CliRunner
from mutagen.id3 import ID3, TIT2

from voiceguide.cli import cli
from voiceguide.durations import format_clock
from voiceguide.serve import Library, SessionServer

BREATH = """\
title: Short breath
chime: wood
intro: Sit tall.
steps:
  - {title: Breathe in, say: Breathe in., hold: 3s}
  - {title: Breathe out, say: Breathe out., hold: 3s}
  - {title: Rest, say: Rest., hold: 3s}
"""
STRETCH = """\
title: Neck stretch
steps:
  - {title: Tilt, say: Tilt your head., hold: 2s}
"""
AUDIO = "document.getElementById('audio')"
HIGHLIGHTED = "[...document.querySelectorAll('.step.current .step-title')].map(e => e.textContent)"


def build(routine: Path, output: Path, cache: Path) -> dict:
    """Build with the real CLI; return the plan, the timeline the MP3 is made from."""
    options = ["--cache-dir", str(cache), "-q"]
    planned = CliRunner().invoke(cli, ["plan", str(routine), "--json", *options])
    assert planned.exit_code == 0, planned.stderr
    built = CliRunner().invoke(cli, ["build", str(routine), "-o", str(output), *options])
    assert built.exit_code == 0, built.stderr
    return json.loads(planned.stdout)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, speech_cache: Path) -> tuple[Path, dict[str, dict]]:
    """A folder of two sessions beside things that must never be served, and the sessions' plans."""
    root = tmp_path_factory.mktemp("serve")
    folder = root / "output"
    plans = {}
    for name, text in (("breath", BREATH), ("stretch", STRETCH)):
        routine = root / f"{name}.yaml"
        routine.write_text(text)
        plans[name] = build(routine, folder / f"{name}.mp3", speech_cache)
    outside = root / "outside"
    outside.mkdir()
    shutil.copy(folder / "stretch.mp3", outside / "secret.mp3")
    (outside / "secret.txt").write_text("SECRET")
    (folder / "escape.mp3").symlink_to(outside / "secret.mp3")
    (folder / "outside").symlink_to(outside, target_is_directory=True)
    (folder / "sub").mkdir()
    shutil.copy(folder / "stretch.mp3", folder / "sub" / "inner.mp3")
    (folder / "notes.txt").write_text("not a session")
    (folder / "broken.mp3").write_bytes(b"this is not audio\n" * 100)
    shutil.copy(folder / "stretch.mp3", folder / ".stretch.mp3.part")
    return folder, plans


@pytest.fixture(scope="module")
def folder(built: tuple[Path, dict[str, dict]]) -> Path:
    return built[0]


@pytest.fixture(scope="module")
def plans(built: tuple[Path, dict[str, dict]]) -> dict[str, dict]:
    return built[1]


def start(library: Library, timeout: float = 5) -> tuple[SessionServer, threading.Thread]:
    server = SessionServer(library, "127.0.0.1", 0, timeout=timeout)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread


def stop(server: SessionServer, thread: threading.Thread) -> None:
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[SessionServer]:
    running, thread = start(Library(folder))
    yield running
    stop(running, thread)


@pytest.fixture(scope="module")
def base(server: SessionServer) -> str:
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium found: install Debian's `chromium` package to run the browser tests")
    running = Browser(executable, tmp_path_factory.mktemp("chromium-profile"))
    yield running
    running.close()


def clock(seconds: float) -> str:
    return format_clock(round(seconds) * 1000)


def open_player(browser: Browser, base: str, name: str) -> None:
    """Open the list and tap the session, as a person would."""
    browser.open(f"{base}/")
    browser.click(f'a.session[href="/play/{name}.mp3"]')
    browser.wait_for(f"location.pathname === '/play/{name}.mp3' && document.readyState === 'complete'")
    browser.wait_for(f"{AUDIO}.readyState >= 1")


def seek(browser: Browser, seconds: float) -> None:
    browser.evaluate(f"{AUDIO}.currentTime = {seconds}")
    browser.wait_for(f"!{AUDIO}.seeking && Math.abs({AUDIO}.currentTime - {seconds}) < 0.3")


# The pages, used in a real browser.

def test_list_shows_the_built_sessions(browser: Browser, base: str, plans: dict[str, dict]) -> None:
    browser.open(f"{base}/")
    shown = browser.evaluate("""[...document.querySelectorAll('a.session')].map(a => [
        a.querySelector('.title').textContent, a.querySelector('.meta').textContent, a.getAttribute('href')])""")
    # By title; the symlink out of the folder, the subfolder, the broken and hidden files are not sessions.
    assert [len(plans[name]["steps"]) for name in ("stretch", "breath")] == [1, 4]
    assert shown == [
        [plans["stretch"]["title"], f"{clock(plans['stretch']['duration'])} · 1 step", "/play/stretch.mp3"],
        [plans["breath"]["title"], f"{clock(plans['breath']['duration'])} · 4 steps", "/play/breath.mp3"],
    ]


def test_player_lists_the_steps_of_the_timeline(browser: Browser, base: str, plans: dict[str, dict]) -> None:
    open_player(browser, base, "breath")
    steps = browser.evaluate("""[...document.querySelectorAll('.step')].map(b => [
        b.querySelector('.step-title').textContent, parseFloat(b.dataset.start), parseFloat(b.dataset.end)])""")
    planned = plans["breath"]["steps"]
    assert len(planned) == 4
    assert [title for title, _, _ in steps] == [step["title"] for step in planned]
    for (_, begin, end), step in zip(steps, planned):
        assert begin == pytest.approx(step["start"], abs=0.001)
        assert end == pytest.approx(step["end"], abs=0.001)
    assert browser.evaluate("document.querySelector('h1').textContent") == plans["breath"]["title"]
    assert browser.evaluate(f"{AUDIO}.duration") == pytest.approx(plans["breath"]["duration"], abs=0.1)


def test_player_plays_and_pauses(browser: Browser, base: str) -> None:
    open_player(browser, base, "breath")
    assert browser.evaluate(f"{AUDIO}.paused") is True
    browser.click("#toggle")
    browser.wait_for(f"!{AUDIO}.paused && {AUDIO}.currentTime > 1.2", timeout=10)
    assert browser.evaluate("document.getElementById('toggle').getAttribute('aria-label')") == "Pause"
    now, shown = browser.evaluate(f"[{AUDIO}.currentTime, document.getElementById('clock').textContent]")
    minutes, seconds = shown.split(" / ")[0].split(":")
    assert now - 1.5 <= int(minutes) * 60 + int(seconds) <= now
    browser.click("#toggle")
    browser.wait_for(f"{AUDIO}.paused")
    held = browser.evaluate(f"{AUDIO}.currentTime")
    time.sleep(0.4)
    assert browser.evaluate(f"{AUDIO}.currentTime") == held
    assert browser.evaluate("document.getElementById('toggle').getAttribute('aria-label')") == "Play"


def test_highlight_follows_the_playback_time(browser: Browser, base: str, plans: dict[str, dict]) -> None:
    open_player(browser, base, "breath")
    steps = plans["breath"]["steps"]
    for step in reversed(steps):
        seek(browser, (step["start"] + step["end"]) / 2)
        assert browser.wait_for(f"{HIGHLIGHTED}.length === 1 && {HIGHLIGHTED}[0] === {json.dumps(step['title'])}")
    # Played across the boundary between two steps, the highlight moves on by itself.
    boundary = steps[2]["start"]
    seek(browser, boundary - 0.8)
    browser.wait_for(f"{HIGHLIGHTED}[0] === {json.dumps(steps[1]['title'])}", timeout=1)
    browser.evaluate(f"{AUDIO}.play()")
    browser.wait_for(f"{AUDIO}.currentTime > {boundary + 0.1}", timeout=5)
    browser.wait_for(f"{HIGHLIGHTED}[0] === {json.dumps(steps[2]['title'])}", timeout=1)
    assert browser.evaluate(f"{AUDIO}.paused") is False
    browser.evaluate(f"{AUDIO}.pause()")


def test_tapping_a_step_plays_from_its_start(browser: Browser, base: str, plans: dict[str, dict]) -> None:
    open_player(browser, base, "breath")
    steps = plans["breath"]["steps"]
    for number in (3, 1, 2, 0):
        step = steps[number]
        browser.evaluate(f"{AUDIO}.pause()")
        browser.click(f"#steps li:nth-child({number + 1}) .step")
        browser.wait_for(f"!{AUDIO}.seeking && !{AUDIO}.paused")
        now = browser.evaluate(f"{AUDIO}.currentTime")
        assert step["start"] - 0.05 <= now <= step["start"] + 0.5, (step, now)
        assert browser.evaluate(HIGHLIGHTED) == [step["title"]]
    browser.evaluate(f"{AUDIO}.pause()")


def test_download_link_gives_the_whole_mp3(browser: Browser, base: str, server: SessionServer,
                                           folder: Path) -> None:
    open_player(browser, base, "stretch")
    link = browser.evaluate("(a => [a.getAttribute('href'), a.hasAttribute('download')])"
                            "(document.querySelector('a.download'))")
    assert link == ["/download/stretch.mp3", True]
    status, headers, body = get(server, link[0])
    assert status == 200
    assert headers["content-disposition"].startswith('attachment; filename="stretch.mp3"')
    assert headers["content-type"] == "audio/mpeg"
    assert body == (folder / "stretch.mp3").read_bytes()


def test_pages_load_nothing_from_elsewhere(browser: Browser, base: str, server: SessionServer) -> None:
    open_player(browser, base, "breath")
    loaded = browser.evaluate("performance.getEntriesByType('resource').map(e => e.name)")
    assert {f"{base}/static/style.css", f"{base}/static/player.js", f"{base}/audio/breath.mp3"} <= set(loaded)
    assert all(url.startswith(f"{base}/") for url in loaded), loaded
    for path in ("/", "/play/breath.mp3", "/static/style.css", "/static/player.js"):
        status, headers, body = get(server, path)
        assert status == 200
        # The feed's address is shown for copying into a podcast app; it leads here too.
        shown = body.replace(f"http://127.0.0.1:{server.port}/feed.xml".encode(), b"")
        assert b"://" not in shown and b"@import" not in body, path
        assert "default-src 'none'" in headers["content-security-policy"]


# The server, with raw requests.

def get(server: SessionServer, path: str, headers: dict[str, str] | None = None,
        method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def raw(server: SessionServer, request: bytes) -> tuple[int | None, bytes]:
    """Send bytes as they are; the status (None if the server only closed) and everything it answered."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(request)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    if not answer.startswith(b"HTTP/1."):
        return None, answer
    return int(answer.split(b" ", 2)[1]), answer


def assert_still_serving(server: SessionServer, folder: Path) -> None:
    status, _, body = get(server, "/")
    assert status == 200 and b"Short breath" in body
    status, _, body = get(server, "/audio/breath.mp3", {"Range": "bytes=0-99"})
    assert status == 206 and body == (folder / "breath.mp3").read_bytes()[:100]


REFUSED = [
    "/audio/../breath.mp3", "/../../../../etc/passwd", "/audio/../../../../etc/passwd",
    "/audio/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/audio/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "/play/./breath.mp3",
    "/audio/..%2f..%2foutside%2fsecret.mp3", "/static/../serve.py", "/static/%2e%2e%2fserve.py",
    "/audio/..\\..\\etc\\passwd", "/audio/%5c..%5coutside%5csecret.txt", "/audio/breath.mp3%00.txt", "/audio/%00",
    "//etc/passwd", "/audio//etc/passwd", "/audio/%2Fetc%2Fpasswd", "http://127.0.0.1/etc/passwd", "*",
    "/audio/%ff.mp3", "/audio/breath.mp3%0d%0aX-Injected:%201", "/static/", "/play/", "/audio/outside%2Fsecret.mp3",
    "/audio/sub%2Finner.mp3",
]
NOT_FOUND = [
    "/audio/escape.mp3", "/play/escape.mp3", "/download/escape.mp3", "/cover/escape.mp3", "/etc/passwd",
    "/audio/outside/secret.mp3", "/outside/secret.txt", "/audio/%252e%252e%252fescape.mp3",
    "/play/sub", "/audio/sub", "/sub/inner.mp3", "/audio/notes.txt", "/notes.txt",
    "/audio/.stretch.mp3.part", "/audio/broken.mp3", "/play/broken.mp3", "/static/serve.py", "/audio", "/output",
]


@pytest.mark.parametrize("target", REFUSED + NOT_FOUND)
def test_nothing_outside_the_sessions_is_served(target: str, server: SessionServer, folder: Path) -> None:
    status, answer = raw(server, f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status == (400 if target in REFUSED else 404), answer[:200]
    for secret in (b"SECRET", b"root:", b"ID3", b"X-Injected"):
        assert secret not in answer
    assert_still_serving(server, folder)


LONG = b"a" * 70_000
MALFORMED = [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET\r\n\r\n", 400),
    (b"GET / HTTP/1.1 extra\r\n\r\n", 400),
    (b"GET / HTTP/x.y\r\n\r\n", 400),
    (b"GET / FTP/1.0\r\n\r\n", 400),
    (b"\x00\x01\x02\xff\xfe\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost 127.0.0.1\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nX-Long: " + LONG + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: y\r\n" % n for n in range(150)) + b"\r\n", 431),
    (b"GET /" + LONG + b" HTTP/1.1\r\n\r\n", 414),
    (b"POST /audio/breath.mp3 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405),
    (b"PUT /audio/breath.mp3 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", 405),
    (b"DELETE /audio/breath.mp3 HTTP/1.1\r\n\r\n", 405),
    (b"BREW / HTTP/1.1\r\n\r\n", 405),
]


@pytest.mark.parametrize("request_bytes, expected", MALFORMED, ids=[repr(r[:24]) for r, _ in MALFORMED])
def test_malformed_requests_get_4xx(request_bytes: bytes, expected: int, server: SessionServer, folder: Path) -> None:
    before = hashlib.sha256((folder / "breath.mp3").read_bytes()).hexdigest()
    status, answer = raw(server, request_bytes)
    assert status == expected, answer[:200]
    assert hashlib.sha256((folder / "breath.mp3").read_bytes()).hexdigest() == before
    assert_still_serving(server, folder)


def test_audio_is_served_for_streaming(server: SessionServer, folder: Path) -> None:
    data = (folder / "breath.mp3").read_bytes()
    size = len(data)
    status, headers, body = get(server, "/audio/breath.mp3")
    assert (status, headers["content-type"], headers["accept-ranges"]) == (200, "audio/mpeg", "bytes")
    assert body == data and "content-disposition" not in headers
    status, headers, body = get(server, "/audio/breath.mp3", method="HEAD")
    assert (status, headers["content-length"], body) == (200, str(size), b"")
    for asked, first, last in (("bytes=0-9", 0, 9), ("bytes=-10", size - 10, size - 1),
                               (f"bytes={size - 5}-", size - 5, size - 1), ("bytes=100-0099999999", 100, size - 1),
                               (" bytes = 20-29 ", 20, 29)):
        status, headers, body = get(server, "/audio/breath.mp3", {"Range": asked})
        assert status == 206, asked
        assert headers["content-range"] == f"bytes {first}-{last}/{size}"
        assert body == data[first : last + 1]
    # Several ranges at once are answered whole; a range of a file rebuilt since (If-Range) too.
    assert get(server, "/audio/breath.mp3", {"Range": "bytes=0-0,5-9"})[:1] == (200,)
    status, _, body = get(server, "/audio/breath.mp3", {"Range": "bytes=0-9", "If-Range": '"old"'})
    assert (status, len(body)) == (200, size)


def test_bad_ranges_get_416(server: SessionServer, folder: Path) -> None:
    size = (folder / "breath.mp3").stat().st_size
    for asked in ("bytes=abc", "bytes=5-2", f"bytes={size}-", "bytes=99999999999-", "items=0-1", "bytes=-0",
                  "bytes=", "bytes=--1", "bytes=1-2-3", "bytes=0x10-20", "bytes=0-1,x"):
        status, headers, body = get(server, "/audio/breath.mp3", {"Range": asked})
        assert status == 416, asked
        assert headers["content-range"] == f"bytes */{size}"
        assert b"ID3" not in body
    assert_still_serving(server, folder)


def test_clients_that_hang_or_vanish_do_not_stop_the_server(folder: Path) -> None:
    server, thread = start(Library(folder), timeout=0.5)
    try:
        silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        slow.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        began = time.monotonic()
        assert_still_serving(server, folder)
        assert time.monotonic() - began < 1
        for hanging in (silent, slow):
            assert hanging.recv(100) == b""  # closed by the server after its timeout
            hanging.close()
        assert time.monotonic() - began < 3
        # A player that hangs up in the middle of a download.
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as quitter:
                quitter.sendall(b"GET /audio/breath.mp3 HTTP/1.1\r\nHost: x\r\n\r\n")
                quitter.recv(1000)
        assert_still_serving(server, folder)
    finally:
        stop(server, thread)


# The library: what is a session, and what is read from it.

def test_sessions_are_read_from_the_mp3_and_read_again_when_it_changes(folder: Path, tmp_path: Path) -> None:
    shutil.copy(folder / "breath.mp3", tmp_path / "a.mp3")
    library = Library(tmp_path)
    first = library.session("a.mp3")
    assert first is not None and first.title == "Short breath" and len(first.steps) == 4
    assert library.session("a.mp3") is first
    tags = ID3(tmp_path / "a.mp3")
    tags.add(TIT2(encoding=3, text="Renamed"))
    tags.save(v2_version=3)
    assert library.session("a.mp3").title == "Renamed"


def test_a_bare_mp3_is_a_session_named_after_its_file(folder: Path, tmp_path: Path) -> None:
    shutil.copy(folder / "breath.mp3", tmp_path / "bare.mp3")
    ID3(tmp_path / "bare.mp3").delete()
    session = Library(tmp_path).session("bare.mp3")
    assert session is not None
    assert (session.title, session.steps, session.has_cover) == ("bare", (), False)
    assert session.duration == pytest.approx(Library(folder).session("breath.mp3").duration, abs=0.05)


def test_a_symlink_inside_the_folder_is_a_session(folder: Path, tmp_path: Path) -> None:
    shutil.copy(folder / "stretch.mp3", tmp_path / "real.mp3")
    (tmp_path / "link.mp3").symlink_to(tmp_path / "real.mp3")
    (tmp_path / "out.mp3").symlink_to(folder / "stretch.mp3")
    assert [s.name for s in Library(tmp_path).sessions()] == ["link.mp3", "real.mp3"]


def test_names_with_spaces_and_accents_are_served(folder: Path, tmp_path: Path) -> None:
    name = "Mañana 1.mp3"
    shutil.copy(folder / "stretch.mp3", tmp_path / name)
    server, thread = start(Library(tmp_path))
    try:
        status, _, page = get(server, "/")
        assert status == 200 and b'href="/play/Ma%C3%B1ana%201.mp3"' in page
        status, headers, body = get(server, "/download/Ma%C3%B1ana%201.mp3")
        assert status == 200 and body == (tmp_path / name).read_bytes()
        assert headers["content-disposition"] == (
            "attachment; filename=\"Ma_ana 1.mp3\"; filename*=UTF-8''Ma%C3%B1ana%201.mp3")
    finally:
        stop(server, thread)


# The command.

def fake_serve_forever(seen: list[int]):
    """Stands in for the server loop: notes the port it listens on, then acts as Ctrl-C."""
    def serve_forever(self: SessionServer, poll_interval: float = 0.5) -> None:
        socket.create_connection(("127.0.0.1", self.port), timeout=5).close()
        seen.append(self.port)
        raise KeyboardInterrupt

    return serve_forever


def test_serve_prints_the_address_and_stops_on_ctrl_c(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(SessionServer, "serve_forever", fake_serve_forever(seen))
    result = CliRunner().invoke(cli, ["serve", str(folder), "--port", "0"])
    assert result.exit_code == 0, result.output
    (port,) = seen
    assert result.stdout.splitlines() == [
        f"Serving 2 sessions from {folder} at http://127.0.0.1:{port}/",
        f"Podcast feed: http://127.0.0.1:{port}/feed.xml",
        "Only this computer can open it; for a phone on the same Wi-Fi, add --host 0.0.0.0.",
        "Press Ctrl-C to stop.",
        "stopped",
    ]
    assert result.stderr == ""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.mark.parametrize("host", ["0.0.0.0", "0"])  # `--host 0` is every interface too, as the system reads it
def test_serve_on_the_network_says_so_and_shows_a_qr_code(host: str, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(SessionServer, "serve_forever", fake_serve_forever(seen))
    monkeypatch.setattr("voiceguide.serve._address.lan_address", lambda: "192.0.2.7")
    monkeypatch.setenv("COLUMNS", "40")  # the page's code first, the feed's under it (see test_feed.py)
    result = CliRunner().invoke(cli, ["serve", str(folder), "--host", host, "--port", "0"])
    assert result.exit_code == 0, result.output
    url = f"http://192.0.2.7:{seen[0]}/"
    lines = result.stdout.splitlines()
    assert lines[0] == f"Serving 2 sessions from {folder} at {url}"
    assert result.stderr == "notice: the sessions are visible to every device on this network while this runs\n"
    assert lines[-2:] == ["Press Ctrl-C to stop.", "stopped"]
    codes = [segno.make(url, error=level, boost_error=False) for level in "lmqh"]
    assert lines[1:3] == [f"Podcast feed: {url}feed.xml", "The page, for a browser"]
    page_code = lines[3 : lines.index("The feed, for a podcast app")]
    assert qr_matrix(page_code) in [tuple(tuple(row) for row in code.matrix) for code in codes]


def qr_matrix(lines: list[str]) -> tuple[tuple[int, ...], ...]:
    """Read a QR code printed with half blocks (light on dark, two rows a line) back into its dark modules."""
    top = {"█": 0, "▀": 0, "▄": 1, " ": 1}
    bottom = {"█": 0, "▀": 1, "▄": 0, " ": 1}
    rows = []
    for line in lines:
        rows += [[top[c] for c in line], [bottom[c] for c in line]]
    border = next(n for n, row in enumerate(rows) if any(row))
    size = len(rows[0]) - 2 * border
    return tuple(tuple(row[border : border + size]) for row in rows[border : border + size])


def test_serve_refuses_a_missing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["serve", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    missing = tmp_path / "nothing"
    assert result.stderr == f"{missing}: no such folder; build a session first (voiceguide build ROUTINE)\n"


def test_serve_says_when_the_port_is_taken(folder: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["serve", str(folder), "--port", str(port)])
    assert result.exit_code == 1
    assert result.stderr == (f"cannot listen on 127.0.0.1:{port}: Address already in use; "
                             "choose another --port, or --port 0 for any free one\n")

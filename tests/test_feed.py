"""`voiceguide serve`'s podcast feed: parsed as a podcast app parses it, and every URL in it followed.

Sessions are built with the real `voiceguide build`; the feed's lengths,
durations and chapters are compared with the MP3 files, their decoded audio,
their CHAP frames and the timeline `voiceguide plan --json` printed for them.
"""

from __future__ import annotations

import http.client
import io
import json
import shutil
import socket
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import segno
from audio_probe import decode, duration
from click.testing import CliRunner
from mutagen.id3 import ID3, TIT2
from test_serve import build, fake_serve_forever, get, qr_matrix, start, stop
from test_serve_races import racing  # noqa: F401  (a fixture)

from voiceguide.cli import cli
from voiceguide.serve import Library, SessionServer, base_from_host

ITUNES = "http://www.itunes.com/dtds/podcast-1.0.dtd"
PODCAST = "https://podcastindex.org/namespace/1.0"
BREATH = """\
title: Short breath
chime: wood
steps:
  - {title: Breathe in, say: Breathe in., hold: 3s}
  - {title: Breathe out, say: Breathe out., hold: 3s}
"""
# XML's special characters in every text the feed carries.
HIPS = """\
title: 'Hips & "knees" <easy>'
description: Slow & gentle, <no> bouncing.
steps:
  - {title: 'Tilt <left> & back', say: Tilt your hips., hold: 2s}
"""
NECK = """\
title: Neck
steps:
  - {title: Turn, say: Turn your head., hold: 1s}
  - {title: Rest, say: Rest., hold: 1s}
"""
ROUTINES = {"breath": BREATH, "hips": HIPS, "neck": NECK}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, speech_cache: Path) -> tuple[Path, dict[str, dict]]:
    """A folder of three sessions beside things that must never be in the feed, and the sessions' plans."""
    root = tmp_path_factory.mktemp("feed")
    folder = root / "output"
    plans = {}
    for name, text in ROUTINES.items():
        routine = root / f"{name}.yaml"
        routine.write_text(text)
        plans[name] = build(routine, folder / f"{name}.mp3", speech_cache)
    outside = root / "outside"
    outside.mkdir()
    shutil.copy(folder / "neck.mp3", outside / "secret.mp3")
    tags = ID3(outside / "secret.mp3")
    tags.add(TIT2(encoding=3, text="SECRET OUTSIDE"))
    tags.save(v2_version=3)
    (folder / "escape.mp3").symlink_to(outside / "secret.mp3")
    (folder / "broken.mp3").write_bytes(b"this is not audio\n" * 100)
    shutil.copy(folder / "neck.mp3", folder / ".neck.mp3.part")
    return folder, plans


@pytest.fixture(scope="module")
def folder(built: tuple[Path, dict[str, dict]]) -> Path:
    return built[0]


@pytest.fixture(scope="module")
def plans(built: tuple[Path, dict[str, dict]]) -> dict[str, dict]:
    return built[1]


@pytest.fixture(scope="module")
def server(folder: Path) -> Iterator[SessionServer]:
    running, thread = start(Library(folder))
    yield running
    stop(running, thread)


def fetch_feed(server: SessionServer, headers: dict[str, str] | None = None) -> tuple[bytes, ET.Element]:
    status, answered, body = get(server, "/feed.xml", headers)
    assert status == 200
    assert answered["content-type"] == "application/rss+xml; charset=utf-8"
    return body, ET.fromstring(body)


def items(root: ET.Element) -> dict[str, ET.Element]:
    """The feed's items by the name of the file their enclosure leads to."""
    found = {}
    for item in root.iter("item"):
        name = urlsplit(item.find("enclosure").get("url")).path.rsplit("/", 1)[1]
        assert name not in found
        found[name] = item
    return found


def follow(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET an absolute URL of the feed, where it says: its host and port, not ours."""
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.hostname and parts.port
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", parts.path, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def guids(server: SessionServer) -> dict[str, str]:
    return {name: item.findtext("guid") for name, item in items(fetch_feed(server)[1]).items()}


# The feed as a podcast app reads it.

def test_the_feed_is_rss_2_with_the_podcast_namespaces(server: SessionServer, plans: dict[str, dict]) -> None:
    body, root = fetch_feed(server)
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n')
    declared = dict(prefix for _, prefix in ET.iterparse(io.BytesIO(body), events=["start-ns"]))
    assert declared["itunes"] == ITUNES and declared["podcast"] == PODCAST
    assert (root.tag, root.get("version")) == ("rss", "2.0")
    (channel,) = root.findall("channel")
    base = f"http://127.0.0.1:{server.port}"
    assert channel.findtext("title") == "voiceguide sessions"
    assert channel.findtext("link") == f"{base}/"
    assert channel.findtext("description")
    assert channel.findtext(f"{{{ITUNES}}}explicit") == "false"
    assert channel.find(f"{{{ITUNES}}}image").get("href").startswith(f"{base}/cover/")
    # One item per session; the link out of the folder, the broken and the hidden file are none.
    found = items(root)
    assert sorted(found) == ["breath.mp3", "hips.mp3", "neck.mp3"]
    for name, item in found.items():
        assert item.findtext("title") == plans[name.removesuffix(".mp3")]["title"]
        assert item.find("guid").get("isPermaLink") == "false"
        assert item.findtext("link") == f"{base}/play/{name}"
        assert parsedate_to_datetime(item.findtext("pubDate")).tzinfo is not None
    assert b"SECRET" not in body


def test_every_enclosure_is_its_mp3_and_answers_ranges(server: SessionServer, folder: Path) -> None:
    for name, item in items(fetch_feed(server)[1]).items():
        data = (folder / name).read_bytes()
        enclosure = item.find("enclosure")
        assert enclosure.get("type") == "audio/mpeg"
        assert int(enclosure.get("length")) == len(data)
        url = enclosure.get("url")
        assert url == f"http://127.0.0.1:{server.port}/audio/{name}"
        for asked, first, last in (("bytes=0-1023", 0, 1023), ("bytes=-4096", len(data) - 4096, len(data) - 1),
                                   (f"bytes={len(data) // 2}-", len(data) // 2, len(data) - 1)):
            status, headers, body = follow(url, {"Range": asked})
            assert status == 206, (name, asked)
            assert headers["content-range"] == f"bytes {first}-{last}/{len(data)}"
            assert headers["accept-ranges"] == "bytes"
            assert body == data[first : last + 1]


def test_durations_are_the_decoded_mp3s(server: SessionServer, folder: Path, plans: dict[str, dict]) -> None:
    for name, item in items(fetch_feed(server)[1]).items():
        written = item.findtext(f"{{{ITUNES}}}duration")
        assert written.isdigit(), written  # whole seconds
        decoded = duration(decode(folder / name))
        assert abs(int(written) - decoded) <= 0.5 + 0.03, (name, written, decoded)
        assert decoded == pytest.approx(plans[name.removesuffix(".mp3")]["duration"], abs=0.05)


def test_chapters_json_agrees_with_the_chap_frames_and_the_timeline(server: SessionServer, folder: Path,
                                                                    plans: dict[str, dict]) -> None:
    for name, item in items(fetch_feed(server)[1]).items():
        link = item.find(f"{{{PODCAST}}}chapters")
        assert link.get("type") == "application/json+chapters"
        assert link.get("url") == f"http://127.0.0.1:{server.port}/chapters/{name}.json"
        status, headers, body = follow(link.get("url"))
        assert (status, headers["content-type"]) == (200, "application/json+chapters")
        document = json.loads(body)
        assert document["version"] == "1.2.0"
        assert document["title"] == item.findtext("title")
        frames = sorted(ID3(folder / name).getall("CHAP"), key=lambda chap: chap.start_time)
        steps = plans[name.removesuffix(".mp3")]["steps"]
        assert len(document["chapters"]) == len(frames) == len(steps) >= 1
        for chapter, frame, step in zip(document["chapters"], frames, steps):
            assert chapter["title"] == frame.sub_frames["TIT2"].text[0] == step["title"]
            assert chapter["startTime"] == frame.start_time / 1000
            assert chapter["endTime"] == frame.end_time / 1000
            assert chapter["startTime"] == pytest.approx(step["start"], abs=0.001)
            assert chapter["endTime"] == pytest.approx(step["end"], abs=0.001)
        starts = [chapter["startTime"] for chapter in document["chapters"]]
        assert starts == sorted(starts) and starts[0] == 0


def test_covers_are_the_mp3s_own_pictures(server: SessionServer, folder: Path) -> None:
    for name, item in items(fetch_feed(server)[1]).items():
        status, headers, body = follow(item.find(f"{{{ITUNES}}}image").get("href"))
        (picture,) = ID3(folder / name).getall("APIC")
        assert (status, headers["content-type"], body) == (200, picture.mime, picture.data)


def test_xml_special_characters_are_escaped(server: SessionServer) -> None:
    body, root = fetch_feed(server)
    item = items(root)["hips.mp3"]
    assert item.findtext("title") == 'Hips & "knees" <easy>'
    assert item.findtext("description") == "Slow & gentle, <no> bouncing.\n\nSteps:\n0:00 Tilt <left> & back"
    assert b"<title>Hips &amp; \"knees\" &lt;easy&gt;</title>" in body
    assert b"<no>" not in body and b"<left>" not in body
    document = json.loads(follow(item.find(f"{{{PODCAST}}}chapters").get("url"))[2])
    assert document["chapters"][0]["title"] == "Tilt <left> & back"


def test_characters_xml_cannot_hold_are_left_out(folder: Path, tmp_path: Path) -> None:
    shutil.copy(folder / "neck.mp3", tmp_path / "odd.mp3")
    tags = ID3(tmp_path / "odd.mp3")
    tags.add(TIT2(encoding=3, text="Bell\x07 and\x1b tab\tend\ufffe"))
    tags.save(v2_version=3)
    server, thread = start(Library(tmp_path))
    try:
        assert items(fetch_feed(server)[1])["odd.mp3"].findtext("title") == "Bell and tab\tend"
    finally:
        stop(server, thread)


# The guid: an episode is its bytes.

def test_guid_is_stable_and_changes_with_the_mp3(folder: Path, tmp_path: Path, speech_cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    served = tmp_path / "output"
    shutil.copytree(folder, served, symlinks=True)
    hashed: list[object] = []
    from voiceguide.serve import _library

    real_sha256 = _library._sha256
    monkeypatch.setattr(_library, "_sha256", lambda file: hashed.append(file) or real_sha256(file))
    server, thread = start(Library(served))
    try:
        first = guids(server)
        assert len(set(first.values())) == 3
        assert guids(server) == first
        # Each file is read whole once, not on every request of the feed.
        assert len(hashed) == 3
    finally:
        stop(server, thread)
    server, thread = start(Library(served))  # as after a restart
    try:
        assert guids(server) == first
        # The same session rebuilt with another hold is a new episode; the others stay what they were.
        routine = tmp_path / "breath.yaml"
        routine.write_text(BREATH)
        result = CliRunner().invoke(cli, ["build", str(routine), "-o", str(served / "breath.mp3"), "--hold",
                                          "breathe-in=4s", "--cache-dir", str(speech_cache), "-q"])
        assert result.exit_code == 0, result.stderr
        _, root = fetch_feed(server)
        after = {name: item.findtext("guid") for name, item in items(root).items()}
        assert after["breath.mp3"] != first["breath.mp3"]
        assert {k: v for k, v in after.items() if k != "breath.mp3"} == {k: v for k, v in first.items()
                                                                          if k != "breath.mp3"}
        item = items(root)["breath.mp3"]
        assert int(item.find("enclosure").get("length")) == (served / "breath.mp3").stat().st_size
        assert int(item.findtext(f"{{{ITUNES}}}duration")) == round(duration(decode(served / "breath.mp3")))
        document = json.loads(follow(item.find(f"{{{PODCAST}}}chapters").get("url"))[2])
        assert document["chapters"][1]["startTime"] == pytest.approx(
            json.loads(CliRunner().invoke(cli, ["plan", str(routine), "--json", "--hold", "breathe-in=4s",
                                                "--cache-dir", str(speech_cache), "-q"]).stdout)["steps"][1]["start"],
            abs=0.001)
        # A copy under another name is another episode.
        shutil.copy(served / "neck.mp3", served / "neck-again.mp3")
        copies = guids(server)
        assert copies["neck-again.mp3"] != copies["neck.mp3"] == first["neck.mp3"]
    finally:
        stop(server, thread)


def test_a_file_changing_while_it_is_read_waits_for_the_next_feed(folder: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """An MP3 still being copied into the folder is not offered with a length and guid of half of it."""
    shutil.copy(folder / "neck.mp3", tmp_path / "neck.mp3")
    from voiceguide.serve import _library

    real_sha256 = _library._sha256

    def growing(file):  # type: ignore[no-untyped-def]
        digest = real_sha256(file)
        with open(tmp_path / "neck.mp3", "ab") as more:
            more.write(bytes(417))
        return digest

    library = Library(tmp_path)
    monkeypatch.setattr(_library, "_sha256", growing)
    assert library.episodes() == []
    monkeypatch.setattr(_library, "_sha256", real_sha256)
    ((session, _),) = library.episodes()
    assert session.size == (tmp_path / "neck.mp3").stat().st_size


# Addresses: what the phone asked for, checked.

def test_urls_follow_the_host_the_phone_asked_for(server: SessionServer) -> None:
    _, root = fetch_feed(server, {"Host": "192.0.2.7:8123"})
    urls = [item.find("enclosure").get("url") for item in root.iter("item")]
    assert urls and all(url.startswith("http://192.0.2.7:8123/audio/") for url in urls)
    assert root.find("channel").findtext("link") == "http://192.0.2.7:8123/"


@pytest.mark.parametrize("host", ["evil.example/x", "a b", "<x>", "user@host", "host:99999", "-x.example",
                                  '"quoted"', "[zz::]:80", "host:80:80"])
def test_a_host_that_is_not_a_plain_address_is_not_repeated(host: str, server: SessionServer) -> None:
    body, root = fetch_feed(server, {"Host": host})
    assert {urlsplit(item.find("enclosure").get("url")).netloc for item in root.iter("item")} == {
        f"127.0.0.1:{server.port}"}
    assert host.encode() not in body


def test_without_a_host_header_urls_use_the_served_address(server: SessionServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
        client.sendall(b"GET /feed.xml HTTP/1.0\r\n\r\n")
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    root = ET.fromstring(answer.split(b"\r\n\r\n", 1)[1])
    assert root.find("channel").findtext("link") == f"http://127.0.0.1:{server.port}/"


def test_base_from_host() -> None:
    assert base_from_host("Phone.Local:8000") == "http://phone.local:8000"
    assert base_from_host("[::1]:8000") == "http://[::1]:8000"
    assert base_from_host("192.168.1.5") == "http://192.168.1.5"
    for refused in (None, "", "x:0", "a..b", "a_b.example", "x:8000/", "[::1", "[fe80::1%25eth0]:80"):
        assert base_from_host(refused) is None, refused


# Only the sessions of the folder.

@pytest.mark.parametrize("target", ["/chapters/escape.mp3.json", "/chapters/broken.mp3.json", "/chapters/neck.mp3",
                                    "/chapters/neck.json", "/chapters/.neck.mp3.part.json", "/feed.xml/neck.mp3",
                                    "/chapters/%2e%2e%2foutside%2fsecret.mp3.json", "/chapters/neck.mp3.json/x",
                                    "/feed.rss"])
def test_nothing_else_is_answered(target: str, server: SessionServer) -> None:
    status, _, body = get(server, target)
    assert status in (400, 404), target
    assert b"SECRET" not in body


def test_a_name_swapped_for_a_link_never_puts_what_is_outside_in_the_feed(
        racing: tuple[SessionServer, Path, bytes, bytes]) -> None:  # noqa: F811
    server, _, _, _ = racing
    seen = {"feed": 0, "chapters": 0}
    for _ in range(60):
        for path in ("/feed.xml", "/chapters/race.mp3.json"):
            status, _, body = get(server, path)
            assert b"SECRET" not in body, path
            if status == 200 and b"Inside" in body:
                seen["feed" if path == "/feed.xml" else "chapters"] += 1
    assert seen["feed"] > 0 and seen["chapters"] > 0, seen


# The page and the command.

def test_the_page_leads_to_the_feed(server: SessionServer) -> None:
    status, _, page = get(server, "/", {"Host": "192.0.2.7:8123"})
    assert status == 200
    assert b'<link rel="alternate" type="application/rss+xml" title="voiceguide sessions" href="/feed.xml">' in page
    assert b'<a class="feed" href="/feed.xml">http://192.0.2.7:8123/feed.xml</a>' in page


def test_serve_prints_the_feed_and_both_qr_codes(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(SessionServer, "serve_forever", fake_serve_forever(seen))
    monkeypatch.setattr("voiceguide.serve._address.lan_address", lambda: "192.0.2.7")
    monkeypatch.setenv("COLUMNS", "120")
    result = CliRunner().invoke(cli, ["serve", str(folder), "--host", "0.0.0.0", "--port", "0"])
    assert result.exit_code == 0, result.output
    page, feed = f"http://192.0.2.7:{seen[0]}/", f"http://192.0.2.7:{seen[0]}/feed.xml"
    lines = result.stdout.splitlines()
    assert lines[:2] == [f"Serving 3 sessions from {folder} at {page}", f"Podcast feed: {feed}"]
    # Side by side, each under its label.
    labels, *codes = lines[2:-2]
    assert labels.split() == "The page, for a browser The feed, for a podcast app".split()
    column = labels.index("The feed")
    assert qr_matrix([line[: column - 2] for line in codes]) == matrix(page)
    assert qr_matrix([line[column:] for line in codes]) == matrix(feed)
    # One under the other where the terminal is narrow.
    monkeypatch.setenv("COLUMNS", "50")
    lines = CliRunner().invoke(cli, ["serve", str(folder), "--host", "0.0.0.0", "--port", "0"]).stdout.splitlines()
    feed = f"http://192.0.2.7:{seen[1]}/feed.xml"
    block = lines[2:-2]
    split = block.index("The feed, for a podcast app")
    assert block[0] == "The page, for a browser"
    assert qr_matrix(block[1:split]) == matrix(f"http://192.0.2.7:{seen[1]}/")
    assert qr_matrix(block[split + 1 :]) == matrix(feed)


def matrix(url: str) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(row) for row in segno.make(url, error="m").matrix)


def test_serve_on_this_computer_prints_the_feed(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[int] = []
    monkeypatch.setattr(SessionServer, "serve_forever", fake_serve_forever(seen))
    result = CliRunner().invoke(cli, ["serve", str(folder), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == f"Podcast feed: http://127.0.0.1:{seen[0]}/feed.xml"


def test_an_empty_folder_is_an_empty_feed(tmp_path: Path) -> None:
    server, thread = start(Library(tmp_path))
    try:
        _, root = fetch_feed(server)
        assert root.find("channel").findtext("title") == "voiceguide sessions"
        assert list(root.iter("item")) == []
    finally:
        stop(server, thread)


def test_phones_asking_for_the_feed_at_once_get_the_same_feed(folder: Path, tmp_path: Path) -> None:
    """The first requests of a feed, from several phones at once, are all answered with the same feed."""
    for name in ("breath.mp3", "neck.mp3"):
        shutil.copy(folder / name, tmp_path / name)
    server, thread = start(Library(tmp_path))
    answers: list[bytes] = []
    together = threading.Barrier(8)

    def phone() -> None:
        together.wait()
        answers.append(get(server, "/feed.xml")[2])

    phones = [threading.Thread(target=phone) for _ in range(8)]
    try:
        for each in phones:
            each.start()
        for each in phones:
            each.join(30)
    finally:
        stop(server, thread)
    assert len(answers) == 8 and len(set(answers)) == 1

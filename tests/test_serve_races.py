"""`voiceguide serve` under pressure: names swapped for links while requests run, and many phones at once."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import imageio_ffmpeg
import pytest
from mutagen.id3 import ID3, TIT2
from test_serve import get, start, stop

from voiceguide.serve import Library, SessionServer


def tone(path: Path, frequency: int, title: str) -> bytes:
    """A second of sine as an MP3 titled ``title``; its bytes."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "lavfi",
               "-i", f"sine=frequency={frequency}:duration=1", "-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3", str(path)]
    subprocess.run(command, check=True)
    tags = ID3()
    tags.add(TIT2(encoding=3, text=title))
    tags.save(path, v2_version=3)
    return path.read_bytes()


@pytest.fixture
def racing(tmp_path: Path) -> Iterator[tuple[SessionServer, Path, bytes, bytes]]:
    """A served folder whose race.mp3 keeps turning, by atomic renames, from a file of the folder into a link to
    a secret outside it and back; the server, the folder, the inside file's bytes and the secret's."""
    folder, outside = tmp_path / "output", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    inside = tone(folder / ".inside", 440, "Inside")
    secret = tone(outside / "secret.mp3", 660, "SECRET OUTSIDE")
    server, thread = start(Library(folder))
    running = threading.Event()
    running.set()

    def swap() -> None:
        turn = 0
        while running.is_set():
            turn += 1
            spare = folder / f".spare{turn % 2}"
            spare.unlink(missing_ok=True)
            if turn % 2:
                spare.symlink_to(outside / "secret.mp3")
            else:
                os.link(folder / ".inside", spare)
            os.replace(spare, folder / "race.mp3")

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        yield server, folder, inside, secret
    finally:
        running.clear()
        swapper.join(5)
        stop(server, thread)


def test_a_name_swapped_for_a_link_never_serves_what_is_outside(racing: tuple[SessionServer, Path, bytes, bytes]) -> None:
    server, _, inside, secret = racing
    served: dict[str, int] = {"inside": 0, "refused": 0}
    leaked: list[str] = []

    def ask(path: str) -> None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and not leaked:
            status, _, body = get(server, path)
            if status == 404:
                served["refused"] += 1
            elif body == inside or (status == 200 and b"Inside" in body):
                served["inside"] += 1
            if secret[-2000:] in body or b"SECRET" in body:
                leaked.append(f"{path}: {status}")

    askers = [threading.Thread(target=ask, args=(path,))
              for path in ("/audio/race.mp3", "/download/race.mp3", "/play/race.mp3", "/cover/race.mp3", "/")]
    for asker in askers:
        asker.start()
    for asker in askers:
        asker.join()
    assert leaked == []
    # Both sides of the race were seen: the file of the folder is served, the link out of it is not.
    assert served["inside"] > 10 and served["refused"] > 10, served


def test_what_is_not_a_regular_file_is_not_opened(tmp_path: Path) -> None:
    """A FIFO named like a session is refused at once: opening it to read would wait for a writer forever."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    os.mkfifo(tmp_path / "pipe.mp3")
    (tmp_path / "dev.mp3").symlink_to(os.devnull)
    library = Library(tmp_path)
    began = time.monotonic()
    assert library.session("pipe.mp3") is None and library.session("dev.mp3") is None
    assert library.sessions() == []
    assert time.monotonic() - began < 1


def test_two_hundred_phones_at_once_are_all_answered_quickly(tmp_path: Path) -> None:
    tone(tmp_path / "a.mp3", 440, "A tone")
    server, thread = start(Library(tmp_path))
    count = 200
    together = threading.Barrier(count)
    answers: list[tuple[bytes, float]] = []

    def phone() -> None:
        together.wait()
        began = time.monotonic()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=10) as client:
                client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = b""
                while chunk := client.recv(65536):
                    answer += chunk
        except OSError as error:
            answer = repr(error).encode()
        answers.append((answer[:15], time.monotonic() - began))

    phones = [threading.Thread(target=phone) for _ in range(count)]
    try:
        for each in phones:
            each.start()
        for each in phones:
            each.join(30)
    finally:
        stop(server, thread)
    assert len(answers) == count
    assert {answer for answer, _ in answers} == {b"HTTP/1.1 200 OK"}
    assert max(took for _, took in answers) < 3, sorted(took for _, took in answers)[-5:]

"""The sessions of a folder: which MP3s count, and the title, duration, chapters and cover their tags give."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from voiceguide.errors import InputError

COVER_TYPES = ("image/jpeg", "image/png")


@dataclass(frozen=True)
class Chapter:
    """A chapter of a served session, one step of its routine; times in seconds."""

    title: str
    start: float
    end: float


@dataclass(frozen=True)
class SessionFile:
    """One MP3 in the folder, as its tags describe it; times in seconds."""

    name: str
    path: Path
    title: str
    duration: float
    size: int
    steps: tuple[Chapter, ...]
    has_cover: bool
    description: str = ""
    modified_ns: int = 0  # when the file was last written: a rebuild is a new episode of the feed


_Key = tuple[str, int, int, int, int]


class Library:
    """The sessions of one folder, read from their tags once per (name, file, mtime, size).

    Every file is opened first and checked after: what was opened must be a
    regular file that is itself directly in the folder (a symlink in the folder
    may name one). Checking a name and then opening it would let a name swapped
    in between for a link to elsewhere serve that file.
    """

    def __init__(self, folder: Path):
        if not folder.is_dir():
            raise InputError(f"{folder}: no such folder; build a session first (voiceguide build ROUTINE)")
        self.folder = folder.resolve()
        self._cache: dict[_Key, SessionFile | None] = {}
        self._digests: dict[_Key, str] = {}
        self._lock = threading.Lock()

    def sessions(self) -> list[SessionFile]:
        """Every readable session in the folder, by title."""
        found = [s for s in map(self.session, self._names()) if s is not None]
        return sorted(found, key=lambda s: (s.title.casefold(), s.name))

    def episodes(self) -> list[tuple[SessionFile, str]]:
        """Every readable session in the folder with the SHA-256 of its bytes, newest first."""
        found = [e for e in map(self.episode, self._names()) if e is not None]
        return sorted(found, key=lambda e: (-e[0].modified_ns, e[0].title.casefold(), e[0].name))

    def _names(self) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(self.folder))
        except OSError:
            return []

    def session(self, name: str) -> SessionFile | None:
        """The session stored as ``name`` directly in the folder, or None for anything else."""
        found = self._read(name, digest=False)
        return found[0] if found is not None else None

    def episode(self, name: str) -> tuple[SessionFile, str] | None:
        """The session stored as ``name`` and the SHA-256 of its bytes (hex), both from one opening of the file.

        The digest is computed once per version of the file (device, inode, mtime, size), not per request: an
        hour's session is 30 MB. None also while the file changes under the reading (a copy still being written).
        """
        found = self._read(name, digest=True)
        if found is None or found[1] is None:
            return None
        return found[0], found[1]

    def _read(self, name: str, digest: bool) -> tuple[SessionFile, str | None] | None:
        file = self.open(name)
        if file is None:
            return None
        with file:
            info = os.fstat(file.fileno())
            key = (name, info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size)
            with self._lock:
                known, session, content = key in self._cache, self._cache.get(key), self._digests.get(key)
            if not known:
                session = read_session(name, self.folder / name, file, info)
                self._keep(key, session, None)
            if session is None or not digest or content is not None:
                return None if session is None else (session, content)
            content = _sha256(file)
            if _identity(os.fstat(file.fileno())) != _identity(info):
                return session, None
            self._keep(key, session, content)
        return session, content

    def _keep(self, key: _Key, session: SessionFile | None, content: str | None) -> None:
        with self._lock:
            # A rebuilt file gets a new key: forget what was read from its old version.
            for old in [k for k in self._cache if k[0] == key[0] and k != key]:
                del self._cache[old]
                self._digests.pop(old, None)
            self._cache[key] = session
            if content is not None:
                self._digests[key] = content

    def open(self, name: str) -> BinaryIO | None:
        """The MP3 named ``name`` in the folder, open for reading, if what was opened is a regular file directly
        in the folder; else None."""
        if (not name.lower().endswith(".mp3") or name.startswith(".") or "/" in name or "\\" in name
                or "\0" in name or not _printable(name)):
            return None
        try:
            # Non-blocking: a FIFO put in the folder would otherwise hold the open, and a thread, forever.
            handle = os.open(self.folder / name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        except OSError:
            return None
        try:
            if self._holds(name, os.fstat(handle)):
                return os.fdopen(handle, "rb")
        except OSError:
            pass
        os.close(handle)
        return None

    def _holds(self, name: str, opened: os.stat_result) -> bool:
        """Whether ``opened`` is a regular file directly in the folder: ``name`` itself, or, if ``name`` is a
        symlink, the file it leads to. Whatever the names lead to by now, only that file's identity counts."""
        if not stat.S_ISREG(opened.st_mode):
            return False
        candidates = [name]
        real = Path(os.path.realpath(self.folder / name))
        if real.parent == self.folder and real.name != name:
            candidates.append(real.name)
        for candidate in candidates:
            try:
                found = os.lstat(self.folder / candidate)
            except OSError:
                continue
            if stat.S_ISREG(found.st_mode) and (found.st_dev, found.st_ino) == (opened.st_dev, opened.st_ino):
                return True
        return False


def _printable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a file name that is not UTF-8 cannot be put in a URL
        return False
    return name.isprintable()


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    return info.st_dev, info.st_ino, info.st_mtime_ns, info.st_size


def _sha256(file: BinaryIO) -> str:
    file.seek(0)
    digest = hashlib.sha256()
    while chunk := file.read(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def read_session(name: str, path: Path, file: BinaryIO, info: os.stat_result) -> SessionFile | None:
    """Title, duration, steps and description from the tags of the MP3 open as ``file`` (``info`` its fstat);
    None when it is not a readable MP3."""
    from mutagen import MutagenError
    from mutagen.mp3 import MP3

    try:
        audio = MP3(file)
    except (MutagenError, OSError):
        return None
    tags = audio.tags
    # mutagen declares info as None until load() fills it in, which MP3() has done.
    duration = float(audio.info.length)  # type: ignore[attr-defined]
    title = str(tags["TIT2"].text[0]) if tags is not None and "TIT2" in tags and tags["TIT2"].text else ""
    steps = _steps(tags, duration) if tags is not None else ()
    has_cover = tags is not None and any(frame.mime in COVER_TYPES for frame in tags.getall("APIC"))
    # The comment a build writes (no description of its own); other taggers name theirs.
    comments: list = [c for c in tags.getall("COMM") if not c.desc and c.text] if tags is not None else []
    description = str(comments[0].text[0]).strip() if comments else ""
    return SessionFile(name, path, title.strip() or Path(name).stem, duration, info.st_size, steps, has_cover,
                       description, info.st_mtime_ns)


def _steps(tags, duration: float) -> tuple[Chapter, ...]:
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
        steps.append(Chapter(name or f"Step {number}", start, max(start, min(chap.end_time / 1000, duration))))
    return tuple(steps)


def cover_of(library: Library, session: SessionFile) -> tuple[str, bytes] | None:
    """The session's cover art (front cover first) as (MIME type, bytes)."""
    from mutagen import MutagenError
    from mutagen.id3 import ID3

    file = library.open(session.name)
    if file is None:
        return None
    try:
        with file:
            pictures = [p for p in ID3(file).getall("APIC") if p.mime in COVER_TYPES]
    except (MutagenError, OSError):
        return None
    if not pictures:
        return None
    picture = min(pictures, key=lambda p: p.type != 3)
    return picture.mime, picture.data

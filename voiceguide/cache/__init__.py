"""Every stored thing, under one root: spoken clips and made sounds (WAV), encoded pieces of sessions (MP3
frames), numbers worked out from sounds (arrays), levels found for sets of sounds, and answers about installed
software.

Nothing read back is taken on trust: a disk that filled up, a copy or a hand can change any file, and a build
must come out as it would from an empty cache. So every file carries the SHA-256 of its bytes (see _formats),
checked each time it is read. A file that fails is deleted and reported as absent, so it is made again; so is
a folder where a file goes, or a file where a folder goes.

Each file is written atomically, into a temporary file beside it and then moved into place: two builds that
store the same thing at once each leave a whole file, and so does a crash. A cache that cannot be written (a
full disk, a read-only folder, a file given as the cache) is noted once, and the build goes on: what it could
not store it keeps in memory until it ends.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from voiceguide.cache import _formats
from voiceguide.cache._formats import Buffer
from voiceguide.errors import VoiceguideError

if TYPE_CHECKING:
    import numpy as np

FRAMES_FORMAT = 2  # the layout of encoded pieces (see _formats), in the name of their folder
ARRAYS_FORMAT = 1  # the layout of arrays, likewise
ANSWERS = "answers"  # the folder of answers about installed software
# What each entry under the root holds, by its name (or the start of it, for a name that ends in "-"); an
# entry named otherwise is not ours, and is left alone. Arrays are told apart by the folder of their kind,
# inside arrays-N. Older versions kept answers in tools/ and engines/.
FOLDERS = (("clips-", "spoken clips"), ("sounds-", "sounds"), ("frames-", "encoded pieces"), ("levels", "levels"),
           (ANSWERS, "answers about installed software"), ("tools", "answers about installed software"),
           ("engines", "answers about installed software"))
ARRAY_KINDS = (("measured", "measurements of encoded pieces"), ("analyses", "analyses of sounds"),
               ("beds", "background loops"), ("covers-", "covers"), ("piper-parts-", "parts of Piper models"))
OTHER_ARRAYS = "other numbers"
# The order `voiceguide cache info` lists them in.
KINDS = ("spoken clips", "sounds", "encoded pieces", "measurements of encoded pieces", "analyses of sounds", "levels",
         "background loops", "covers", "parts of Piper models", "answers about installed software", OTHER_ARRAYS)


class CacheError(VoiceguideError):
    """The cache cannot be used at all (its path is a file), or changed under a build; the message names it."""

    exit_code = 2


@dataclass(frozen=True)
class Clip:
    """A stored sound: 44.1 kHz mono 16-bit; its samples are read (and checked again) when asked for."""

    path: Path
    length: int  # samples at SAMPLE_RATE
    store: Cache = field(repr=False, compare=False)

    def samples(self) -> np.ndarray:
        return self.store._samples(self)


@dataclass(frozen=True)
class Encoded:
    """A piece's MP3 frames, with their CRC."""

    data: bytes
    count: int
    crc: int


@dataclass(frozen=True)
class Stored:
    """What the cache holds of one kind: how many files, how many bytes."""

    kind: str  # in words, from KINDS
    count: int
    size: int


class Cache:
    """The stored things under ``root``; ``note`` is told, once, that the cache cannot be written (by default on
    stderr)."""

    def __init__(self, root: Path, note: Callable[[str], object] | None = None):
        self.root = root
        self._note = note
        self._lock = threading.Lock()  # pieces, measures and analyses are stored from threads of their own
        self._unwritable = ""  # why the cache could not be written: nothing more is tried then
        self._held: dict[Path, bytes] = {}  # what could not be written, as it would be on disk

    # --- sounds -------------------------------------------------------------------------------------------------

    def clip(self, folder: str, key: str) -> Clip | None:
        """The sound stored under ``key`` in ``folder``; None when absent or damaged."""
        path = self._clip_path(folder, key)
        data = self._read(path)
        if data is None:
            return None
        length = _formats.wav_length(data)
        if length is None:
            self._discard(path, data)
            return None
        return Clip(path, length, self)

    def put_clip(self, folder: str, key: str, samples: np.ndarray) -> Clip:
        path = self._clip_path(folder, key)
        self._write(path, _formats.wav(samples))
        return Clip(path, len(samples), self)

    def _samples(self, clip: Clip) -> np.ndarray:
        import numpy as np

        data = self._read(clip.path)
        if data is None or _formats.wav_length(data) != clip.length:
            # Whole when the build began, replaced or removed since: by another program, or a cache clear.
            raise CacheError(f"the cache at {self.root} changed while this build read it ({clip.path.name} is "
                             "gone or damaged): build again")
        return np.frombuffer(data, dtype="<i2", count=clip.length, offset=_formats.WAV_HEAD)

    def _clip_path(self, folder: str, key: str) -> Path:
        return self.root / folder / key[:2] / f"{key}.wav"

    # --- encoded pieces -----------------------------------------------------------------------------------------

    def frames(self, key: str) -> Encoded | None:
        """Stored MP3 frames of a piece of a session; None when absent or damaged."""
        path = self._frames_path(key)
        data = self._read(path)
        if data is None:
            return None
        found = _formats.frames_of(data)
        if found is None:
            self._discard(path, data)
            return None
        return Encoded(*found)

    def put_frames(self, key: str, encoded: Encoded) -> None:
        self._write(self._frames_path(key), _formats.frames_file(encoded.data, encoded.count, encoded.crc))

    def _frames_path(self, key: str) -> Path:
        return self.root / f"frames-{FRAMES_FORMAT}" / key[:2] / f"{key}.mp3f"

    # --- arrays -------------------------------------------------------------------------------------------------

    def arrays(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``kind`` and ``key``, exactly as stored; None when absent or damaged."""
        path = self._arrays_path(kind, key)
        data = self._read(path)
        if data is None:
            return None
        found = _formats.arrays_of(data)
        if found is None:
            self._discard(path, data)
        return found

    def put_arrays(self, kind: str, key: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Store ``arrays`` (of numbers, any shape) under ``kind`` and ``key``."""
        self._write(self._arrays_path(kind, key), _formats.arrays_file(arrays))

    def _arrays_path(self, kind: str, key: str) -> Path:
        return self.root / f"arrays-{ARRAYS_FORMAT}" / kind / key[:2] / f"{key}.arrays"

    # --- small results ------------------------------------------------------------------------------------------

    def json(self, kind: str, key: str) -> dict | None:
        """A small result stored under ``kind``; None when absent or damaged."""
        text = self._text(self.root / kind / f"{key}.json")
        try:
            value = json.loads(text) if text is not None else None
        except ValueError:  # whole, so written by us: by another version
            return None
        return value if isinstance(value, dict) else None

    def put_json(self, kind: str, key: str, value: dict) -> None:
        self._write(self.root / kind / f"{key}.json", _formats.sealed_text(json.dumps(value)))

    def answer(self, name: str, identity: object, ask: Callable[[], str], usable: Callable[[str], bool],
               max_age: float | None = None) -> str:
        """An answer about installed software that takes a process start to get (where ffmpeg is, an engine's
        voices), kept in a small file named by ``identity``, what it depends on (anything JSON can write):
        asked again when the file is missing or damaged, older than ``max_age`` seconds, or no longer
        ``usable``."""
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]
        path = self.root / ANSWERS / f"{name}-{digest}.txt"
        answer = self._text(path, max_age)
        if answer is not None and usable(answer):
            return answer
        answer = ask()
        self._write(path, _formats.sealed_text(answer))
        return answer

    def _text(self, path: Path, max_age: float | None = None) -> str | None:
        """The text stored at ``path`` (written within ``max_age`` seconds); None when absent, older or damaged."""
        data = self._read(path)
        if data is None:
            return None
        text = _formats.opened_text(data)
        if text is None:
            self._discard(path, data)
            return None
        if max_age is not None and path not in self._held:
            try:
                if time.time() - path.stat().st_mtime >= max_age:
                    return None
            except OSError:
                return None
        return text

    # --- the whole ----------------------------------------------------------------------------------------------

    def contents(self) -> list[Stored]:
        """What is stored, kind by kind in the order of KINDS, the kinds with nothing stored left out."""
        found: dict[str, list[int]] = {}
        for entry, kind in self._entries():
            for size in _sizes(entry):
                tally = found.setdefault(kind, [0, 0])
                tally[0] += 1
                tally[1] += size
        return [Stored(kind, *found[kind]) for kind in sorted(found, key=KINDS.index)]

    def clear(self) -> list[Stored]:
        """Delete everything voiceguide stored (other files under the root stay); return what there was."""
        there = self.contents()
        failures: list[OSError] = []
        for entry, _ in self._entries():
            _remove(entry, failures.append)
        for arrays in self.root.glob("arrays-*"):
            if arrays.is_dir() and not any(arrays.iterdir()):
                _remove(arrays, failures.append)
        with self._lock:
            self._held.clear()
        if failures:
            failure = failures[0]
            raise CacheError(f"cannot clear the cache at {self.root}: {failure.filename}: "
                             f"{failure.strerror or failure}")
        return there

    def _entries(self) -> list[tuple[Path, str]]:
        """Each entry of stored things under the root (a folder, or a file in a folder's place), with the kind it
        holds; a CacheError when the root cannot be read as a folder."""
        if self.root.exists() and not self.root.is_dir():
            raise CacheError(f"the cache at {self.root} is a file, not a folder: remove it, or choose another")
        found = []
        try:
            for entry in sorted(self.root.iterdir()) if self.root.is_dir() else []:
                if not entry.name.startswith("arrays-"):
                    label = _kind(entry.name, FOLDERS)
                    found += [(entry, label)] if label else []
                elif entry.is_dir() and not entry.is_symlink():
                    found += [(kind, _kind(kind.name, ARRAY_KINDS) or OTHER_ARRAYS) for kind in sorted(entry.iterdir())]
                else:
                    found.append((entry, OTHER_ARRAYS))
        except OSError as error:
            raise CacheError(f"cannot read the cache at {self.root}: {error.strerror or error}") from None
        return found

    # --- files --------------------------------------------------------------------------------------------------

    def _read(self, path: Path) -> bytearray | None:
        """The bytes at ``path`` (those held in memory, if it could not be written), writable so that arrays are
        read without a copy; None when there is no file there, or it cannot be read."""
        with self._lock:
            held = self._held.get(path)
        if held is not None:
            return bytearray(held)
        try:
            # Not blocking: a pipe put in a file's place must not hold the build up.
            with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as file:
                found = os.fstat(file.fileno())
                if not stat.S_ISREG(found.st_mode):
                    return None
                data = bytearray(found.st_size)
                return data if file.readinto(data) == len(data) and not file.read(1) else None
        except OSError:  # absent, a folder, or unreadable: made again, and stored in its place if it can be
            return None

    def _discard(self, path: Path, data: bytearray) -> None:
        """Delete a damaged file, unless another build has put a whole one in its place since it was read."""
        if self._read(path) == data:
            try:
                path.unlink()
            except OSError:
                pass  # a read-only cache: the damaged file stays, to be checked and passed over each time

    def _write(self, path: Path, parts: Sequence[Buffer]) -> None:
        """Store ``parts`` as the file at ``path``, atomically; in memory when the cache cannot be written."""
        for attempt in range(2):
            if self._unwritable:
                break
            try:
                self._replace(path, parts)
                return
            except FileNotFoundError as error:  # a folder removed meanwhile (a cache clear): tried once more
                if attempt:
                    self._cannot_write(error)
            except OSError as error:
                self._cannot_write(error)
        with self._lock:
            self._held[path] = b"".join(parts)

    def _replace(self, path: Path, parts: Sequence[Buffer]) -> None:
        folder = path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            self._clear_way(folder)
            folder.mkdir(parents=True, exist_ok=True)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)  # a folder where the file goes would stop it for good
        # Not synced: a file that a crash leaves half written, or full of zeros, fails its check and is made again.
        handle, temp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                for part in parts:
                    file.write(part)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def _clear_way(self, folder: Path) -> None:
        """Remove the files that stand where ``folder`` and the folders above it go, below the root only."""
        inner = self.root
        for name in folder.relative_to(self.root).parts:
            inner = inner / name
            if not inner.is_dir() and (inner.is_symlink() or inner.exists()):  # a folder, or a link to one, stays
                inner.unlink()

    def _cannot_write(self, error: OSError) -> None:
        with self._lock:
            if self._unwritable:
                return
            self._unwritable = "it is a file" if self.root.is_file() else error.strerror or str(error)
        message = f"note: cannot write the cache at {self.root} ({self._unwritable}): nothing is kept"
        if self._note is not None:
            self._note(message)
        else:
            print(message, file=sys.stderr)


def _sizes(entry: Path) -> list[int]:
    """The size of each file in ``entry`` (a folder, or one file); a file that goes meanwhile is not counted."""
    if entry.is_dir() and not entry.is_symlink():
        paths = [os.path.join(folder, name) for folder, _, files in os.walk(entry) for name in files]
    else:
        paths = [str(entry)]
    found = []
    for path in paths:
        try:
            found.append(os.lstat(path).st_size)
        except OSError:
            continue
    return found


def _remove(entry: Path, failed: Callable[[OSError], object]) -> None:
    """Remove ``entry``, a folder with all in it or a file; ``failed`` is told what could not be removed."""
    def told(function: object, path: str, error: tuple[type, BaseException, object]) -> None:
        if isinstance(error[1], OSError) and not isinstance(error[1], FileNotFoundError):  # gone is as good
            failed(error[1])

    try:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, onerror=told)
        else:
            entry.unlink(missing_ok=True)
    except OSError as error:
        failed(error)


def _kind(name: str, table: tuple[tuple[str, str], ...]) -> str | None:
    """The kind of the stored things in the entry called ``name``, by ``table``; None if it names none."""
    return next((label for start, label in table if name == start or start.endswith("-") and name.startswith(start)),
                None)

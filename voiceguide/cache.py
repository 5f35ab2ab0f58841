"""Every stored thing, under one root: spoken clips and made sounds (WAV), encoded pieces of sessions (MP3
frames), numbers worked out from sounds (arrays), levels found for sets of sounds, and answers about installed
software.

Each file is written atomically (into a temporary file beside it, then moved
into place), so a crash never leaves half a file; a file that cannot be read
back as what was stored is deleted and reported as absent, so it is made again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import tempfile
import time
import wave
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from voiceguide.units import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np

# Encoded pieces of sessions: a magic, the number of frames, their bytes and their CRC-16, then the frames.
FRAMES_FORMAT = 1
FRAMES_MAGIC = b"VGF1"
FRAMES_HEADER = "<4sIIH"
# Arrays: a magic, the SHA-256 of the rest, the length of a JSON list of (name, dtype, shape), that list, then
# each array's bytes; the list and each array start at a multiple of ARRAYS_ALIGN.
ARRAYS_FORMAT = 1
ARRAYS_MAGIC = b"VGA1"
ARRAYS_ALIGN = 16
ARRAYS_DTYPES = "biuf"  # numbers only: nothing read back can be an object
_ARRAYS_HEAD = len(ARRAYS_MAGIC) + 32  # the magic and the digest
ANSWERS = "answers"  # the folder of answers about installed software
# What each folder under the root holds, by the start of its name; a folder named otherwise is not ours, and
# is left alone. Arrays are told apart by the folder of their kind, inside arrays-N.
FOLDERS = (("clips-", "spoken clips"), ("sounds-", "sounds"), ("frames-", "encoded pieces"), ("levels", "levels"),
           (ANSWERS, "answers about installed software"))
ARRAY_KINDS = (("measured", "measurements of encoded pieces"), ("analyses", "analyses of sounds"),
               ("beds", "background loops"), ("covers-", "covers"), ("piper-parts-", "parts of Piper models"))
OTHER_ARRAYS = "other numbers"
# The order `voiceguide cache info` lists them in.
KINDS = ("spoken clips", "sounds", "encoded pieces", "measurements of encoded pieces", "analyses of sounds", "levels",
         "background loops", "covers", "parts of Piper models", "answers about installed software", OTHER_ARRAYS)


@dataclass(frozen=True)
class Clip:
    """A stored sound: 44.1 kHz mono 16-bit WAV."""

    path: Path
    length: int  # samples at SAMPLE_RATE

    def samples(self) -> np.ndarray:
        import numpy as np

        with wave.open(str(self.path), "rb") as clip:
            return np.frombuffer(clip.readframes(clip.getnframes()), dtype="<i2")


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
    def __init__(self, root: Path):
        self.root = root

    # --- sounds -------------------------------------------------------------------------------------------------

    def clip(self, folder: str, key: str) -> Clip | None:
        """The sound stored under ``key`` in ``folder``; None when absent or damaged."""
        path = self._clip_path(folder, key)
        try:
            with wave.open(str(path), "rb") as clip:
                if (clip.getframerate(), clip.getnchannels(), clip.getsampwidth()) != (SAMPLE_RATE, 1, 2):
                    raise wave.Error("unexpected format")
                length = clip.getnframes()
            if length == 0 or path.stat().st_size < 44 + 2 * length:
                raise wave.Error("truncated")
        except FileNotFoundError:
            return None
        except (OSError, EOFError, wave.Error):
            # Damaged by something outside us (a full disk, a copy): made again.
            path.unlink(missing_ok=True)
            return None
        return Clip(path, length)

    def put_clip(self, folder: str, key: str, samples: np.ndarray) -> Clip:
        from voiceguide import audio

        path = self._clip_path(folder, key)
        self._write(path, lambda file: audio.write_wav(file, samples))
        return Clip(path, len(samples))

    def _clip_path(self, folder: str, key: str) -> Path:
        return self.root / folder / key[:2] / f"{key}.wav"

    # --- encoded pieces -----------------------------------------------------------------------------------------

    def frames(self, key: str) -> Encoded | None:
        """Stored MP3 frames of a piece of a session; None when absent or damaged."""
        path = self._frames_path(key)
        try:
            data = path.read_bytes()
        except OSError:
            return None
        header = struct.calcsize(FRAMES_HEADER)
        if len(data) < header or not data.startswith(FRAMES_MAGIC):
            path.unlink(missing_ok=True)
            return None
        _, count, size, crc = struct.unpack(FRAMES_HEADER, data[:header])
        if len(data) != header + size:
            path.unlink(missing_ok=True)
            return None
        return Encoded(data[header:], count, crc)

    def put_frames(self, key: str, encoded: Encoded) -> None:
        header = struct.pack(FRAMES_HEADER, FRAMES_MAGIC, encoded.count, len(encoded.data), encoded.crc)
        self._write(self._frames_path(key), lambda file: file.write(header + encoded.data))

    def _frames_path(self, key: str) -> Path:
        return self.root / f"frames-{FRAMES_FORMAT}" / key[:2] / f"{key}.mp3f"

    # --- arrays -------------------------------------------------------------------------------------------------

    def arrays(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under ``kind`` and ``key``, exactly as stored; None when absent or damaged."""
        path = self._arrays_path(kind, key)
        try:
            with path.open("rb") as file:
                data = bytearray(os.fstat(file.fileno()).st_size)  # writable arrays, read without a copy
                file.readinto(data)
        except OSError:  # absent, or unreadable: worked out again, and stored in its place
            return None
        found = _unpacked(data)
        if found is None:
            path.unlink(missing_ok=True)
        return found

    def put_arrays(self, kind: str, key: str, arrays: Mapping[str, np.ndarray]) -> None:
        """Store ``arrays`` (of numbers, any shape) under ``kind`` and ``key``."""
        import numpy as np

        parts = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
        if any(array.dtype.kind not in ARRAYS_DTYPES for array in parts.values()):
            raise TypeError(f"only arrays of numbers are stored, not {[a.dtype.str for a in parts.values()]}")
        listed = json.dumps([[name, array.dtype.str, array.shape] for name, array in parts.items()]).encode()
        body: list[bytes | memoryview] = [struct.pack("<I", len(listed)), listed,
                                          _padding(_ARRAYS_HEAD + 4 + len(listed))]
        for array in parts.values():
            body += [array.data, _padding(array.nbytes)]
        digest = hashlib.sha256()
        for part in body:
            digest.update(part)

        def fill(file: BinaryIO) -> None:
            # Not synced: what a crash leaves half written fails its digest, and is worked out again.
            file.write(ARRAYS_MAGIC + digest.digest())
            for part in body:
                file.write(part)

        self._write(self._arrays_path(kind, key), fill, sync=False)

    def _arrays_path(self, kind: str, key: str) -> Path:
        return self.root / f"arrays-{ARRAYS_FORMAT}" / kind / key[:2] / f"{key}.arrays"

    # --- small results ------------------------------------------------------------------------------------------

    def json(self, kind: str, key: str) -> dict | None:
        """A small result stored under ``kind``; None when absent or unreadable."""
        try:
            value = json.loads((self.root / kind / f"{key}.json").read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def put_json(self, kind: str, key: str, value: dict) -> None:
        self._write(self.root / kind / f"{key}.json", lambda file: file.write(json.dumps(value).encode()), sync=False)

    def answer(self, name: str, identity: object, ask: Callable[[], str], usable: Callable[[str], bool],
               max_age: float | None = None) -> str:
        """An answer about installed software that takes a process start to get (where ffmpeg is, an engine's
        voices), kept in a small file named by ``identity``, what it depends on (anything JSON can write):
        asked again when the file is missing, older than ``max_age`` seconds, or no longer ``usable``."""
        digest = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:32]
        path = self.root / ANSWERS / f"{name}-{digest}.txt"
        try:
            if max_age is None or time.time() - path.stat().st_mtime < max_age:
                answer = path.read_text()
                if usable(answer):
                    return answer
        except (OSError, ValueError):
            pass
        answer = ask()
        try:
            self._write(path, lambda file: file.write(answer.encode()), sync=False)
        except OSError:
            pass  # a read-only cache only costs the next run the same question
        return answer

    # --- the whole ----------------------------------------------------------------------------------------------

    def contents(self) -> list[Stored]:
        """What is stored, kind by kind in the order of KINDS, the kinds with nothing stored left out."""
        found: dict[str, list[int]] = {}
        for top, kind in self._kinds():
            for path in top.rglob("*"):
                if path.is_file():
                    tally = found.setdefault(kind, [0, 0])
                    tally[0] += 1
                    tally[1] += path.stat().st_size
        return [Stored(kind, *found[kind]) for kind in sorted(found, key=KINDS.index)]

    def clear(self) -> list[Stored]:
        """Delete everything voiceguide stored (other files under the root stay); return what there was."""
        there = self.contents()
        for folder, _ in self._kinds():
            shutil.rmtree(folder, ignore_errors=True)
        for arrays in self.root.glob("arrays-*"):
            if arrays.is_dir() and not any(arrays.iterdir()):
                arrays.rmdir()
        return there

    def _kinds(self) -> list[tuple[Path, str]]:
        """Each folder of stored things under the root, with the kind it holds."""
        folders = []
        for entry in sorted(self.root.iterdir()) if self.root.is_dir() else ():
            if entry.is_dir() and entry.name.startswith("arrays-"):
                folders += [(kind, _kind(kind.name, ARRAY_KINDS) or OTHER_ARRAYS)
                            for kind in sorted(entry.iterdir()) if kind.is_dir()]
            elif entry.is_dir() and (label := _kind(entry.name, FOLDERS)):
                folders.append((entry, label))
        return folders

    def _write(self, path: Path, fill: Callable[[BinaryIO], object], sync: bool = True) -> None:
        """Write a file atomically: into a temporary file beside it, then moved into place."""
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as file:
                fill(file)
                if sync:
                    file.flush()
                    os.fsync(file.fileno())
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise


def _kind(name: str, table: tuple[tuple[str, str], ...]) -> str | None:
    """The kind of the stored things in the folder called ``name``, by ``table``; None if it names none."""
    return next((label for start, label in table if name.startswith(start)), None)


def _padding(length: int) -> bytes:
    """Zeros from ``length`` to the next multiple of ARRAYS_ALIGN."""
    return bytes(-length % ARRAYS_ALIGN)


def _unpacked(data: bytearray) -> dict[str, np.ndarray] | None:
    """The arrays stored in ``data`` (see Cache.put_arrays), as views of it; None unless it is whole."""
    import numpy as np

    head, view = _ARRAYS_HEAD, memoryview(data)
    digest = hashlib.sha256(view[head:]).digest()
    if data[: len(ARRAYS_MAGIC)] != ARRAYS_MAGIC or data[len(ARRAYS_MAGIC) : head] != digest:
        return None
    try:
        (length,) = struct.unpack_from("<I", data, head)
        listed = json.loads(bytes(view[head + 4 : head + 4 + length]))
        offset = head + 4 + length
        offset += len(_padding(offset))
        found = {}
        for name, dtype, shape in listed:
            kind = np.dtype(dtype)
            if kind.kind not in ARRAYS_DTYPES or not all(isinstance(n, int) and n >= 0 for n in shape):
                return None
            size = int(np.prod(shape, dtype=np.int64)) * kind.itemsize
            if offset + size > len(data):
                return None
            found[name] = np.frombuffer(view[offset : offset + size], kind).reshape(shape)
            offset += size + len(_padding(size))
    except (ValueError, TypeError, struct.error):  # written by something else under our name
        return None
    return found if offset == len(data) else None

"""Every stored thing, under one root: spoken clips and made sounds (WAV), encoded pieces of sessions (MP3
frames), levels found for sets of sounds, and answers about installed software.

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
from collections.abc import Callable
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
ANSWERS = "answers"  # the folder of answers about installed software


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

    def info(self) -> tuple[int, int]:
        """Number of spoken clips, and the size in bytes of everything stored."""
        count = size = 0
        if self.root.is_dir():
            for path in self.root.rglob("*"):
                if path.is_file():
                    size += path.stat().st_size
                    count += path.suffix == ".wav" and path.parent.parent.name.startswith("clips-")
        return count, size

    def clear(self) -> int:
        """Delete everything stored; return how many spoken clips there were."""
        count, _ = self.info()
        for entry in self.root.glob("*") if self.root.is_dir() else ():
            if entry.name.startswith(("clips-", "sounds-", "frames-")) or entry.name in ("levels", ANSWERS):
                shutil.rmtree(entry, ignore_errors=True)
        return count

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

"""Write a session's MP3: atomically, with ID3v2.3 tags.

The MP3 is encoded into a temporary file beside the target and moved into
place only when complete, so a failed or interrupted build keeps the previous
session intact and never leaves a partial file.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

from mutagen.id3 import COMM, ID3, TALB, TCON, TIT2, TPE1, TSSE

from voiceguide import __version__
from voiceguide.audio import Mp3Encoder
from voiceguide.errors import AudioError
from voiceguide.timeline import Timeline

DEFAULT_BITRATE = 64
BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)


def write_session(timeline: Timeline, target: Path, bitrate: int, fill: Callable[[Mp3Encoder], None]) -> int:
    """Encode what ``fill`` writes into ``target``; return the file's size in bytes."""
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".part")
        os.close(handle)
    except OSError as error:
        raise AudioError(f"cannot write {target}: {error.strerror or error}") from None
    temp = Path(name)
    try:
        encoder = Mp3Encoder(temp, bitrate)
        try:
            fill(encoder)
            encoder.finish()
        except BaseException:
            encoder.abort()
            raise
        _tag(temp, timeline)
        with open(temp, "rb+") as file:
            os.fsync(file.fileno())
        os.chmod(temp, 0o644 & ~_umask())
        os.replace(temp, target)
    except OSError as error:
        raise AudioError(f"cannot write {target}: {error.strerror or error}") from None
    finally:
        temp.unlink(missing_ok=True)
    return target.stat().st_size


def _tag(path: Path, timeline: Timeline) -> None:
    tags = ID3()
    tags.add(TIT2(encoding=3, text=timeline.title))
    tags.add(TPE1(encoding=3, text="voiceguide"))
    tags.add(TALB(encoding=3, text="voiceguide sessions"))
    tags.add(TCON(encoding=3, text="Speech"))
    tags.add(TSSE(encoding=3, text=f"voiceguide {__version__}"))
    if timeline.description:
        tags.add(COMM(encoding=3, lang="eng", desc="", text=timeline.description))
    # ID3v2.3: the version phones and car stereos read most reliably.
    tags.save(str(path), v2_version=3)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

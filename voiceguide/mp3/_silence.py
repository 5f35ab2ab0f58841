"""Silence as the encoder makes it: one silent frame, repeated in the pattern of padded and unpadded frames
that CBR at a bitrate follows, with the CRC of any number of them."""

from __future__ import annotations

import math
import os
import subprocess
import threading

from voiceguide.cache import Cache
from voiceguide.errors import AudioError
from voiceguide.mp3._crc import _NOTHING, CrcStep, Repeats
from voiceguide.mp3._encoder import lame_command
from voiceguide.mp3._frames import Frames, _length_of, bytes_after, padded, unpadded
from voiceguide.units import SAMPLE_RATE


class Silence:
    """The frame LAME makes for pure silence at a bitrate, plain and padded, and what each does to a CRC.

    Runs of it are written a padding cycle at a time. A run of cycles that
    starts at place p of the pattern is the pattern's frames from p to its
    end, whole cycles, then its frames before p: its step follows from the
    steps of that suffix and that prefix, both made once, and the squares
    of a whole cycle's step.
    """

    def __init__(self, frame: bytes, bitrate: int):
        self.frames = (unpadded(frame), padded(unpadded(frame)))
        self.steps = tuple(CrcStep.over(variant).kept() for variant in self.frames)
        self.bitrate = bitrate
        # The padding pattern repeats after this many frames (49 at every bitrate at 44.1 kHz).
        self.cycle = SAMPLE_RATE // math.gcd(144_000 * bitrate, SAMPLE_RATE)
        self._pattern = [bytes_after(bitrate, index + 1) - bytes_after(bitrate, index) - len(self.frames[0])
                         for index in range(self.cycle)]
        self._prefixes = [_NOTHING]  # the steps of the pattern's first 0, 1, ... frames
        for which in self._pattern:
            self._prefixes.append(self._prefixes[-1].then(self.steps[which]))
        self._suffixes = [_NOTHING]  # the steps of its last 0, 1, ... frames
        for which in reversed(self._pattern):
            self._suffixes.append(self.steps[which].then(self._suffixes[-1]))
        self._suffixes.reverse()  # now by the frame the suffix starts at
        self._cycles = Repeats(self._suffixes[0])  # whole cycles from the pattern's start

    def pattern(self, first: int) -> list[int]:
        """Which of ``frames`` each frame of a cycle from frame ``first`` is, to keep every frame on time."""
        phase = first % self.cycle
        return self._pattern[phase:] + self._pattern[:phase]

    def cycles(self, first: int, count: int) -> tuple[bytes, CrcStep]:
        """The bytes of one cycle from frame ``first``, and the step of ``count`` such cycles."""
        phase = first % self.cycle
        block = b"".join(self.frames[which] for which in self.pattern(phase))
        if count == 0:
            return block, _NOTHING
        # Cycles from place p: the pattern from p to its end, count - 1 whole cycles, then its start up to p.
        return block, self._suffixes[phase].then(self._cycles.times(count - 1)).then(self._prefixes[phase])



_silences: dict[tuple[str, int], Silence] = {}
_silences_lock = threading.Lock()


def silence_at(ffmpeg: str, bitrate: int, cache: Cache | None) -> Silence:
    """Silence as the encoder ``ffmpeg`` makes it at ``bitrate``. Its frame is asked of ffmpeg once for each
    ffmpeg, and kept among the cache's answers about installed tools: 40 ms a build."""
    with _silences_lock:
        if (ffmpeg, bitrate) not in _silences:
            def ask() -> str:
                return _silent_frame(ffmpeg, bitrate).hex()

            stat = os.stat(ffmpeg)
            identity = [ffmpeg, stat.st_size, stat.st_mtime_ns, lame_command(ffmpeg, bitrate)[1:]]
            frame = cache.answer("silence", identity, ask, _is_frame) if cache else ask()
            _silences[ffmpeg, bitrate] = Silence(bytes.fromhex(frame), bitrate)
        return _silences[ffmpeg, bitrate]


def _silent_frame(ffmpeg: str, bitrate: int) -> bytes:
    zeros = bytes(SAMPLE_RATE)  # half a second of 16-bit silence
    result = subprocess.run(lame_command(ffmpeg, bitrate), input=zeros, capture_output=True)
    if result.returncode != 0:
        raise AudioError(f"encoding the MP3 failed: {result.stderr.decode(errors='replace').strip()[-200:]}")
    frames = Frames().feed(result.stdout)
    # The middle of a silence: neither the encoder's start nor its flush is near.
    return frames[len(frames) // 2]


def _is_frame(kept: str) -> bool:
    try:
        frame = bytes.fromhex(kept)
        return len(frame) >= 4 and _length_of(frame[:4]) == len(frame)
    except (ValueError, AudioError):
        return False



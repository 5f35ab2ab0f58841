"""A bed's steady period as MP3 frames: encoded once, in context, then copied wherever the bed goes on unchanged."""

from __future__ import annotations

import subprocess

from voiceguide.cache import Cache, Encoded
from voiceguide.errors import AudioError
from voiceguide.mp3._crc import crc16
from voiceguide.mp3._encoder import TAIL, lame_command
from voiceguide.mp3._frames import Frames
from voiceguide.units import FRAME, WARM, Ground

# Where a copy of the period starts among the encoder's frames is free within the bitrate's padding cycle
# (49 frames at 44.1 kHz): the one with the fewest padded frames is taken, so that copies fall behind the
# bitrate's schedule rather than ahead of it, and padding some of them keeps them on it (see Writer.steady).
_CYCLE = 49


def ground_frames(ffmpeg: str, bitrate: int, ground: Ground, cache: Cache | None) -> list[bytes]:
    """The frames of ``ground``'s period: frame j carries what the session's frame k does wherever k is j
    modulo the period's frames, as a LAME that has been hearing the bed all along makes it."""
    count = ground.length // FRAME
    stored = cache.frames(ground.key) if cache else None
    if stored is not None:
        frames = Frames().feed(stored.data)
        if len(frames) == count and stored.crc == crc16(stored.data):
            return frames
    before = WARM // FRAME + _CYCLE  # frames of the period heard before the first that may be kept
    pcm = ground.pcm()
    heard = _cyclic(pcm, -before * FRAME, (count + _CYCLE) * FRAME + TAIL)
    result = subprocess.run(lame_command(ffmpeg, bitrate), input=heard, capture_output=True)
    if result.returncode != 0:
        raise AudioError(f"encoding the MP3 failed: {result.stderr.decode(errors='replace').strip()[-200:]}")
    made = Frames().feed(result.stdout)
    # The encoder's frame i carries the period's input from (i - before) * FRAME on: frame i is period frame
    # (i - before) mod count. Any window of count frames after WARM holds every period frame once.
    first = min(range(WARM // FRAME, WARM // FRAME + _CYCLE), key=lambda at: sum(_is_padded(frame) for frame in made[at : at + count]))
    window = made[first : first + count]
    if len(window) != count:
        raise AudioError(f"the encoder made {len(made)} frames of a bed's {count}")
    shift = (first - before) % count
    frames = window[-shift:] + window[:-shift] if shift else window
    if cache:
        data = b"".join(frames)
        cache.put_frames(ground.key, Encoded(data, count, crc16(data)))
    return frames


def _is_padded(frame: bytes) -> bool:
    return bool(frame[2] & 0x02)


def _cyclic(pcm: bytes, start: int, stop: int) -> bytes:
    """Samples ``start`` to ``stop`` of ``pcm`` (s16le) repeated without end, sample 0 at 0."""
    length = len(pcm) // 2
    offset = start % length
    turns = -(-(offset + stop - start) // length)
    return (pcm * turns)[2 * offset : 2 * (offset + stop - start)]

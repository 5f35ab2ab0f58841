"""The MP3 writer: CBR frames from LAME for what sounds, one stored frame repeated for silence.

A session is mostly silence (holds), and encoding silence costs as much as
encoding sound. Without the bit reservoir, every CBR frame carries all of its
own data, so frames can be put side by side as podcast ad insertion does. Each
sound is encoded on its own, by a LAME that has heard nothing before it, with
enough silence on each side that the frames at the cut are plain silent frames;
the frames between sounds are copies of one silent frame. The result decodes
to the same session as encoding it whole; only the time to make it now grows
with the speech, not with the holds.

The file starts with an Info frame (the CBR form of the Xing header) with the
frame count, a seek table and LAME's encoder delay and padding, so that players
show the exact duration, seek by byte offset and trim the encoder's delay.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from voiceguide.cache import Cache
from voiceguide.mp3._encoder import _Encoder, frame_span, lame_command
from voiceguide.mp3._frames import BITRATES, DEFAULT_BITRATE, Frames
from voiceguide.mp3._ground import ground_frames
from voiceguide.mp3._meter import Meter
from voiceguide.mp3._silence import silence_at
from voiceguide.mp3._writer import Writer
from voiceguide.units import DELAY, FRAME, Ground, Piece

Fill = Callable[[Piece, Callable[[memoryview], None]], None]

# What other stages use, and what a script that checks frames needs: the rest stays in the private modules.
__all__ = ["BITRATES", "DEFAULT_BITRATE", "Encoder", "Fill", "Frames", "Meter", "lame_command"]


class Encoder:
    """Writes sessions as CBR MP3 at ``bitrate`` with the ffmpeg at ``ffmpeg``, keeping encoded pieces in
    ``cache`` (None: nothing kept)."""

    def __init__(self, ffmpeg: str, bitrate: int, cache: Cache | None) -> None:
        self.ffmpeg = ffmpeg
        self.bitrate = bitrate
        self.cache = cache

    @functools.cached_property
    def identity(self) -> list[object]:
        """The encoder, as part of what stored frames depend on: another ffmpeg may make other frames from the
        same sound."""
        stat = os.stat(self.ffmpeg)
        return [self.ffmpeg, stat.st_size, stat.st_mtime_ns]

    def write(self, path: Path, total: int, pieces: list[Piece], fill: Fill, head: bytes = b"",
              measure: bool = False, ground: Ground | None = None) -> tuple[float, float] | None:
        """Write the session of ``total`` samples, silent but for ``pieces``, as a CBR MP3 file at ``path``,
        after ``head`` (its tags: written first, they need not push a whole session along the file afterwards);
        with ``measure``, return its integrated loudness (LUFS) and true peak (dBTP) as a player hears it.

        Pieces whose frames are in the cache are copied from it; the others
        are rendered (``fill`` sends a piece's PCM through the callable it is
        given), encoded (see _Encoder) and stored. Under a bed, ``ground`` is
        what sounds between the pieces instead of silence: its period is
        encoded once and its frames copied, and each piece is encoded with the
        bed around it (``fill`` is then asked for the bed the encoder hears
        on either side of the piece too, see heard).
        """
        frames = ground_frames(self.ffmpeg, self.bitrate, ground, self.cache) if ground else None
        if not measure:
            self._write(path, total, pieces, fill, None, head, frames)
            return None
        meter = Meter(total, self.cache)
        if frames:
            meter.ground(frames)
        try:
            self._write(path, total, pieces, fill, meter, head, frames)
        except BaseException:
            meter.abort()
            raise
        return meter.result()

    def _write(self, path: Path, total: int, pieces: list[Piece], fill: Fill, meter: Meter | None, head: bytes,
               ground: list[bytes] | None) -> None:
        """``meter`` is given each piece's frames as written, and each run of the ground's."""
        store = self.cache
        frames_total =     -(-(total + DELAY) // FRAME)  # the last frame holds the session's last sample
        stored = {piece.key: store.frames(piece.key) for piece in pieces if piece.key and store} if store else {}
        # A piece heard twice (the same words after two holds) is encoded once.
        missing = list({piece.key or id(piece): piece for piece in pieces
                        if piece.key is None or stored.get(piece.key) is None}.values())
        # Pieces are stored by a thread of their own: milliseconds the writing need not wait.
        saver = ThreadPoolExecutor(max_workers=1) if store and missing else None
        saved: list[Future] = []
        # The encoder starts first: its pieces are made while the file and the writer are set up.
        encoder = _Encoder(missing, self.ffmpeg, self.bitrate, fill, around=ground is not None) if missing else None
        try:
            file = open(path, "wb")
        except BaseException:
            if encoder:
                encoder.close()
            raise
        with file:
            try:
                file.write(head)
                writer = Writer(file, silence_at(self.ffmpeg, self.bitrate, self.cache), frames_total,
                                meter.frames if meter else None, ground, meter.steady if meter else None)
                encoded = encoder.encoded() if encoder else iter(())
                for piece in pieces:
                    first, last = frame_span(piece)
                    ready = stored.get(piece.key) if piece.key else None
                    if ready is not None:
                        writer.piece(first, ready)
                        continue
                    # A piece comes whole, to be kept; or, when no one keeps it (a bed), in parts as it is encoded.
                    while first < last:
                        part = next(encoded)
                        writer.piece(first, part)
                        first += part.count
                        if piece.key:
                            stored[piece.key] = part
                            if store and saver:
                                saved.append(saver.submit(store.put_frames, piece.key, part))
                for _ in encoded:  # let the encoder finish and report how it ended
                    raise AssertionError("the encoder made frames for more pieces than it was given")
            except BaseException:
                if saver:
                    saver.shutdown(cancel_futures=True)
                raise
            finally:
                if encoder:
                    encoder.close()
            if saver:
                saver.shutdown()
                for done in saved:
                    done.result()  # storing never fails for want of room or rights (see Cache): what comes here is a bug
            writer.finish(total)


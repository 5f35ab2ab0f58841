"""The MP3 writer: CBR frames from LAME for what sounds, one stored frame repeated for silence.

A session is mostly silence (holds), and encoding silence costs as much as
encoding sound. Without the bit reservoir, every CBR frame carries all of its
own data, so frames can be put side by side as podcast ad insertion does. Long
silences are cut short before the encoder, keeping enough silence on each side
that the frames at the cut are plain silent frames, and the frames cut out are
put back as copies of one silent frame. The result decodes to the same session
as encoding it whole; only the time to make it now grows with the speech, not
with the holds.

The file starts with an Info frame (the CBR form of the Xing header) with the
frame count, a seek table and LAME's encoder delay and padding, so that players
show the exact duration, seek by byte offset and trim the encoder's delay.
"""

from __future__ import annotations

import collections
import subprocess
import threading
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from voiceguide import tools
from voiceguide.errors import AudioError
from voiceguide.timeline import SAMPLE_RATE

if TYPE_CHECKING:
    import numpy as np

FRAME = 1152  # samples per MPEG-1 Layer III frame
# LAME's delay before the first input sample (in its tag), and the decoder's own; together they
# place input sample n at decoded sample n + DELAY, so frame k carries input from k * FRAME - DELAY.
ENCODER_DELAY = 576
DELAY = ENCODER_DELAY + 529
# Silence kept on each side of a cut: the encoder looks about two frames around the one it makes
# (overlapping transforms, window switching), so frames this far from any sound are plain silent frames.
MARGIN = 4 * FRAME + DELAY
BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
DEFAULT_BITRATE = 64  # kbps: clear speech in mono, about 29 MB an hour
INFO_OFFSET = 4 + 17  # frame header and the side information of a mono MPEG-1 frame
LAME_TAG_OFFSET = INFO_OFFSET + 4 + 4 + 4 + 4 + 100 + 4
TAG_CRC_SPAN = 190  # the LAME tag's own CRC covers this many bytes of the frame


def frame_bytes(bitrate: int) -> float:
    """The average length of a frame at ``bitrate`` kbps; frames are this long rounded down, or one byte more."""
    return 144 * bitrate * 1000 / SAMPLE_RATE


def lame_command(bitrate: int) -> list[str]:
    """ffmpeg reading s16le PCM and writing bare CBR frames without the bit reservoir, and no header."""
    return [tools.ffmpeg(), "-nostdin", "-v", "error", "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1",
            "-i", "pipe:0", "-c:a", "libmp3lame", "-b:a", f"{bitrate}k", "-reservoir", "0",
            "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
            "-id3v2_version", "0", "-write_xing", "0", "-f", "mp3", "pipe:1"]


class Frames:
    """Splits a stream of MPEG audio bytes into frames, by their headers."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        found = []
        position = 0
        while len(self._buffer) - position >= 4:
            length = frame_length(self._buffer[position : position + 4])
            if len(self._buffer) - position < length:
                break
            found.append(self._buffer[position : position + length])
            position += length
        self._buffer = self._buffer[position:]
        return found

    def rest(self) -> bytes:
        return self._buffer


def frame_length(header: bytes) -> int:
    word = int.from_bytes(header, "big")
    # MPEG-1 Layer III at 44.1 kHz is all the encoder is asked for; anything else is a fault.
    if word >> 21 != 0x7FF or (word >> 19) & 3 != 3 or (word >> 17) & 3 != 1 or (word >> 10) & 3 != 0:
        raise AudioError(f"the encoder wrote something that is not an MPEG-1 Layer III frame ({header.hex()})")
    index = (word >> 12) & 15
    if not 1 <= index <= 14:
        raise AudioError(f"the encoder wrote a frame with a bad bitrate ({header.hex()})")
    return int(frame_bytes(BITRATES[index - 1])) + ((word >> 9) & 1)


def padded(frame: bytes) -> bytes:
    """``frame`` one byte longer: its padding bit set, and a zero byte of ancillary data at its end.

    Without the bit reservoir a frame's data never reaches past its own
    end, so the added byte is read by no one.
    """
    return frame[:2] + bytes([frame[2] | 0x02]) + frame[3:] + b"\x00"


def unpadded(frame: bytes) -> bytes:
    """A frame with its padding byte removed; only for silent frames, whose data ends long before."""
    return frame[:2] + bytes([frame[2] & ~0x02 & 0xFF]) + frame[3:-1] if frame[2] & 0x02 else frame


class Silence:
    """The frame LAME makes for pure silence at a bitrate, plain and padded, and how each moves a CRC."""

    def __init__(self, frame: bytes):
        self.frames = (unpadded(frame), padded(unpadded(frame)))
        self._steps = [_crc_step(variant) for variant in self.frames]

    def crc(self, which: int, crc: int) -> int:
        """``crc`` continued over frame ``which`` (0 plain, 1 padded), in a few table lookups."""
        low, high, base = self._steps[which]
        return low[crc & 0xFF] ^ high[crc >> 8] ^ base


_silences: dict[int, Silence] = {}
_silences_lock = threading.Lock()


def silence_at(bitrate: int) -> Silence:
    with _silences_lock:
        if bitrate not in _silences:
            zeros = bytes(SAMPLE_RATE)  # half a second of 16-bit silence
            result = subprocess.run(lame_command(bitrate), input=zeros, capture_output=True)
            if result.returncode != 0:
                raise AudioError(f"encoding the MP3 failed: {result.stderr.decode(errors='replace').strip()[-200:]}")
            frames = Frames().feed(result.stdout)
            # The middle of a silence: neither the encoder's start nor its flush is near.
            _silences[bitrate] = Silence(frames[len(frames) // 2])
        return _silences[bitrate]


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC, the checksum of the LAME tag and of the music after it."""
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


def _crc_step(block: bytes) -> tuple[list[int], list[int], int]:
    """Tables for continuing a CRC over ``block``: the CRC's update is linear in the CRC it starts from."""
    base = crc16(block)
    return ([crc16(block, x) ^ base for x in range(256)], [crc16(block, x << 8) ^ base for x in range(256)], base)


def info_frame(bitrate: int, frames: int, size: int, samples: int, music_crc: int) -> bytes:
    """The Info frame for ``frames`` audio frames, ``size`` bytes in all, holding ``samples`` samples.

    Laid out as LAME and ffmpeg write it: the Xing fields (frame count, byte
    count, a seek table), then the LAME tag with the encoder delay and the
    padding at the end that players trim.
    """
    index = BITRATES.index(bitrate) + 1
    header = bytes([0xFF, 0xFB, index << 4, 0xC0])  # MPEG-1 Layer III, no CRC, 44.1 kHz, mono
    frame = bytearray(int(frame_bytes(bitrate)))
    frame[:4] = header
    padding = frames * FRAME - samples - ENCODER_DELAY
    if not 0 <= padding < 4096:
        raise AudioError(f"the encoder made {frames} frames for {samples} samples")
    # A uniform table: in a CBR file, byte offset and time are proportional.
    toc = bytes(min(255, i * 256 // 100) for i in range(100))
    xing = b"Info" + (0x0F).to_bytes(4, "big") + frames.to_bytes(4, "big") + size.to_bytes(4, "big") + toc + bytes(4)
    lame = (b"LAME3.100" + bytes(12) + ((ENCODER_DELAY << 12) | padding).to_bytes(3, "big") + bytes(4)
            + size.to_bytes(4, "big") + music_crc.to_bytes(2, "big"))
    frame[INFO_OFFSET : INFO_OFFSET + len(xing)] = xing
    frame[LAME_TAG_OFFSET : LAME_TAG_OFFSET + len(lame)] = lame
    frame[LAME_TAG_OFFSET + len(lame) : LAME_TAG_OFFSET + len(lame) + 2] = crc16(bytes(frame[:TAG_CRC_SPAN])).to_bytes(2, "big")
    return bytes(frame)


class Mp3Encoder:
    """A sink for the rendered session that writes a CBR MP3 file at ``path``.

    ``write`` sends sound to LAME; ``silence`` sends only the silence the
    encoder needs around a cut, and schedules copies of the silent frame for
    the rest. A reader thread takes LAME's frames as they come, puts the
    copies in where the cuts are, and writes everything after a placeholder
    for the Info frame, which ``finish`` fills in.
    """

    def __init__(self, path: Path, bitrate: int):
        self.written = 0
        self._bitrate = bitrate
        self._silence = silence_at(bitrate)
        self._frame_bytes = frame_bytes(bitrate)
        self._sent = 0  # samples sent to the encoder
        self._zeros = 0  # silence not sent yet: it may be cut
        self._cuts: collections.deque[tuple[int, int]] = collections.deque()  # (encoder frame index, frames cut)
        try:
            self._file: BinaryIO = open(path, "wb")
            self._file.write(bytes(int(self._frame_bytes)))
        except OSError as error:
            raise AudioError(f"cannot write {path}: {error.strerror or error}") from None
        try:
            self._process = subprocess.Popen(lame_command(bitrate), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.PIPE)
        except OSError as error:
            self._file.close()
            raise AudioError(f"cannot start ffmpeg: {error}") from None
        self._lock = threading.Lock()
        self._frames = 0  # frames written after the Info frame
        self._size = int(self._frame_bytes)
        self._crc = 0
        self._failure: BaseException | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def write(self, samples: np.ndarray) -> None:
        self._flush_zeros()
        self._send(samples.astype("<i2", copy=False).tobytes())
        self.written += len(samples)

    def silence(self, count: int) -> None:
        self._zeros += count
        self.written += count

    def _flush_zeros(self) -> None:
        """Send pending silence, cutting whole frames out of its middle when it is long enough."""
        count, self._zeros = self._zeros, 0
        if not count:
            return
        # The cut starts on a frame boundary of the encoder's output, at least MARGIN into the silence.
        cut_at = self._sent + MARGIN
        cut_at += (-(cut_at + DELAY)) % FRAME
        cut = max(0, (self._sent + count - MARGIN - cut_at) // FRAME)
        if cut:
            before = cut_at - self._sent
            self._send_zeros(before)
            with self._lock:
                self._cuts.append(((cut_at + DELAY) // FRAME, cut))
            self._send_zeros(count - before - cut * FRAME)
        else:
            self._send_zeros(count)

    def _send_zeros(self, count: int) -> None:
        block = bytes(2 * min(count, SAMPLE_RATE))
        while count > 0:
            part = min(count, SAMPLE_RATE)
            self._send(block[: 2 * part], advance=False)
            self._sent += part
            count -= part

    def _send(self, data: bytes, advance: bool = True) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(data)
        except BrokenPipeError:
            self._fail()
        if advance:
            self._sent += len(data) // 2

    def _read(self) -> None:
        assert self._process.stdout is not None
        frames = Frames()
        index = 0  # frames read from the encoder
        try:
            while chunk := self._process.stdout.read(65536):
                for frame in frames.feed(chunk):
                    index = self._insert_cuts(index)
                    self._put(frame)
                    index += 1
            self._insert_cuts(index, every=True)
            if frames.rest():
                raise AudioError("the encoder's output ended inside a frame")
        except BaseException as error:  # reported by finish(), in the thread that can raise it
            self._failure = error

    def _insert_cuts(self, index: int, every: bool = False) -> int:
        while True:
            with self._lock:
                if not self._cuts or (self._cuts[0][0] != index and not every):
                    return index
                _, count = self._cuts.popleft()
            for _ in range(count):
                # Pad a copy whenever the file falls behind the bitrate: byte offsets stay proportional to time.
                due = round((self._frames + 2) * self._frame_bytes)  # this frame and the Info frame included
                which = 1 if due - self._size > len(self._silence.frames[0]) else 0
                self._file.write(self._silence.frames[which])
                self._count(len(self._silence.frames[which]))
                self._crc = self._silence.crc(which, self._crc)

    def _put(self, frame: bytes) -> None:
        self._file.write(frame)
        self._count(len(frame))
        self._crc = crc16(frame, self._crc)

    def _count(self, size: int) -> None:
        self._frames += 1
        self._size += size

    def finish(self) -> None:
        self._flush_zeros()
        assert self._process.stdin is not None
        try:
            self._process.stdin.close()
        except BrokenPipeError:
            pass
        self._reader.join()
        if self._process.wait() != 0:
            self._fail()
        if self._failure is not None:
            self.abort()
            raise AudioError(f"encoding the MP3 failed: {self._failure}")
        samples = self.written
        try:
            self._file.seek(0)
            self._file.write(info_frame(self._bitrate, self._frames, self._size, samples, self._crc))
            self._file.close()
        except OSError as error:
            raise AudioError(f"cannot write the MP3: {error.strerror or error}") from None

    def abort(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._reader.join()
        self._file.close()

    def _fail(self) -> None:
        self.abort()
        assert self._process.stderr is not None
        lines = self._process.stderr.read().decode(errors="replace").strip().splitlines()
        raise AudioError(f"encoding the MP3 failed: {lines[-1] if lines else 'ffmpeg stopped'}")

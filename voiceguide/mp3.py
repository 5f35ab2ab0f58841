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
import itertools
import math
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

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
# Silence fed to the encoder after a piece: the frames up to MARGIN past it are made from silence that goes
# on, not from the end of the input. One frame more than MARGIN is the least that does (tested); two, to spare.
TAIL = MARGIN + 2 * FRAME
# Pieces that one ffmpeg encodes side by side, each with a LAME of its own: its threads keep both cores busy,
# and its pipes, threads and memory stay few (each more piece takes 0.3 MB). Windows has no way to hand a
# process more pipes: one piece each there.
_BATCH = 16 if os.name == "posix" else 1  # in each lane (see _lanes)
_SILENCE = memoryview(bytes(2 * TAIL))  # sent after each piece; the silence before one is shorter (see lead)
_CYCLES_PER_WRITE = 64
_WRITE_BACK = 4 << 20  # bytes of silence in one stretch past which it is sent to the disk at once
_PART_FRAMES = 2048  # about 53 s, 430 KB at 64 kbps  # silent frames are written about 650 KB at a time
BITRATES = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
DEFAULT_BITRATE = 64  # kbps: clear speech in mono, about 29 MB an hour
INFO_OFFSET = 4 + 17  # frame header and the side information of a mono MPEG-1 frame
LAME_TAG_OFFSET = INFO_OFFSET + 4 + 4 + 4 + 4 + 100 + 4
TAG_CRC_SPAN = 190  # the LAME tag's own CRC covers this many bytes of the frame


def frame_bytes(bitrate: int) -> float:
    """The average length of a frame at ``bitrate`` kbps; frames are this long rounded down, or one byte more."""
    return 144 * bitrate * 1000 / SAMPLE_RATE


_PCM = ["-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1"]


def _lame_output(bitrate: int) -> list[str]:
    """Bare CBR frames without the bit reservoir, and no header."""
    return ["-c:a", "libmp3lame", "-b:a", f"{bitrate}k", "-reservoir", "0", "-map_metadata", "-1",
            "-fflags", "+bitexact", "-flags:a", "+bitexact", "-id3v2_version", "0", "-write_xing", "0", "-f", "mp3"]


def lame_command(bitrate: int) -> list[str]:
    """ffmpeg reading s16le PCM and writing bare CBR frames without the bit reservoir, and no header."""
    return [tools.ffmpeg(), "-nostdin", "-v", "error", *_PCM, "-i", "pipe:0", *_lame_output(bitrate), "pipe:1"]


def encoder_command(bitrate: int, lanes: list[list[int]], targets: list[list[str]], inputs: list[str]) -> list[str]:
    """ffmpeg reading s16le PCM from each of ``inputs``, cutting it into stretches of its lane's lengths (samples)
    and encoding each stretch to its own target, as lame_command would: every stretch by a LAME of its own,
    which has heard nothing before it.

    Each input has a filter graph of its own, and so a thread of its own:
    the lanes are encoded side by side, one on each core.
    """
    command = [tools.ffmpeg(), "-nostdin", "-v", "error"]
    for source in inputs:
        command += [*_PCM, "-i", source]
    for lane, lengths in enumerate(lanes):
        cuts = list(itertools.accumulate(lengths))[:-1]
        outputs = [f"[l{lane}o{index}]" for index in range(len(lengths))]
        if cuts:
            cut = [f"[l{lane}s{index}]" for index in range(len(lengths))]
            graph = (f"[{lane}:a]asegment=samples={'|'.join(map(str, cuts))}" + "".join(cut) + ";"
                     + ";".join(f"{part}asetpts=PTS-STARTPTS{output}" for part, output in zip(cut, outputs)))
        else:
            graph = f"[{lane}:a]asetpts=PTS-STARTPTS{outputs[0]}"
        command += ["-filter_complex", graph]
    for lane, lane_targets in enumerate(targets):
        for index, target in enumerate(lane_targets):
            command += ["-map", f"[l{lane}o{index}]", *_lame_output(bitrate), target]
    return command


@functools.lru_cache(maxsize=1)
def encoder_identity() -> list[object]:
    """The encoder, as part of what stored frames depend on: another ffmpeg may make other frames from the same sound."""
    path = tools.ffmpeg()
    stat = os.stat(path)
    return [path, stat.st_size, stat.st_mtime_ns]


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
    length = _LENGTHS.get(header)
    if length is None:
        length = _LENGTHS[header] = _length_of(header)
    return length


_LENGTHS: dict[bytes, int] = {}  # a CBR stream has two headers, with and without padding: each is read once


def _length_of(header: bytes) -> int:
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
    """The frame LAME makes for pure silence at a bitrate, plain and padded, and what each does to a CRC.

    Runs of it are written a padding cycle at a time. A run of cycles that
    starts at place p of the pattern is the pattern's frames from p to its
    end, whole cycles, then its frames before p: its step follows from the
    steps of that suffix and that prefix, both made once, and the squares
    of a whole cycle's step.
    """

    def __init__(self, frame: bytes, bitrate: int):
        self.frames = (unpadded(frame), padded(unpadded(frame)))
        self.steps = tuple(Step.over(variant).kept() for variant in self.frames)
        self.bitrate = bitrate
        # The padding pattern repeats after this many frames (49 at every bitrate at 44.1 kHz).
        self.cycle = SAMPLE_RATE // math.gcd(144_000 * bitrate, SAMPLE_RATE)
        self._pattern = [due(bitrate, index + 1) - due(bitrate, index) - len(self.frames[0])
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

    def cycles(self, first: int, count: int) -> tuple[bytes, Step]:
        """The bytes of one cycle from frame ``first``, and the step of ``count`` such cycles."""
        phase = first % self.cycle
        block = b"".join(self.frames[which] for which in self.pattern(phase))
        if count == 0:
            return block, _NOTHING
        # Cycles from place p: the pattern from p to its end, count - 1 whole cycles, then its start up to p.
        return block, self._suffixes[phase].then(self._cycles.times(count - 1)).then(self._prefixes[phase])


def due(bitrate: int, frames: int) -> int:
    """Bytes a CBR file holds after ``frames`` audio frames and its Info frame, at ``bitrate``."""
    # 144 * bitrate / sample rate bytes a frame, rounded half up, in integers.
    numerator, denominator = 144_000 * bitrate, SAMPLE_RATE
    return (2 * numerator * (frames + 1) + denominator) // (2 * denominator)


_silences: dict[int, Silence] = {}
_silences_lock = threading.Lock()


def silence_at(bitrate: int) -> Silence:
    """Silence as this encoder makes it at ``bitrate``. Its frame is asked of ffmpeg once for each ffmpeg,
    and kept beside the other answers about installed tools (see tools.remembered): 40 ms a build."""
    with _silences_lock:
        if bitrate not in _silences:
            kept = tools.kept("tools", "silence", [*encoder_identity(), lame_command(bitrate)[1:]])
            frame = tools.remembered(kept, lambda: _silent_frame(bitrate).hex(), _is_frame)
            _silences[bitrate] = Silence(bytes.fromhex(frame), bitrate)
        return _silences[bitrate]


def _silent_frame(bitrate: int) -> bytes:
    zeros = bytes(SAMPLE_RATE)  # half a second of 16-bit silence
    result = subprocess.run(lame_command(bitrate), input=zeros, capture_output=True)
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


_LANES = 512  # stretches checksummed side by side (see crc16)


def crc16(data: bytes, crc: int = 0) -> int:
    """CRC-16/ARC, the checksum of the LAME tag and of the music after it."""
    if len(data) < 2 * _LANES:
        for byte in data:
            crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
        return crc
    import numpy as np  # here: the planner and the command line read this module before numpy is needed

    # Byte by byte in Python, the frames of a few minutes of speech take a tenth of a second. A CRC is
    # linear, so stretches of the data are checksummed side by side, then joined as in crc_after_zeros.
    # Zeros in front leave a CRC that starts at 0 at 0, so they even out the stretches; and they make each
    # a power of two long, so that the zeros that join them are steps kept ready (_ZERO_BYTES).
    power = (-(-len(data) // _LANES) - 1).bit_length()
    length = 1 << power
    padded = np.zeros(length * _LANES, dtype=np.uint8)
    padded[len(padded) - len(data) :] = np.frombuffer(data, dtype=np.uint8)
    columns = np.ascontiguousarray(padded.reshape(_LANES, length).T)
    table = np.array(_CRC_TABLE, dtype=np.uint16)
    states = np.zeros(_LANES, dtype=np.uint16)
    for column in columns:
        states = table[(states ^ column) & 0xFF] ^ (states >> 8)
    # Joined in pairs, then pairs of pairs: each time the first of two goes on over the other's zeros.
    while len(states) > 1:
        states = _ZERO_BYTES.square(power).apply_all(states[0::2]) ^ states[1::2]
        power += 1
    return crc_after_zeros(crc, len(data)) ^ int(states[0])


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _crc_table()


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


def crc_after_zeros(crc: int, count: int) -> int:
    """``crc`` continued over ``count`` zero bytes, in time logarithmic in ``count``.

    With it, the CRC of two joined pieces follows from the CRCs of the
    pieces: crc(a + b) = crc_after_zeros(crc(a), len(b)) ^ crc(b). A piece
    of frames taken from the cache is not read byte by byte again.
    """
    return _ZERO_BYTES.times(count).apply(crc)


@dataclass(frozen=True)
class Step:
    """What reading some bytes does to a CRC-16: c -> M c xor k, M a 16x16 matrix over GF(2) given as its columns.

    The CRC of joined pieces follows from their steps, and a step repeated
    n times is found in log n compositions: the CRC of an hour of silent
    frames costs no more than that of one.
    """

    matrix: tuple[int, ...]
    constant: int

    @staticmethod
    def over(data: bytes) -> Step:
        """The step of reading ``data``."""
        base = crc16(data)
        return Step(tuple(crc16(data, 1 << bit) ^ base for bit in range(16)), base)

    def apply(self, crc: int) -> int:
        out = self.constant
        bit = 0
        while crc:
            if crc & 1:
                out ^= self.matrix[bit]
            crc >>= 1
            bit += 1
        return out

    def then(self, after: Step) -> Step:
        """This step followed by ``after``."""
        # A step made for once is applied bit by bit: its tables would cost more than they save.
        if "_tables" not in after.__dict__:
            return Step(tuple(after.apply(column) ^ after.constant for column in self.matrix),
                        after.apply(self.constant))
        low, high = after._tables
        return Step(tuple(low[column & 0xFF] ^ high[column >> 8] for column in self.matrix),
                    low[self.constant & 0xFF] ^ high[self.constant >> 8] ^ after.constant)

    def kept(self) -> Step:
        """This step, made quick to follow others with: for the steps that do so again and again (a frame,
        a square), where the 512 entries of its tables repay themselves."""
        self._tables  # noqa: B018 (made now, kept with the step)
        return self

    @functools.cached_property
    def _tables(self) -> tuple[list[int], list[int]]:
        """M times every low byte and every high byte of a CRC: two lookups apply M."""
        tables = []
        for columns in (self.matrix[:8], self.matrix[8:]):
            table = [0] * 256
            for value in range(1, 256):
                lowest = value & -value
                table[value] = table[value ^ lowest] ^ columns[lowest.bit_length() - 1]
            tables.append(table)
        return tables[0], tables[1]

    def apply_all(self, crcs: np.ndarray) -> np.ndarray:
        """``apply`` to every CRC in an array at once, by its tables (see kept)."""
        low, high = self._table_arrays
        return low[crcs & 0xFF] ^ high[crcs >> 8] ^ low.dtype.type(self.constant)

    @functools.cached_property
    def _table_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        return np.array(self._tables[0], dtype=np.uint16), np.array(self._tables[1], dtype=np.uint16)

    def times(self, count: int) -> Step:
        """This step ``count`` times over, by repeated squaring."""
        result, step = _NOTHING, self
        while count:
            if count & 1:
                result = result.then(step)
            step = step.then(step)
            count >>= 1
        return result


_NOTHING = Step(tuple(1 << bit for bit in range(16)), 0)  # reading nothing: the CRC stays


class Repeats:
    """A step and its squares, kept: the step of any number of repeats in as many compositions as it has bits."""

    def __init__(self, step: Step) -> None:
        self._squares = [step.kept()]  # the step repeated 1, 2, 4, ... times
        self._lock = threading.Lock()

    def times(self, count: int) -> Step:
        result = _NOTHING
        power = 0
        while count >> power:
            if (count >> power) & 1:
                result = result.then(self.square(power))
            power += 1
        return result

    def square(self, power: int) -> Step:
        """The step repeated 2 ** ``power`` times."""
        with self._lock:
            while power >= len(self._squares):
                self._squares.append(self._squares[-1].then(self._squares[-1]).kept())
            return self._squares[power]


_ZERO_BYTES = Repeats(Step.over(b"\x00"))


@dataclass(frozen=True)
class Piece:
    """Sound from sample ``start`` for ``length`` samples; silence lies all around it.

    ``key`` names its encoded frames in the cache; None keeps them out of
    it (a background bed sounds through the whole session and never repeats).
    """

    start: int
    length: int
    key: str | None


@dataclass(frozen=True)
class Encoded:
    """A piece's frames (those of its frame_span), with their CRC."""

    data: bytes
    count: int
    crc: int


class FrameStore(Protocol):
    def get_frames(self, key: str) -> Encoded | None: ...

    def put_frames(self, key: str, encoded: Encoded) -> None: ...


def lead(start: int) -> int:
    """The silence fed to the encoder before a piece that starts at ``start``.

    At least MARGIN, and such that the encoder's input starts on a multiple
    of FRAME in the session: then its frame i is the session's frame
    (start - lead) / FRAME + i, as if the whole session had been encoded.
    """
    return MARGIN + (start - MARGIN) % FRAME


def frame_span(piece: Piece) -> tuple[int, int]:
    """The frames whose sound a piece reaches (first, last + 1): those that are not plain silence."""
    return (piece.start - MARGIN + DELAY) // FRAME, -(-(piece.start + piece.length + MARGIN + DELAY) // FRAME)


Tap = Callable[[int, bytes, int], None]


def write_mp3(path: Path, bitrate: int, total: int, pieces: list[Piece],
              render: Callable[[Piece, Callable[[memoryview], None]], None], store: FrameStore | None,
              tap: Tap | None = None, head: bytes = b"") -> None:
    """Write the session of ``total`` samples, silent but for ``pieces``, as a CBR MP3 file at ``path``, after
    ``head`` (its tags: written first, they need not push a whole session along the file afterwards).

    Pieces whose frames are in ``store`` are copied from it; the others are
    rendered (``render`` sends a piece's PCM through the callable it is
    given), encoded (see _Encoder) and stored. ``tap`` is given
    each piece's frames as written: (first frame, bytes, frame count).
    """
    frames_total = -(-(total + DELAY) // FRAME)  # the last frame holds the session's last sample
    stored = {piece.key: store.get_frames(piece.key) for piece in pieces if piece.key and store} if store else {}
    # A piece heard twice (the same words after two holds) is encoded once.
    missing = list({piece.key or id(piece): piece for piece in pieces if stored.get(piece.key) is None}.values())
    # Pieces are stored by a thread of their own: each is synced to disk, milliseconds the writing need not wait.
    saver = ThreadPoolExecutor(max_workers=1) if store and missing else None
    saved: list[Future] = []
    with open(path, "wb") as file:
        file.write(head)
        writer = _Writer(file, bitrate, frames_total, tap)
        encoder = _Encoder(missing, bitrate, render) if missing else None
        try:
            encoded = encoder.encoded() if encoder else iter(())
            for piece in pieces:
                first, last = frame_span(piece)
                ready = stored.get(piece.key)
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
                done.result()  # a piece that could not be stored fails the build, as it would have at once
        writer.finish(total)


class _Writer:
    """Writes frames in order after room for the Info frame, filling the gaps with silent frames."""

    def __init__(self, file: BinaryIO, bitrate: int, frames_total: int, tap: Tap | None = None):
        self.file = file
        self.tap = tap
        self.bitrate = bitrate
        self.frames_total = frames_total
        self.average = frame_bytes(bitrate)
        self.start = file.tell()  # where the Info frame goes
        file.write(bytes(int(self.average)))  # room for the Info frame, filled in last
        file.flush()  # a file that has begun shows it at once
        self.silence = silence_at(bitrate)
        self.frames = 0  # audio frames written
        self.size = int(self.average)  # bytes written, the Info frame included
        self.crc = 0

    def piece(self, first: int, encoded: Encoded) -> None:
        """The frames of a piece, the first of them frame ``first`` of the session."""
        start = max(first, self.frames)
        self.silent(min(start, self.frames_total) - self.frames)
        data, count, crc = encoded.data, encoded.count, encoded.crc
        if first < self.frames or first + count > self.frames_total:
            # A piece at the very start or end: the frames before the session's first or after its last go.
            frames = Frames().feed(data)[self.frames - first if first < self.frames else 0:]
            frames = frames[: max(0, self.frames_total - start)]
            data, count = b"".join(frames), len(frames)
            crc = crc16(data)
        if self.tap:
            self.tap(start, data, count)
        self.file.write(data)
        self.frames += count
        self.size += len(data)
        self.crc = crc_after_zeros(self.crc, len(data)) ^ crc

    def silent(self, count: int) -> None:
        """``count`` copies of the silent frame, padded where the bitrate puts a padded frame.

        Padding keeps every frame where the bitrate puts it, so players seek by
        byte offset to the right time: whenever the file has fallen behind,
        the next copy is padded. Stored pieces keep the padding LAME gave
        them, so a run may begin a byte or two off; once back on time, the
        run follows the bitrate's own pattern, which repeats every
        ``cycle`` frames, and is written and checksummed a cycle at a time.
        """
        plain, _ = self.silence.frames
        end = self.frames + count
        while self.frames < end and self.size != due(self.bitrate, self.frames):
            self._silent_frame(1 if due(self.bitrate, self.frames + 1) - self.size > len(plain) else 0)
        if self.frames == end:
            return
        whole, rest = divmod(end - self.frames, self.silence.cycle)
        block, step = self.silence.cycles(self.frames, whole)
        many = memoryview(block * min(_CYCLES_PER_WRITE, whole))  # made once: each new one is page faults
        for start in range(0, whole, _CYCLES_PER_WRITE):
            self.file.write(many[: min(_CYCLES_PER_WRITE, whole - start) * len(block)])
        if whole * len(block) > _WRITE_BACK and hasattr(os, "posix_fadvise"):
            # A long silence goes to the disk now, not all at the sync at the end (Linux starts writing the
            # pages out, and lets them go: nothing reads them again).
            self.file.flush()
            os.posix_fadvise(self.file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        self.crc = step.apply(self.crc)
        self.frames += whole * self.silence.cycle
        self.size += whole * len(block)
        for which in self.silence.pattern(self.frames)[:rest]:
            self._silent_frame(which)

    def _silent_frame(self, which: int) -> None:
        frame = self.silence.frames[which]
        self.file.write(frame)
        self.frames += 1
        self.size += len(frame)
        self.crc = self.silence.steps[which].apply(self.crc)

    def finish(self, total: int) -> None:
        self.silent(self.frames_total - self.frames)
        self.file.seek(self.start)
        self.file.write(info_frame(self.bitrate, self.frames, self.size, total, self.crc))


class _Encoder:
    """Encodes ``pieces`` in turn, _BATCH a lane in one ffmpeg each; ``encoded`` hands on each one's frames.

    The first ffmpeg starts at once; each next one when the one before has
    ended, so that no more than one is ever running (each holds 30 to 40 MB).
    """

    def __init__(self, pieces: list[Piece], bitrate: int, render: Callable[[Piece, Callable[[memoryview], None]], None]):
        self.bitrate = bitrate
        self.render = render
        # Even batches: 25 pieces go as 13 and 12, not as 24 and 1.
        count = -(-len(pieces) // (_BATCH * _lanes()))
        self.waiting = [pieces[index * len(pieces) // count : (index + 1) * len(pieces) // count]
                        for index in range(count)]
        self.batch: _Batch | None = _Batch(self.waiting.pop(0), bitrate, render) if self.waiting else None

    def encoded(self) -> Iterator[Encoded]:
        """Each piece's frames in turn, a piece without a key in parts of _PART_FRAMES (it may be a whole
        session under a bed, too much to hold); then each ffmpeg's end is checked."""
        while self.batch is not None:
            yield from self.batch.encoded()
            self.batch = _Batch(self.waiting.pop(0), self.bitrate, self.render) if self.waiting else None

    def close(self) -> None:
        if self.batch is not None:
            self.batch.close()


def _lanes() -> int:
    """Inputs to one ffmpeg, each encoded on a thread of its own: one per core, two at most (each more
    takes memory, and a build's other work needs a core too). Windows can hand a process no more pipes."""
    return min(2, os.cpu_count() or 1) if os.name == "posix" else 1


class _Batch:
    """One ffmpeg encoding each of ``pieces`` with a LAME of its own, to a pipe of its own; started at once.

    The pieces take turns between the lanes (see _lanes), so that they
    are encoded side by side and come out about in order. A LAME that has
    heard nothing makes the same frames for the same sound every time, so
    a piece encoded alone (a rebuild) and among others (a first build)
    gives the same bytes.
    """

    def __init__(self, pieces: list[Piece], bitrate: int, render: Callable[[Piece, Callable[[memoryview], None]], None]):
        self.pieces = pieces
        self.render = render
        count = min(_lanes(), len(pieces))
        self.lanes = [pieces[lane::count] for lane in range(count)]
        # The first piece's frames come on stdout, the first lane's sound goes to stdin; the others each have a
        # pipe of their own.
        extra = [os.pipe() for _ in pieces[1:]]
        sources = [os.pipe() for _ in self.lanes[1:]]
        outputs = ["pipe:1"] + [f"pipe:{write}" for _, write in extra]
        targets = [outputs[lane::count] for lane in range(count)]
        inputs = ["pipe:0"] + [f"pipe:{read}" for read, _ in sources]
        lengths = [[lead(piece.start) + piece.length + TAIL for piece in lane] for lane in self.lanes]
        try:
            # Unbuffered: when the build is stopped, no half-sent buffer is left to flush into a pipe no one reads.
            self.process = subprocess.Popen(encoder_command(bitrate, lengths, targets, inputs), stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0,
                                            pass_fds=[write for _, write in extra] + [read for read, _ in sources])
        except OSError as error:
            for read, _ in extra:
                os.close(read)
            for _, write in sources:
                os.close(write)
            raise AudioError(f"cannot start ffmpeg: {error}") from None
        finally:
            for _, write in extra:
                os.close(write)
            for read, _ in sources:
                os.close(read)
        assert self.process.stdout is not None and self.process.stdin is not None
        self.outputs = [self.process.stdout.fileno()] + [read for read, _ in extra]
        self.inputs = [self.process.stdin] + [open(write, "wb", buffering=0) for _, write in sources]
        self.frames: list[list[bytes]] = [[] for _ in pieces]
        self.ended = [False] * len(pieces)
        self.failure: list[BaseException] = []
        self.arrived = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.feeders = [threading.Thread(target=self._feed, args=(lane,), daemon=True) for lane in range(count)]
        self.reader.start()
        for feeder in self.feeders:
            feeder.start()

    def _read(self) -> None:
        parsers = [Frames() for _ in self.outputs]
        try:
            for index, chunk in _chunks(self.outputs):
                found = parsers[index].feed(chunk) if chunk else []
                with self.arrived:
                    self.frames[index].extend(found)
                    self.ended[index] = not chunk
                    self.arrived.notify_all()
        except BaseException as error:  # reported in the thread that can raise it
            self.failure.append(error)
        finally:
            for output in self.outputs[1:]:  # stdout is closed with the process
                os.close(output)
            with self.arrived:
                self.ended = [True] * len(self.ended)
                self.arrived.notify_all()

    def _feed(self, lane: int) -> None:
        stream = self.inputs[lane]

        def send(data: memoryview) -> None:
            view = memoryview(data)
            while view:
                view = view[stream.write(view) :]

        try:
            for piece in self.lanes[lane]:
                send(_SILENCE[: 2 * lead(piece.start)])
                sent = [0]

                def out(data: memoryview) -> None:
                    sent[0] += len(data) // 2
                    send(data)

                self.render(piece, out)
                if sent[0] != piece.length:
                    raise AssertionError(f"a piece of {piece.length} samples was rendered as {sent[0]}")
                send(_SILENCE)
        except BrokenPipeError:
            pass  # the reason is in ffmpeg's stderr, reported by encoded
        except BaseException as error:
            self.failure.append(error)
            self.process.kill()
        finally:
            try:
                stream.close()
            except BrokenPipeError:
                pass

    def encoded(self) -> Iterator[Encoded]:
        for index, piece in enumerate(self.pieces):
            # The encoder's input starts on the session's frame grid (see lead): its frame 0 is this session frame.
            offset = (piece.start - lead(piece.start)) // FRAME
            first, last = frame_span(piece)
            at, end = first - offset, last - offset  # the encoder's frames for the piece's first and last + 1
            dropped = 0  # frames already handed on and let go
            while at < end:
                stop = end if piece.key else min(end, at + _PART_FRAMES)
                with self.arrived:
                    frames = self.frames[index]
                    while dropped + len(frames) < stop and not self.ended[index] and not self.failure:
                        self.arrived.wait()
                    if self.failure:
                        raise self.failure[0]
                    if dropped + len(frames) < stop:
                        raise _failed(self.process, f"the encoder stopped after {dropped + len(frames)} frames")
                    taken = frames[at - dropped : stop - dropped]
                    del frames[: stop - dropped]
                    dropped = stop
                data = b"".join(taken)
                yield Encoded(data, len(taken), crc16(data))
                at = stop
        for feeder in self.feeders:
            feeder.join()
        self.reader.join()
        if self.failure:
            raise self.failure[0]
        if self.process.wait() != 0:
            raise _failed(self.process, "ffmpeg stopped")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.reader.join()  # its pipes end with the process


# ffmpeg writes each frame as it is made (it closes its outputs only at its end, so a buffered output would
# arrive all at once): reading a frame at a time would wake this process for every 200 bytes. What has come
# is read this often instead; a pipe holds seconds of frames.
_READ_PAUSE = 0.005  # seconds


def _chunks(outputs: list[int]) -> Iterator[tuple[int, bytes]]:
    """What arrives on each of the pipes ``outputs``, as (which, bytes), and (which, b"") when one ends."""
    if len(outputs) == 1:
        while chunk := os.read(outputs[0], 1 << 16):
            yield 0, chunk
            time.sleep(_READ_PAUSE)
        yield 0, b""
        return
    # ffmpeg writes its outputs side by side: read them as they come, or one full pipe would hold up the rest.
    with selectors.DefaultSelector() as selector:
        for index, output in enumerate(outputs):
            selector.register(output, selectors.EVENT_READ, index)
        while selector.get_map():
            for key, _ in selector.select():
                chunk = os.read(key.fd, 1 << 16)
                if not chunk:
                    selector.unregister(key.fd)
                yield key.data, chunk
            time.sleep(_READ_PAUSE)


def _failed(process: subprocess.Popen, otherwise: str) -> AudioError:
    """The encoder's own last word on why it stopped, as an error."""
    process.wait()
    said = process.stderr.read().decode(errors="replace").strip().splitlines() if process.stderr else []
    return AudioError(f"encoding the MP3 failed: {said[-1] if said else otherwise}")

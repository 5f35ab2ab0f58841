"""LAME through ffmpeg: pieces of sound encoded each by a LAME that has heard nothing before it, side by side."""

from __future__ import annotations

import itertools
import os
import selectors
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

from voiceguide.cache import Encoded
from voiceguide.errors import AudioError
from voiceguide.mp3._crc import crc16
from voiceguide.mp3._frames import Frames
from voiceguide.units import DELAY, FRAME, MARGIN, SAMPLE_RATE, WARM, Piece

# Silence fed to the encoder after a piece: the frames up to MARGIN past it are made from silence that goes
# on, not from the end of the input. One frame more than MARGIN is the least that does (tested); two, to spare.
TAIL = MARGIN + 2 * FRAME
# Pieces that one ffmpeg encodes side by side, each with a LAME of its own: its threads keep both cores busy,
# and its pipes, threads and memory stay few (each more piece takes 0.3 MB). Windows has no way to hand a
# process more pipes: one piece each there.
_BATCH = 16 if os.name == "posix" else 1  # in each lane (see _lanes)
_SILENCE = memoryview(bytes(2 * TAIL))  # sent after each piece; the silence before one is shorter (see lead)
_PART_FRAMES = 2048  # about 53 s, 430 KB at 64 kbps  # silent frames are written about 650 KB at a time

_PCM = ["-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1"]


def _lame_output(bitrate: int) -> list[str]:
    """Bare CBR frames without the bit reservoir, and no header."""
    return ["-c:a", "libmp3lame", "-b:a", f"{bitrate}k", "-reservoir", "0", "-map_metadata", "-1",
            "-fflags", "+bitexact", "-flags:a", "+bitexact", "-id3v2_version", "0", "-write_xing", "0", "-f", "mp3"]


def lame_command(ffmpeg: str, bitrate: int) -> list[str]:
    """ffmpeg reading s16le PCM and writing bare CBR frames without the bit reservoir, and no header."""
    return [ffmpeg, "-nostdin", "-v", "error", *_PCM, "-i", "pipe:0", *_lame_output(bitrate), "pipe:1"]


def encoder_command(ffmpeg: str, bitrate: int, lanes: list[list[int]], targets: list[list[str]], inputs: list[str]) -> list[str]:
    """ffmpeg reading s16le PCM from each of ``inputs``, cutting it into stretches of its lane's lengths (samples)
    and encoding each stretch to its own target, as lame_command would: every stretch by a LAME of its own,
    which has heard nothing before it.

    Each input has a filter graph of its own, and so a thread of its own:
    the lanes are encoded side by side, one on each core.
    """
    command = [ffmpeg, "-nostdin", "-v", "error"]
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



def lead(start: int) -> int:
    """The silence fed to the encoder before a piece that starts at ``start``.

    At least MARGIN, and such that the encoder's input starts on a multiple
    of FRAME in the session: then its frame i is the session's frame
    (start - lead) / FRAME + i, as if the whole session had been encoded.
    """
    return MARGIN + (start - MARGIN) % FRAME


def heard(piece: Piece, around: bool) -> tuple[int, int]:
    """What the encoder hears for a piece, as session samples (start, end): silence on either side of it; or,
    ``around`` a piece under a bed, the bed itself, from WARM before its lead.

    A LAME that has heard nothing makes its first frames from nothing before
    them. After silence that is right; in the middle of a bed it is not, so
    the encoder hears the bed for a while first, and the frames it makes of
    that are dropped: the frames kept are those of a LAME that has been
    hearing the bed all along, and they meet the bed's own frames on either side.
    """
    start = piece.start - lead(piece.start) - (WARM if around else 0)
    return start, piece.start + piece.length + TAIL


def frame_span(piece: Piece) -> tuple[int, int]:
    """The frames whose sound a piece reaches (first, last + 1): those that are not plain silence."""
    return (piece.start - MARGIN + DELAY) // FRAME, -(-(piece.start + piece.length + MARGIN + DELAY) // FRAME)



class _Encoder:
    """Encodes ``pieces`` in turn, _BATCH a lane in one ffmpeg each; ``encoded`` hands on each one's frames.

    The first ffmpeg starts at once; each next one when the one before has
    ended, so that no more than one is ever running (each holds 30 to 40 MB).
    """

    def __init__(self, pieces: list[Piece], ffmpeg: str, bitrate: int,
                 render: Callable[[Piece, Callable[[memoryview], None]], None], around: bool = False):
        self.ffmpeg = ffmpeg
        self.bitrate = bitrate
        self.render = render
        self.around = around
        # Even batches: 25 pieces go as 13 and 12, not as 24 and 1.
        count = -(-len(pieces) // (_BATCH * _lanes()))
        self.waiting = [pieces[index * len(pieces) // count : (index + 1) * len(pieces) // count]
                        for index in range(count)]
        self.batch: _Batch | None = _Batch(self.waiting.pop(0), ffmpeg, bitrate, render, around) if self.waiting else None

    def encoded(self) -> Iterator[Encoded]:
        """Each piece's frames in turn, a piece without a key in parts of _PART_FRAMES (it may be a whole
        session under a bed, too much to hold); then each ffmpeg's end is checked."""
        while self.batch is not None:
            yield from self.batch.encoded()
            self.batch = (_Batch(self.waiting.pop(0), self.ffmpeg, self.bitrate, self.render, self.around)
                          if self.waiting else None)

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

    def __init__(self, pieces: list[Piece], ffmpeg: str, bitrate: int,
                 render: Callable[[Piece, Callable[[memoryview], None]], None], around: bool):
        self.pieces = pieces
        self.render = render
        self.around = around
        count = min(_lanes(), len(pieces))
        self.lanes = [pieces[lane::count] for lane in range(count)]
        # The first piece's frames come on stdout, the first lane's sound goes to stdin; the others each have a
        # pipe of their own.
        extra = [os.pipe() for _ in pieces[1:]]
        sources = [os.pipe() for _ in self.lanes[1:]]
        outputs = ["pipe:1"] + [f"pipe:{write}" for _, write in extra]
        targets = [outputs[lane::count] for lane in range(count)]
        inputs = ["pipe:0"] + [f"pipe:{read}" for read, _ in sources]
        lengths = [[end - start for start, end in map(self._heard, lane)] for lane in self.lanes]
        try:
            # Unbuffered: when the build is stopped, no half-sent buffer is left to flush into a pipe no one reads.
            self.process = subprocess.Popen(encoder_command(ffmpeg, bitrate, lengths, targets, inputs), stdin=subprocess.PIPE,
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

    def _heard(self, piece: Piece) -> tuple[int, int]:
        return heard(piece, self.around)

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
                sent = [0]

                def out(data: memoryview, sent: list[int] = sent) -> None:
                    sent[0] += len(data) // 2
                    send(data)

                if self.around:  # the bed goes on around the piece: all that is heard is rendered
                    start, end = self._heard(piece)
                    piece = Piece(start, end - start, piece.key)
                else:
                    send(_SILENCE[: 2 * lead(piece.start)])
                self.render(piece, out)
                if sent[0] != piece.length:
                    raise AssertionError(f"a piece of {piece.length} samples was rendered as {sent[0]}")
                if not self.around:
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
            offset = self._heard(piece)[0] // FRAME
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


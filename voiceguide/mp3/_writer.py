"""Writing a session's frames in order: stored and encoded pieces, silent frames between them, the Info frame last."""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable
from typing import BinaryIO

from voiceguide.cache import Encoded
from voiceguide.mp3._crc import crc16, crc_after_zeros, zeros_step
from voiceguide.mp3._frames import Frames, bytes_after, frame_bytes, info_frame, padded
from voiceguide.mp3._silence import Silence

_CYCLES_PER_WRITE = 64
_WRITE_BACK = 4 << 20  # bytes of copies in one stretch past which they are sent to the disk at once

Tap = Callable[[int, bytes, int], None]
GroundTap = Callable[[int, int], None]


class Writer:
    """Writes frames in order after room for the Info frame, filling the gaps with silent frames."""

    def __init__(self, file: BinaryIO, silence: Silence, frames_total: int, tap: Tap | None = None,
                 ground: list[bytes] | None = None, ground_tap: GroundTap | None = None):
        """``ground``: the frames of a bed's steady period (see ground_frames), written between pieces
        instead of silence; ``ground_tap`` is told of each run of them (first frame, count)."""
        self.file = file
        self.tap = tap
        self.ground = ground
        self.ground_tap = ground_tap
        self._plain = [index for index, frame in enumerate(ground or []) if not frame[2] & 0x02]
        self._ground_crc = _Prefixes(ground) if ground else None
        self.bitrate = silence.bitrate
        self.frames_total = frames_total
        self.average = frame_bytes(self.bitrate)
        self.start = file.tell()  # where the Info frame goes
        file.write(bytes(int(self.average)))  # room for the Info frame, filled in last
        file.flush()  # a file that has begun shows it at once
        self.silence = silence
        self.frames = 0  # audio frames written
        self.size = int(self.average)  # bytes written, the Info frame included
        self.crc = 0
        self._copied = 0  # bytes of copies written since the last were sent to the disk (see _write_back)

    def piece(self, first: int, encoded: Encoded) -> None:
        """The frames of a piece, the first of them frame ``first`` of the session."""
        start = max(first, self.frames)
        self.between(min(start, self.frames_total) - self.frames)
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

    def between(self, count: int) -> None:
        """``count`` frames of what sounds between pieces: silence, or the bed's period."""
        if self.ground is None:
            self.silent(count)
        else:
            self.steady(count)

    def steady(self, count: int) -> None:
        """``count`` frames of the bed's period, each where the session's frame falls in it.

        Copies keep the padding the encoder gave them, and a padded frame may
        use its last byte; so whenever the file has fallen behind the
        bitrate's schedule, that many of the copy's unpadded frames are
        padded (a zero byte no one reads), and every copy ends on time.
        """
        assert self.ground is not None
        period = len(self.ground)
        end = self.frames + count
        size_before = self.size
        while self.frames < end:
            at = self.frames % period
            take = min(period - at, end - self.frames)
            frames = self.ground[at : at + take]
            size = sum(map(len, frames))
            behind = bytes_after(self.bitrate, self.frames + take) - self.size - size
            chosen: tuple[int, ...] = ()
            if behind > 0:
                plain = self._plain[bisect.bisect_left(self._plain, at) : bisect.bisect_left(self._plain, at + take)]
                chosen = tuple(plain[len(plain) - min(behind, len(plain)) :])
                frames = list(frames)
                for index in chosen:
                    frames[index - at] = padded(frames[index - at])
                size += len(chosen)
            assert self._ground_crc is not None
            crc = self._ground_crc.between(at, at + take, chosen)
            data = b"".join(frames)
            if self.ground_tap:
                self.ground_tap(self.frames, take)
            self.file.write(data)
            self.frames += take
            self.size += size
            self.crc = crc_after_zeros(self.crc, size) ^ crc
        self._write_back(self.size - size_before)

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
        while self.frames < end and self.size != bytes_after(self.bitrate, self.frames):
            self._silent_frame(1 if bytes_after(self.bitrate, self.frames + 1) - self.size > len(plain) else 0)
        if self.frames == end:
            return
        whole, rest = divmod(end - self.frames, self.silence.cycle)
        block, step = self.silence.cycles(self.frames, whole)
        many = memoryview(block * min(_CYCLES_PER_WRITE, whole))  # made once: each new one is page faults
        for start in range(0, whole, _CYCLES_PER_WRITE):
            self.file.write(many[: min(_CYCLES_PER_WRITE, whole - start) * len(block)])
        self._write_back(whole * len(block))
        self.crc = step.apply(self.crc)
        self.frames += whole * self.silence.cycle
        self.size += whole * len(block)
        for which in self.silence.pattern(self.frames)[:rest]:
            self._silent_frame(which)

    def _write_back(self, size: int) -> None:
        """After copies of ``size`` bytes: once there are _WRITE_BACK bytes of them, they go to the disk now, not
        all at the sync at the end (Linux starts writing the pages out, and lets them go: nothing reads them
        again)."""
        self._copied += size
        if self._copied > _WRITE_BACK and hasattr(os, "posix_fadvise"):
            self.file.flush()
            os.posix_fadvise(self.file.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            self._copied = 0

    def _silent_frame(self, which: int) -> None:
        frame = self.silence.frames[which]
        self.file.write(frame)
        self.frames += 1
        self.size += len(frame)
        self.crc = self.silence.steps[which].apply(self.crc)

    def finish(self, total: int) -> None:
        self.between(self.frames_total - self.frames)
        self.file.seek(self.start)
        self.file.write(info_frame(self.bitrate, self.frames, self.size, total, self.crc))




class _Prefixes:
    """The CRC of any run of a loop's frames, from the CRCs of the loop's beginnings up to each frame.

    For a CRC that starts at 0, crc(a + b) = crc_after_zeros(crc(a), len(b))
    ^ crc(b); so the CRC of the frames from i to j is that of the first j
    frames less that of the first i carried over the bytes between. An
    hour of copies is then checksummed in a few operations a copy.
    """

    def __init__(self, frames: list[bytes]) -> None:
        self.frames = frames
        self.offsets = [0]
        self.crcs = [0]
        steps = {length: zeros_step(length) for length in {len(frame) for frame in frames}}  # two lengths at most
        for frame in frames:
            self.crcs.append(steps[len(frame)].apply(self.crcs[-1]) ^ crc16(frame))
            self.offsets.append(self.offsets[-1] + len(frame))

    def between(self, start: int, stop: int, padded_at: tuple[int, ...] = ()) -> int:
        """The CRC of frames ``start`` to ``stop``, those at ``padded_at`` padded."""
        crc, position = 0, start
        for index in (*padded_at, stop):
            if index > position:
                run = self.crcs[index] ^ crc_after_zeros(self.crcs[position], self.offsets[index] - self.offsets[position])
                crc = crc_after_zeros(crc, self.offsets[index] - self.offsets[position]) ^ run
            if index < stop:
                frame = padded(self.frames[index])
                crc = crc_after_zeros(crc, len(frame)) ^ crc16(frame)
            position = index + 1
        return crc

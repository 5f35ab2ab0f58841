"""Measuring a session as written: its MP3 frames decoded in this process, loudness and true peak."""

from __future__ import annotations

import functools
import hashlib
import math
import queue
import threading
from collections.abc import Callable

import numpy as np

from voiceguide.cache import Cache
from voiceguide.errors import AudioError
from voiceguide.loudness import BIN, Binned, Periodic, laid_out, true_peak
from voiceguide.mp3._frames import Frames
from voiceguide.units import DELAY, FRAME


class Meter:
    """Measures integrated loudness and true peak of MP3 frames as a player hears them.

    A thread decodes the frames as they are written (miniaudio's MP3
    decoder, in this process), each run of frames only once: a countdown
    said after every hold is decoded once and counted wherever it is heard.
    Each run is analysed as a Forecast analyses a sound and laid out where
    it sounds, long silences cut short, so its blocks and gates are those of
    the whole session; the true peak is found by oversampling (true_peak).
    With a ``cache``, what a run of frames measures (its energy and its
    true peak) is kept, under a digest of its bytes: a rebuild that copies
    stored pieces decodes only the pieces it encoded.
    """

    WARM_FRAMES = 2  # decoded again before the next part of a run: the decoder's state reaches back one frame

    def __init__(self, duration: int, cache: Cache | None = None) -> None:
        self._duration = duration  # samples in the session: the filter rings no further
        self._cache = cache
        self._keys: dict[int, str] = {}  # runs decoded here, to be kept when whole: their digests
        self._kept: set[int] = set()  # runs whose measure came from the cache
        self._peaks: dict[int, float] = {}  # of each run
        self._runs: dict[bytes, int] = {}  # a run's frames: its index in _analyses
        # (session sample where its decoded sound starts, samples, run), in order of start
        self._placed: list[tuple[int, int, int]] = []
        self._analyses: list[Binned] = []
        self._energies: dict[int, tuple[list[np.ndarray], np.ndarray]] = {}  # of the runs that are whole
        self._open: tuple[int, int, bool] | None = None  # the run sent last: its index, where it ends, first part?
        self._last = b""  # the frames sent last
        # run, frames, warm; or run, None, 0 once the run is whole
        self._queue: queue.SimpleQueue[tuple[int, bytes | None, int] | None] = queue.SimpleQueue()
        self._ground_peak = 0.0
        self._ground: list[bytes] = []  # the frames of a bed's steady period, if it has one
        self._ground_end = -1  # the frame after the last run of them
        self._failure: list[BaseException] = []
        self._decoder = threading.Thread(target=self._decode, daemon=True)
        self._decoder.start()

    def ground(self, frames: list[bytes]) -> None:
        """The frames of the bed's steady period, written between pieces (see Writer.steady)."""
        self._ground = frames

    def steady(self, first: int, count: int) -> None:
        """``count`` frames of the bed's period from frame ``first``: measured from the period, decoded once."""
        if self._open is not None:
            self._queue.put((self._open[0], None, 0))
            self._open = None
        self._placed.append((first * FRAME - DELAY, count * FRAME, _GROUND))
        self._ground_end = first + count

    def frames(self, first: int, data: bytes, count: int) -> None:
        """``count`` frames in ``data``, the first of them frame ``first`` of the session."""
        if first == self._ground_end:
            # After the bed's period: the decoder hears its last frames first, as a player does.
            warm = [self._ground[(first - back) % len(self._ground)] for back in range(self.WARM_FRAMES, 0, -1)]
            self._ground_end = -1
            self._open = None
            data, warm_count = b"".join(warm) + data, len(warm)
        else:
            warm_count = 0
        if warm_count:
            if self._open is not None:
                self._queue.put((self._open[0], None, 0))
            index = self._runs.get(data)
            if index is None:
                index = self._run(data, warm_count)
                self._queue.put((index, None, 0))
            self._placed.append((first * FRAME - DELAY, count * FRAME, index))
            self._open = None
            return
        if self._open is not None and first == self._open[1]:  # the run sent last goes on (a bed, in parts)
            index, _, whole = self._open
            if whole:  # its first part can no longer stand for the whole run
                self._runs = {key: run for key, run in self._runs.items() if run != index}
                self._keys.pop(index, None)
                if index in self._kept:  # what was kept for the first part alone: decoded after all
                    self._kept.discard(index)
                    del self._energies[index]
                    self._queue.put((index, self._last, 0))
            start, length, _ = self._placed[-1]
            self._placed[-1] = (start, length + count * FRAME, index)
            warm = Frames().feed(self._last)[-self.WARM_FRAMES :]
            self._queue.put((index, b"".join(warm) + data, len(warm)))
            self._open = (index, first + count, False)
            self._last = data
            return
        # The run sent last is whole: its energy is worked out now, while the encoder works, not at the end.
        if self._open is not None:
            self._queue.put((self._open[0], None, 0))
        if data in self._runs:
            self._placed.append((first * FRAME - DELAY, count * FRAME, self._runs[data]))
            self._open = None
            return
        index = self._run(data, 0)
        self._placed.append((first * FRAME - DELAY, count * FRAME, index))
        self._open = (index, first + count, True)
        self._last = data

    def _run(self, data: bytes, warm: int) -> int:
        """A new run of frames (the first ``warm`` of them only to warm the decoder up): its measure taken from
        the cache, or its decoding queued."""
        index = len(self._analyses)
        self._runs[data] = index
        self._analyses.append(Binned())
        key = hashlib.sha256(data).hexdigest() if self._cache else None
        kept = self._cache.arrays(_KEPT, key) if self._cache and key else None
        try:
            assert kept is not None
            self._energies[index] = ([kept["fine"]], kept["coarse"])
            self._peaks[index] = float(kept["peak"][0])
            self._kept.add(index)
        except (AssertionError, KeyError, IndexError):  # none kept, or in another shape
            self._queue.put((index, data, warm))
            if key:
                self._keys[index] = key
        return index

    def _decode(self) -> None:
        try:
            decode = _decoder()
        except BaseException as error:
            self._failure.append(error)
        while (item := self._queue.get()) is not None:
            if self._failure:
                continue  # drained, so that the build never waits on a full queue
            index, data, warm = item
            try:
                if data is None:
                    if index not in self._kept:
                        self._energies[index] = self._analyses[index].energy()
                        if index in self._keys:
                            self._keep(index)
                    continue
                frames = Frames().feed(data)
                # A few seconds at a time: a bed comes in parts of a minute, too much to hold decoded at once.
                for start in range(warm, len(frames), _DECODE_FRAMES):
                    begin = max(0, start - self.WARM_FRAMES)
                    end = min(len(frames), start + _DECODE_FRAMES)
                    decoded = decode(b"".join(frames[begin:end]))
                    decoded *= np.float32(32768)
                    # Its last frame is decoded again before the next stretch, with what follows it to look at.
                    self._peaks[index] = true_peak(decoded if end == len(frames) else decoded[:-FRAME],
                                                   self._peaks.get(index, 0.0))
                    # The frames decoded again to warm the decoder up were counted with the stretch before.
                    self._analyses[index].write(decoded[(start - begin) * FRAME :])
            except BaseException as error:
                self._failure.append(error)

    def _keep(self, index: int) -> None:
        assert self._cache is not None
        fine, coarse = self._energies[index]
        self._cache.put_arrays(_KEPT, self._keys.pop(index), {
            "fine": np.concatenate(fine) if fine else np.zeros(0, np.float32), "coarse": coarse,
            "peak": np.array([self._peaks.get(index, 0.0)])})

    def result(self) -> tuple[float, float]:
        """Integrated loudness in LUFS (SILENCE_LUFS for a silent session) and true peak in dBTP."""
        self._queue.put(None)
        self._decoder.join()
        if self._failure:
            raise AudioError(f"measuring loudness failed: {self._failure[0]}")
        for index, analysis in enumerate(self._analyses):
            if index not in self._energies:  # the run sent last
                self._energies[index] = analysis.energy()
        energies = self._energies
        for index in list(self._keys):
            self._keep(index)
        period = self._period() if self._ground else None
        sounds: list[tuple[int, int, list[np.ndarray], np.ndarray]] = []
        for start, length, index in self._placed:
            if index == _GROUND:
                assert period is not None
                offset = (start + DELAY) % (len(self._ground) * FRAME)
                sounds.append((start, length, [], period.blocks(offset, length)))
                continue
            skip = -(-max(0, -start) // BIN)  # bins decoded before the session's first sample: the encoder's delay
            (fine, coarse), left = energies[index], skip
            parts = list(fine)
            while left and parts:
                if left >= len(parts[0]):
                    left -= len(parts.pop(0))
                else:
                    parts[0], left = parts[0][left:], 0
            sounds.append((start + skip * BIN, length - skip * BIN, parts, coarse))
        loudness = laid_out(sounds, self._duration)
        top = max([self._ground_peak, *(self._peaks.get(index, 0.0) for _, _, index in self._placed)])
        peak = 20 * math.log10(top / 32768) if top else -math.inf
        return loudness, peak

    def _period(self) -> Periodic:
        """The bed's period as a player decodes it amid its repetitions; its peaks count with the session's."""
        frames, warm = self._ground, 2 * self.WARM_FRAMES
        data = b"".join(frames)
        key = hashlib.sha256(data).hexdigest()
        kept = self._cache.arrays(_KEPT, key) if self._cache else None
        if kept is not None and {"sums", "peak"} <= kept.keys() and len(kept["peak"]) == 1:
            self._ground_peak = float(kept["peak"][0])
            return Periodic.of_sums(kept["sums"], len(frames) * FRAME)
        around = [frames[index % len(frames)] for index in range(-warm, len(frames) + self.WARM_FRAMES)]
        decoded = _decoder()(b"".join(around)) * np.float32(32768)
        decoded = decoded[warm * FRAME : (warm + len(frames)) * FRAME]
        self._ground_peak = true_peak(decoded)
        period = Periodic(decoded)
        if self._cache:
            self._cache.put_arrays(_KEPT, key, {"sums": period.sums, "peak": np.array([self._ground_peak])})
        return period

    def abort(self) -> None:
        self._failure.append(AudioError("aborted"))
        self._queue.put(None)
        self._decoder.join()


_KEPT = "measured"  # what runs of frames measured, in the cache
_GROUND = -1  # placed runs of the bed's period: measured from it (see _period)
_DECODE_FRAMES = 256  # decoded at a time: 7 s, 1.2 MB of samples


@functools.lru_cache(maxsize=1)
def _decoder() -> Callable[[bytes], np.ndarray]:
    """miniaudio's MP3 decoder: MP3 frames to samples (float32, full scale 1.0), in an array of their own.

    Called straight in miniaudio's compiled module where it has the call:
    the miniaudio module itself loads urllib, email, http and ssl for its
    internet streams, 80 ms of a first build where this takes 2. Imported
    only when a session is measured: builds that encode nothing never load it.
    """
    try:
        from _miniaudio import ffi, lib

        read, free = lib.ma_dr_mp3_open_memory_and_read_pcm_frames_f32, lib.ma_dr_mp3_free
    except (ImportError, AttributeError):  # another build of miniaudio: through its module
        import miniaudio

        return lambda data: np.frombuffer(miniaudio.mp3_read_f32(data).samples, np.float32)

    def decoded(data: bytes) -> np.ndarray:
        config, frames = ffi.new("ma_dr_mp3_config *"), ffi.new("ma_dr_mp3_uint64 *")
        memory = read(data, len(data), config, frames, ffi.NULL)
        if not memory:
            raise AudioError("the MP3 decoder could not read the frames written")
        try:
            return np.frombuffer(ffi.buffer(memory, frames[0] * config.channels * 4), np.float32).copy()
        finally:
            free(memory, ffi.NULL)

    return decoded


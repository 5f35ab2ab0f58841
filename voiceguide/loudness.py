"""Loudness: bring a session to a target integrated loudness without clipping.

Integrated loudness (EBU R128) gates out silence, so it depends only on the
sounds of a session and how they sit together, not on the length of its holds:
every long silence is cut short (see condensed). A Forecast predicts it for any
gains from each sound analysed once; Meter measures the session as encoded
(its MP3 frames decoded in this process); Loudness measures a mix.
A look-ahead limiter keeps the peaks that the gain raises under the ceiling.
"""

from __future__ import annotations

import functools
import math
import queue
import threading
from collections.abc import Callable

import numpy as np

from voiceguide.errors import AudioError
from voiceguide.mp3 import DELAY, FRAME, Frames
from voiceguide.timeline import SAMPLE_RATE

# Where the limiter starts. MP3 encoding adds to the peaks of buzzy synthetic
# speech (up to 2 dB seen), so the encoded peaks are measured and the ceiling
# lowered until they stay under TRUE_PEAK_LIMIT_DBTP.
CEILING_DBFS = -3.0
# The true peak of the decoded session (ITU-R BS.1770, 4x oversampled; see true_peak):
# the -1 dBTP that spoken-word platforms ask for, less a margin for meters that oversample more finely.
TRUE_PEAK_LIMIT_DBTP = -1.3
# A silence longer than one 400 ms gating block only adds blocks below the
# absolute gate, which the measure ignores. Cut to one block plus its remainder
# in 100 ms steps, the blocks that do hold sound are measured exactly as in the
# whole session.
GATE_BLOCK = SAMPLE_RATE * 4 // 10
GATE_STEP = SAMPLE_RATE // 10
LOOKAHEAD = SAMPLE_RATE * 10 // 1000
SILENCE_LUFS = -70.0


def condensed(silence: int) -> int:
    """How much of a silence the meter needs: all of a short one, a long one cut short (see GATE_BLOCK)."""
    return silence if silence <= GATE_BLOCK else GATE_BLOCK + (silence - GATE_BLOCK) % GATE_STEP


class Meter:
    """Measures integrated loudness and true peak of MP3 frames as a player hears them.

    A thread decodes the frames as they are written (miniaudio's MP3
    decoder, in this process), each run of frames only once: a countdown
    said after every hold is decoded once and counted wherever it is heard.
    Each run is analysed as a Forecast analyses a sound and laid out where
    it sounds, long silences cut short, so its blocks and gates are those of
    the whole session; the true peak is found by oversampling (true_peak).
    """

    WARM_FRAMES = 2  # decoded again before the next part of a run: the decoder's state reaches back one frame

    def __init__(self, duration: int) -> None:
        self._duration = duration  # samples in the session: the filter rings no further
        self._runs: dict[bytes, int] = {}  # a run's frames: its index in _analyses
        # (session sample where its decoded sound starts, samples, run), in order of start
        self._placed: list[tuple[int, int, int]] = []
        self._analyses: list[_Binned] = []
        self._energies: dict[int, tuple[list[np.ndarray], np.ndarray]] = {}  # of the runs that are whole
        self._open: tuple[int, int, bool] | None = None  # the run sent last: its index, where it ends, first part?
        self._last = b""  # the frames sent last
        # run, frames, warm; or run, None, 0 once the run is whole
        self._queue: queue.SimpleQueue[tuple[int, bytes | None, int] | None] = queue.SimpleQueue()
        self._peak = 0.0
        self._failure: list[BaseException] = []
        self._decoder = threading.Thread(target=self._decode, daemon=True)
        self._decoder.start()

    def frames(self, first: int, data: bytes, count: int) -> None:
        """``count`` frames in ``data``, the first of them frame ``first`` of the session."""
        if self._open is not None and first == self._open[1]:  # the run sent last goes on (a bed, in parts)
            index, _, whole = self._open
            if whole:  # its first part can no longer stand for the whole run
                self._runs = {key: run for key, run in self._runs.items() if run != index}
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
        index = len(self._analyses)
        self._runs[data] = index
        self._analyses.append(_Binned())
        self._placed.append((first * FRAME - DELAY, count * FRAME, index))
        self._queue.put((index, data, 0))
        self._open = (index, first + count, True)
        self._last = data

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
                    self._energies[index] = self._analyses[index].energy()
                    continue
                frames = Frames().feed(data)
                # A few seconds at a time: a bed comes in parts of a minute, too much to hold decoded at once.
                for start in range(warm, len(frames), _DECODE_FRAMES):
                    begin = max(0, start - self.WARM_FRAMES)
                    end = min(len(frames), start + _DECODE_FRAMES)
                    decoded = decode(b"".join(frames[begin:end]))
                    decoded *= np.float32(32768)
                    # Its last frame is decoded again before the next stretch, with what follows it to look at.
                    self._peak = true_peak(decoded if end == len(frames) else decoded[:-FRAME], self._peak)
                    # The frames decoded again to warm the decoder up were counted with the stretch before.
                    self._analyses[index].write(decoded[(start - begin) * FRAME :])
            except BaseException as error:
                self._failure.append(error)

    def result(self) -> tuple[float, float]:
        """Integrated loudness in LUFS (SILENCE_LUFS for a silent session) and true peak in dBTP."""
        self._queue.put(None)
        self._decoder.join()
        if self._failure:
            raise AudioError(f"measuring loudness failed: {self._failure[0]}")
        energies = [self._energies.get(index) or analysis.energy() for index, analysis in enumerate(self._analyses)]
        sounds = []
        for start, length, index in self._placed:
            skip = -(-max(0, -start) // BIN)  # bins decoded before the session's first sample: the encoder's delay
            (fine, coarse), left = energies[index], skip
            parts = list(fine)
            while left and parts:
                if left >= len(parts[0]):
                    left -= len(parts.pop(0))
                else:
                    parts[0], left = parts[0][left:], 0
            sounds.append((start + skip * BIN, length - skip * BIN, parts, coarse))
        loudness = _laid_out(sounds, self._duration)
        peak = 20 * math.log10(self._peak / 32768) if self._peak else -math.inf
        return loudness, peak

    def abort(self) -> None:
        self._failure.append(AudioError("aborted"))
        self._queue.put(None)
        self._decoder.join()


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


class _Binned:
    """K-weighted energy of a sound that arrives in parts, as _analysis_of gives it for a whole one: per BIN
    for its first _FINE_BINS, and per 100 ms after that (an hour of a bed in bins would be 13 MB)."""

    def __init__(self) -> None:
        self._weighting = _KWeighting()
        self._fine: list[np.ndarray] = []
        self._fine_count = 0
        self._coarse: list[np.ndarray] = []
        self._carry = np.zeros(0, np.float32)  # samples not yet a whole bin
        self._bins = np.zeros(0)  # bins past the fine ones not yet a whole 100 ms

    def write(self, samples: np.ndarray) -> None:
        for start in range(0, len(samples), _CHUNK):  # filtered a chunk at a time: few arrays, and small
            self._add(self._weighting.feed(samples[start : start + _CHUNK]))

    def energy(self) -> tuple[list[np.ndarray], np.ndarray]:
        """The energy of everything written, with the filter's ring after it: per BIN (in parts), then per
        100 ms; called once, at the end."""
        self._add(self._weighting.flush())
        self._add(self._weighting.ring())
        if len(self._carry):  # the last, partial bin
            self._add_bins(np.array([np.sum(np.square(self._carry, dtype=np.float64))]))
        if len(self._bins):
            self._coarse.append(np.array([self._bins.sum()]))
        return self._fine, np.concatenate(self._coarse) if self._coarse else np.zeros(0)

    def _add(self, weighted: np.ndarray) -> None:
        weighted = np.concatenate([self._carry, weighted])
        whole = len(weighted) // BIN * BIN
        self._add_bins(np.square(weighted[:whole]).reshape(-1, BIN).sum(axis=1, dtype=np.float64))
        self._carry = weighted[whole:].copy()  # a view would hold the whole array

    def _add_bins(self, bins: np.ndarray) -> None:
        fine = bins[: max(0, _FINE_BINS - self._fine_count)]
        if len(fine):
            self._fine.append(fine.astype(np.float32))
            self._fine_count += len(fine)
        rest = np.concatenate([self._bins, bins[len(fine) :]])
        whole = len(rest) // _STEPS * _STEPS
        if whole:
            self._coarse.append(rest[:whole].reshape(-1, _STEPS).sum(axis=1))
        self._bins = rest[whole:].copy()


class Energies:
    """A sink that keeps the K-weighted energy of every 100 ms sub-block of what it is given, silences whole.

    Under a bed nothing is silent: the energies of the words and those of
    the bed are added sub-block by sub-block (see render._bed_forecast).
    """

    def __init__(self) -> None:
        self.written = 0
        self._weighting = _KWeighting()
        self._carry = np.zeros(0)  # squared samples not yet a whole 100 ms sub-block
        self._energies: list[np.ndarray] = []  # sums of squares of 100 ms sub-blocks

    def write(self, samples: np.ndarray) -> None:
        if len(samples):
            self._add(self._weighting.feed(samples))
        self.written += len(samples)

    def silence(self, count: int) -> None:
        # The filter rings on for _K_LENGTH samples; the rest of a silence weighs nothing, and is not filtered.
        ring = min(count, _K_LENGTH)
        self._add(self._weighting.feed(np.zeros(ring)))
        self._add(self._weighting.flush())
        self._add_zeros(count - ring)
        self.written += count

    def energies(self) -> np.ndarray:
        """The energy of every whole sub-block so far (a last, shorter one is left out)."""
        self._add(self._weighting.flush())
        return np.concatenate(self._energies) if self._energies else np.zeros(0)

    def _add(self, weighted: np.ndarray) -> None:
        if len(weighted):
            self._add_squared(weighted.astype(np.float64) ** 2)

    def _add_squared(self, squared: np.ndarray) -> None:
        squared = np.concatenate([self._carry, squared])
        whole = len(squared) // GATE_STEP * GATE_STEP
        self._energies.append(squared[:whole].reshape(-1, GATE_STEP).sum(axis=1))
        self._carry = squared[whole:].copy()  # a view would hold the whole array

    def _add_zeros(self, count: int) -> None:
        if count < 2 * GATE_STEP:
            self._add_squared(np.zeros(count))
            return
        head = (GATE_STEP - len(self._carry)) % GATE_STEP
        self._add_squared(np.zeros(head))  # the sub-block begun before is complete now
        whole, rest = divmod(count - head, GATE_STEP)
        self._energies.append(np.zeros(whole))
        self._carry = np.zeros(rest)


class Loudness(Energies):
    """A sink that measures integrated loudness (ITU-R BS.1770) and sample peak in this process.

    Much faster than encoding and decoding; used where a Forecast cannot
    be. Long silences are cut short as in Meter.
    """

    def __init__(self) -> None:
        super().__init__()
        self.peak = 0

    def write(self, samples: np.ndarray) -> None:
        if len(samples):
            self.peak = max(self.peak, int(np.max(np.abs(samples.astype(np.int32)))))
        super().write(samples)

    def silence(self, count: int) -> None:
        self._add(self._weighting.feed(np.zeros(condensed(count))))
        self.written += count

    def result(self) -> tuple[float, float]:
        """Integrated loudness in LUFS (SILENCE_LUFS for a silent session) and sample peak in dBFS."""
        peak = 20 * math.log10(self.peak / 32768) if self.peak else -math.inf
        return integrated(self.energies()), peak

    def abort(self) -> None:
        pass


def integrated(energies: np.ndarray) -> float:
    """Integrated loudness in LUFS of K-weighted sums of squares over consecutive 100 ms sub-blocks."""
    if len(energies) < 4:
        return SILENCE_LUFS
    # 400 ms gating blocks every 100 ms, as mean squares of full scale.
    blocks = np.convolve(energies, np.ones(4), mode="valid") / (4 * GATE_STEP * 32768.0**2)
    loud = blocks[blocks > 10 ** ((SILENCE_LUFS + 0.691) / 10)]
    if not len(loud):
        return SILENCE_LUFS
    gate = np.mean(loud) * 10 ** (-10 / 10)
    kept = loud[loud > gate]
    return max(SILENCE_LUFS, -0.691 + 10 * math.log10(float(np.mean(kept))))


class _KWeighting:
    """BS.1770's K-weighting (a high shelf and a high-pass, as two biquads) over a stream of samples.

    Applied as its impulse response, long enough for both to have died
    away, by FFT convolution a chunk at a time: numpy has no IIR filter,
    and the FFT runs in C.
    """

    def __init__(self) -> None:
        self._pending: list[np.ndarray] = []
        self._pending_length = 0
        self._overlap = np.zeros(_K_LENGTH - 1, np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """The weighted samples that are complete after ``samples``; the rest follow later, or from flush."""
        self._pending.append(samples)
        self._pending_length += len(samples)
        if self._pending_length < _CHUNK:
            return np.zeros(0)
        return self.flush()

    def flush(self) -> np.ndarray:
        """The weighted samples of everything fed so far; the filter's ring after them stays for what comes next."""
        if not self._pending_length:
            return np.zeros(0)
        # In single precision: twice as quick, and far finer than a loudness needs.
        samples = np.concatenate(self._pending).astype(np.float32, copy=False)
        self._pending, self._pending_length = [], 0
        done = []
        for start in range(0, len(samples), _CHUNK):
            part = samples[start : start + _CHUNK]
            size = _fft_size(len(part) + _K_LENGTH - 1)
            weighted = np.fft.irfft(np.fft.rfft(part, size) * _k_spectrum(size), size)[: len(part) + _K_LENGTH - 1]
            weighted[: len(self._overlap)] += self._overlap
            self._overlap = weighted[len(part) :].copy()
            done.append(weighted[: len(part)])
        return np.concatenate(done)

    def ring(self) -> np.ndarray:
        """What the filter still rings after the last sample fed (call after flush)."""
        return self._overlap


BIN = 49  # samples: 900 to a second and 90 to a 100 ms sub-block, so a Forecast's bins make up sub-blocks
_STEPS = GATE_STEP // BIN
_FINE_BINS = 120 * 900  # two minutes in bins; a longer run (a bed) is kept per 100 ms beyond them


class Forecast:
    """The integrated loudness of sounds laid over silence, at any gains, without mixing them.

    Each sound is analysed once, at unit gain: its K-weighted energy and the
    largest sample the limiter's hold sees, per BIN. At a gain, the energy
    of each bin scales with the gain and with the limiter's gain curve
    there, worked out per bin rather than per sample, and the bins are laid
    out where the sounds sit in the session with long silences cut short
    (as Loudness hears it). A level search can then try many gains for the
    cost of one mix; what it predicts is within a few hundredths of a LU of
    measuring the mix (tested), and the encoded session is measured anyway.
    Sounds that overlap are taken to add their energies.
    """

    def __init__(self, sounds: list[tuple[int, int, str, Callable[[], np.ndarray]]]) -> None:
        """``sounds``: (start, length, source, load) in order of start; the same source always sounds the same."""
        self._analyses: dict[str, _Analysis] = {}  # held here: the process-wide store may let them go
        self._sounds: list[tuple[int, int, str]] = []
        for start, length, source, load in sounds:
            if source not in self._analyses:
                self._analyses[source] = analysed(source, load)
            self._sounds.append((start, length, source))

    def loudness(self, gains: list[float], ceiling_dbfs: float) -> float:
        """Integrated loudness in LUFS with each sound at its gain (0: left out), limited at the ceiling."""
        top = 32767 * 10 ** (ceiling_dbfs / 20)
        heard: dict[tuple[str, float], np.ndarray] = {}
        laid = []
        for (start, length, source), gain in zip(self._sounds, gains):
            if gain <= 0:  # left out, but where it sounds the silence is not cut short, as when it is heard
                laid.append((start, length, [], _NONE))
                continue
            if (source, gain) not in heard:
                heard[source, gain] = self._analyses[source].energy_at(gain, top)
            laid.append((start, length, [heard[source, gain]], _NONE))
        return _laid_out(laid)


_NONE = np.zeros(0)


def _laid_out(sounds: list[tuple[int, int, list[np.ndarray], np.ndarray]], duration: int | None = None) -> float:
    """Integrated loudness in LUFS of sounds laid over silence, long silences cut short; the filter's ring
    after them is heard up to ``duration``.

    ``sounds``: (start, length, K-weighted energy per BIN in parts, then per
    100 ms), in order of start. A sound's energy per 100 ms after its first
    bins goes to the nearest 100 ms of the session: only a long one (a bed)
    has any, where it makes no difference.
    """
    cut = 0  # silence taken out before the current sound
    reach = 0  # where the sounds so far end
    placed = []
    for start, length, fine, coarse in sounds:
        if start > reach:
            cut += start - reach - condensed(start - reach)
        reach = max(reach, start + length)
        placed.append((round((start - cut) / BIN), fine, coarse))
    bins = max([first + sum(map(len, fine)) + _STEPS * len(coarse) for first, fine, coarse in placed], default=0)
    if duration is not None:  # a sound to the very end (a bed) rings on past it in no player
        after = max(0, duration - reach)
        bins = min(bins, round((duration - cut - (after - condensed(after))) / BIN))
    total = np.zeros(-(-bins // _STEPS))  # per 100 ms
    for first, fine, coarse in placed:
        for part in fine:
            part = part[: max(0, bins - first)]
            # Into 100 ms blocks: as many bins before it as it starts into its block, and after it to a whole one.
            ahead = first % _STEPS
            padded = np.zeros(-(-(ahead + len(part)) // _STEPS) * _STEPS)
            padded[ahead : ahead + len(part)] = part
            blocks = padded.reshape(-1, _STEPS).sum(axis=1)
            total[first // _STEPS : first // _STEPS + len(blocks)] += blocks[: max(0, len(total) - first // _STEPS)]
            first += len(part)
        block = round(first / _STEPS)
        kept = coarse[: max(0, min(len(total), -(-bins // _STEPS)) - block)]
        total[block : block + len(kept)] += kept
    return integrated(total)


class _Analysis:
    """A sound at unit gain, per BIN: K-weighted energy (with the filter's ring after it) and the limiter's view."""

    def __init__(self, energy: np.ndarray, loudest: np.ndarray, peak: float) -> None:
        self.energy = energy
        self.loudest = loudest  # the largest magnitude within the limiter's hold of each bin
        self.peak = peak

    def energy_at(self, gain: float, top: float) -> np.ndarray:
        """The energy per bin after ``limit`` with ``gain`` and the ceiling ``top``."""
        if gain * self.peak <= top:
            return self.energy * gain**2
        # As in limit: each sample needs at most top / (gain * |x|), the hold takes the least need around it,
        # and the result is averaged over LOOKAHEAD; here on bins.
        held = np.minimum(1.0, top / (gain * np.maximum(self.loudest, 1e-9)))
        smooth = _centered_mean(held, round(LOOKAHEAD / BIN) + 1)
        return self.energy * (gain * smooth) ** 2


_ANALYSES: dict[str, _Analysis] = {}
_ANALYSES_KEPT = 1024  # sounds; a few megabytes at most
_ANALYSES_LOCK = threading.Lock()  # clips are analysed by the threads that made them


def analysed(source: str, load: Callable[[], np.ndarray]) -> _Analysis:
    """The analysis of a sound for a Forecast, made once per process: a build can make it ahead, while speech
    is still being synthesized, on cores that would otherwise wait."""
    with _ANALYSES_LOCK:
        found = _ANALYSES.get(source)
    if found is None:
        found = _analysis_of(load())
        with _ANALYSES_LOCK:
            while len(_ANALYSES) >= _ANALYSES_KEPT:
                del _ANALYSES[next(iter(_ANALYSES))]
            _ANALYSES[source] = found
    return found


def _analysis_of(samples: np.ndarray) -> _Analysis:
    weighting = _KWeighting()
    weighted = np.concatenate([weighting.feed(samples), weighting.flush(), weighting.ring()])
    bins = -(-len(weighted) // BIN)
    squared = np.zeros(bins * BIN, np.float32)
    np.square(weighted, out=squared[: len(weighted)])
    magnitude = np.zeros(bins * BIN, np.float32)
    np.abs(samples, out=magnitude[: len(samples)], casting="unsafe")
    per_bin = magnitude.reshape(bins, BIN).max(axis=1).astype(np.float64)
    # The limiter's hold reaches LOOKAHEAD on each side of a sample.
    reach = -(-LOOKAHEAD // BIN)
    loudest = -_running_min(-per_bin, 2 * reach + 1)
    return _Analysis(squared.reshape(bins, BIN).sum(axis=1, dtype=np.float64), loudest,
                     float(per_bin.max(initial=0.0)))


_K_LENGTH = 1 << 12  # 93 ms: both filters have decayed by far more than 100 dB (about 197)
# Samples filtered at a time: with the response they fill an FFT of 2**15, small in memory and in cache.
_CHUNK = (1 << 15) - _K_LENGTH + 1


@functools.lru_cache(maxsize=1)
def _k_response() -> np.ndarray:
    """The impulse response of BS.1770's K-weighting at SAMPLE_RATE: its two biquads, designed for this rate."""
    rate = SAMPLE_RATE
    # The high shelf (+4 dB above about 1.7 kHz, the head's effect), from its analog prototype.
    k = math.tan(math.pi * 1681.974450955533 / rate)
    q = 0.7071752369554196
    vh = 10 ** (3.999843853973347 / 20)
    vb = vh**0.4996667741545416
    a0 = 1 + k / q + k * k
    shelf = ((vh + vb * k / q + k * k) / a0, 2 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0,
             2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    # The high-pass (the RLB curve, about 38 Hz).
    k = math.tan(math.pi * 38.13547087602444 / rate)
    q = 0.5003270373238773
    a0 = 1 + k / q + k * k
    highpass = (1.0, -2.0, 1.0, 2 * (k * k - 1) / a0, (1 - k / q + k * k) / a0)
    impulse = np.zeros(_K_LENGTH)
    impulse[0] = 1.0
    return _biquad(_biquad(impulse, shelf), highpass)


def _biquad(x: np.ndarray, coefficients: tuple[float, ...]) -> np.ndarray:
    b0, b1, b2, a1, a2 = coefficients
    y = np.zeros(len(x))
    x1 = x2 = y1 = y2 = 0.0
    for index, value in enumerate(x.tolist()):
        out = b0 * value + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        y[index] = out
        x2, x1, y2, y1 = x1, value, y1, out
    return y


@functools.lru_cache(maxsize=8)
def _k_spectrum(size: int) -> np.ndarray:
    return np.fft.rfft(_k_response(), size).astype(np.complex64)


def _fft_size(length: int) -> int:
    return 1 << (length - 1).bit_length()


def limit(samples: np.ndarray, gain: float, ceiling_dbfs: float = CEILING_DBFS) -> np.ndarray:
    """``samples`` times ``gain``, with peaks over the ceiling turned down smoothly, as int16.

    The gain reduction starts LOOKAHEAD before a peak and lasts as long after
    it, so no sample exceeds the ceiling and the level never jumps (no clicks).
    """
    # In place where it can be: a clip's working arrays are megabytes, each new one a round of page faults.
    scaled = samples.astype(np.float64)
    scaled *= gain
    top = 32767 * 10 ** (ceiling_dbfs / 20)
    if not len(scaled) or max(-scaled.min(), scaled.max()) <= top:
        return np.round(scaled, out=scaled).astype("<i2")
    magnitude = np.abs(scaled)
    np.divide(top, np.maximum(magnitude, 1e-9, out=magnitude), out=magnitude)
    # Gains in single precision: a long clip's working arrays stay small, and 24 bits are plenty for a gain.
    needed = np.minimum(magnitude, 1.0, out=magnitude).astype(np.float32)
    del magnitude
    held = _running_min(needed, 2 * LOOKAHEAD + 1)
    # Averaging over no more than the hold's reach keeps every gain at or below what its sample needs.
    scaled *= _centered_mean(held, LOOKAHEAD + 1)
    return np.round(np.clip(scaled, -top, top, out=scaled), out=scaled).astype("<i2")


def _running_min(values: np.ndarray, size: int) -> np.ndarray:
    """Minimum over a window of ``size`` centred on each sample (van Herk / Gil-Werman, linear time)."""
    half = size // 2
    padded = np.concatenate([np.ones(half, dtype=values.dtype), values, np.ones(half + size, dtype=values.dtype)])
    blocks = len(padded) // size
    grid = padded[: blocks * size].reshape(blocks, size)
    forward = np.minimum.accumulate(grid, axis=1).ravel()
    backward = np.minimum.accumulate(grid[:, ::-1], axis=1)[:, ::-1].ravel()
    return np.minimum(backward[: len(values)], forward[size - 1 : size - 1 + len(values)])


def _centered_mean(values: np.ndarray, size: int) -> np.ndarray:
    half = size // 2
    padded = np.concatenate([np.full(half, values[0]), values, np.full(size - half, values[-1])])
    sums = np.concatenate([[0.0], np.cumsum(padded)])
    return (sums[size : size + len(values)] - sums[: len(values)]) / size


_OVERSAMPLING = 4  # as ITU-R BS.1770 measures the true peak
_PEAK_TAPS = 12  # samples each interpolated point is made from, as in BS.1770's own filter


@functools.lru_cache(maxsize=1)
def _interpolator() -> np.ndarray:
    """The filters that give the points between a sample and the next, one column per point (_PEAK_TAPS rows).

    Each is a windowed sinc (Kaiser, beta 8) at its fraction of a sample,
    scaled to pass a constant unchanged.
    """
    taps = np.arange(-_PEAK_TAPS // 2 + 1, _PEAK_TAPS // 2 + 1)
    columns = []
    for fraction in np.arange(1, _OVERSAMPLING) / _OVERSAMPLING:
        offset = taps - fraction
        window = np.i0(8.0 * np.sqrt(np.clip(1 - (offset / (_PEAK_TAPS / 2)) ** 2, 0, None)))
        weights = np.sinc(offset) * window
        columns.append(weights / weights.sum())
    return np.array(columns, dtype=np.float32).T  # row k weighs the k-th of the samples around a point


def true_peak(samples: np.ndarray, floor: float = 0.0) -> float:
    """The largest magnitude of ``samples`` (a decoded sound, full scale 32768) at its samples and between
    them, as if oversampled _OVERSAMPLING times; or ``floor``, if that is larger.

    A point between samples is a weighted sum of the _PEAK_TAPS samples
    around it, so it can exceed the largest sample (or the floor: the peak
    of the sounds measured before) only where one of those comes within
    the filters' total weight of it: only blocks that hold such a point are
    worked out. Blocks small enough that the matrix product runs on one
    thread: BLAS's threads would spin on the cores the encoders need.
    """
    if not len(samples):
        return floor
    samples = samples.astype(np.float32, copy=False)
    magnitude = np.abs(samples)
    peak = max(floor, float(magnitude.max()))
    if not peak:
        return 0.0
    filters = _interpolator()
    half = _PEAK_TAPS // 2
    padded = np.concatenate([np.zeros(half, np.float32), samples, np.zeros(half, np.float32)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, _PEAK_TAPS)
    # Window i holds samples i - half to i + half - 1, so a block of windows draws on its own block of samples
    # and the edges of the blocks beside it.
    blocks = -(-len(windows) // _PEAK_BLOCK)
    loudest = np.zeros(blocks + 2, np.float32)
    whole = len(samples) // _PEAK_BLOCK
    loudest[1 : whole + 1] = magnitude[: whole * _PEAK_BLOCK].reshape(whole, _PEAK_BLOCK).max(axis=1, initial=0.0)
    if whole < blocks:
        loudest[whole + 1 : blocks + 1] = magnitude[whole * _PEAK_BLOCK :].max(initial=0.0)
    near = np.maximum(np.maximum(loudest[:-2], loudest[1:-1]), loudest[2:]) * np.abs(filters).sum(axis=0).max()
    # The most promising blocks first: each peak found rules out the blocks that cannot reach it.
    candidates = np.flatnonzero(near >= peak)
    for block in candidates[np.argsort(-near[candidates], kind="stable")]:
        if near[block] < peak:
            break
        start = block * _PEAK_BLOCK
        peak = max(peak, float(np.max(np.abs(windows[start : start + _PEAK_BLOCK] @ filters))))
    return peak


_PEAK_BLOCK = 4096  # points at a time


def loudness_of(samples: np.ndarray) -> float:
    """Integrated loudness of a short sound in LUFS; sounds under a second are measured repeated."""
    if not len(samples) or not np.any(samples):
        return SILENCE_LUFS
    repeats = max(1, -(-SAMPLE_RATE // len(samples)))
    meter = Loudness()
    meter.write(np.tile(samples.astype("<i2"), repeats))
    return meter.result()[0]

"""Loudness: bring a session to a target integrated loudness without clipping.

Integrated loudness (EBU R128) gates out silence, so it depends only on the
sounds of a session and how they sit together, not on the length of its holds.
It is measured on a condensed copy of the session, every silence shortened to
GATE_BLOCK, by ffmpeg's ebur128 filter; a look-ahead limiter keeps the peaks
that the gain raises under the ceiling.
"""

from __future__ import annotations

import functools
import math
import re
import subprocess

import numpy as np

from voiceguide import tools
from voiceguide.errors import AudioError
from voiceguide.mp3 import lame_command
from voiceguide.timeline import SAMPLE_RATE

DEFAULT_TARGET_LUFS = -16.0
# Where the limiter starts. MP3 encoding adds to the peaks of buzzy synthetic
# speech (up to 2 dB seen), so the encoded peaks are measured and the ceiling
# lowered until they stay under PEAK_LIMIT_DBFS.
CEILING_DBFS = -3.0
PEAK_LIMIT_DBFS = -2.0  # decoded sample peak; the true peak lies within a few tenths above
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
    """A sink for rendered PCM that measures integrated loudness; long silences are cut short.

    The sound is measured as the listener gets it, through the same MP3
    encoder with the same settings: encoding speech takes a few tenths of a LU
    off, and adds to the peaks (with the bit reservoir, far more).
    """

    def __init__(self, bitrate: int) -> None:
        encode = lame_command(bitrate)  # the very encoder the session is written with
        measure = [tools.ffmpeg(), "-nostdin", "-hide_banner", "-nostats", "-f", "mp3", "-i", "pipe:0",
                   "-af", "ebur128=framelog=quiet:peak=sample", "-f", "null", "-"]
        try:
            self._encoder = subprocess.Popen(encode, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=subprocess.DEVNULL)
            # Its stdout is not ours: a child holding the command's output open would keep it from ending.
            self._process = subprocess.Popen(measure, stdin=self._encoder.stdout, stdout=subprocess.DEVNULL,
                                             stderr=subprocess.PIPE)
        except OSError as error:
            raise AudioError(f"cannot start ffmpeg: {error}") from None
        assert self._encoder.stdout is not None
        self._encoder.stdout.close()  # the measuring process holds it now
        self._zeros = np.zeros(GATE_BLOCK + GATE_STEP, dtype="<i2").tobytes()
        self.written = 0

    def write(self, samples: np.ndarray) -> None:
        self._send(samples.astype("<i2", copy=False).tobytes())
        self.written += len(samples)

    def silence(self, count: int) -> None:
        self._send(self._zeros[: 2 * condensed(count)])
        self.written += count

    def _send(self, data: bytes) -> None:
        assert self._encoder.stdin is not None
        try:
            self._encoder.stdin.write(data)
        except BrokenPipeError:
            self.abort()
            raise AudioError("measuring loudness failed: ffmpeg stopped") from None

    def result(self) -> tuple[float, float]:
        """Integrated loudness in LUFS (SILENCE_LUFS for a silent session) and sample peak in dBFS."""
        assert self._encoder.stdin is not None and self._process.stderr is not None
        self._encoder.stdin.close()
        report = self._process.stderr.read().decode(errors="replace")
        if self._encoder.wait() != 0 or self._process.wait() != 0:
            raise AudioError(f"measuring loudness failed: {report.strip().splitlines()[-1:]}")
        found = re.findall(r"I:\s+(-?[\d.]+|-inf) LUFS", report)
        peaks = re.findall(r"Peak:\s+(-?[\d.]+|-inf) dBFS", report)
        peak = float(peaks[-1]) if peaks and peaks[-1] != "-inf" else -math.inf
        if not found or found[-1] == "-inf":
            return SILENCE_LUFS, peak
        return max(float(found[-1]), SILENCE_LUFS), peak

    def abort(self) -> None:
        for process in (self._encoder, self._process):
            if process.poll() is None:
                process.kill()
            process.wait()


class Loudness:
    """A sink that measures integrated loudness (ITU-R BS.1770) and sample peak in this process.

    Much faster than a round through ffmpeg, so the level can be searched
    with it; the encoded session is then checked once with a Meter. The
    K-weighting filter (a high shelf and a high-pass, as two biquads) is
    applied as its impulse response, long enough for both to have died
    away, by FFT convolution a chunk at a time; long silences are cut short
    as in Meter.
    """

    def __init__(self) -> None:
        self.written = 0
        self.peak = 0
        self._pending: list[np.ndarray] = []
        self._pending_length = 0
        self._overlap = np.zeros(len(_k_response()) - 1)
        self._carry = np.zeros(0)  # squared samples not yet a whole 100 ms sub-block
        self._energies: list[np.ndarray] = []  # sums of squares of 100 ms sub-blocks

    def write(self, samples: np.ndarray) -> None:
        if len(samples):
            self.peak = max(self.peak, int(np.max(np.abs(samples.astype(np.int32)))))
            self._add(samples.astype(np.float64))
        self.written += len(samples)

    def silence(self, count: int) -> None:
        self._add(np.zeros(condensed(count)))
        self.written += count

    def _add(self, samples: np.ndarray) -> None:
        self._pending.append(samples)
        self._pending_length += len(samples)
        if self._pending_length >= _CHUNK:
            self._filter(np.concatenate(self._pending))
            self._pending, self._pending_length = [], 0

    def _filter(self, samples: np.ndarray) -> None:
        response = _k_response()
        size = _fft_size(len(samples) + len(response) - 1)
        weighted = np.fft.irfft(np.fft.rfft(samples, size) * _k_spectrum(size), size)[: len(samples) + len(response) - 1]
        weighted[: len(self._overlap)] += self._overlap
        self._overlap = weighted[len(samples) :].copy()
        squared = np.concatenate([self._carry, weighted[: len(samples)] ** 2])
        whole = len(squared) // GATE_STEP * GATE_STEP
        self._energies.append(squared[:whole].reshape(-1, GATE_STEP).sum(axis=1))
        self._carry = squared[whole:]

    def result(self) -> tuple[float, float]:
        """Integrated loudness in LUFS (SILENCE_LUFS for a silent session) and sample peak in dBFS."""
        if self._pending:
            self._filter(np.concatenate(self._pending))
            self._pending, self._pending_length = [], 0
        peak = 20 * math.log10(self.peak / 32768) if self.peak else -math.inf
        energies = np.concatenate(self._energies) if self._energies else np.zeros(0)
        if len(energies) < 4:
            return SILENCE_LUFS, peak
        # 400 ms gating blocks every 100 ms, as mean squares of full scale.
        blocks = np.convolve(energies, np.ones(4), mode="valid") / (4 * GATE_STEP * 32768.0**2)
        loud = blocks[blocks > 10 ** ((SILENCE_LUFS + 0.691) / 10)]
        if not len(loud):
            return SILENCE_LUFS, peak
        gate = np.mean(loud) * 10 ** (-10 / 10)
        kept = loud[loud > gate]
        return max(SILENCE_LUFS, -0.691 + 10 * math.log10(float(np.mean(kept)))), peak

    def abort(self) -> None:
        pass


_CHUNK = SAMPLE_RATE * 2  # samples filtered at a time: small, so the FFTs stay small in memory
_K_LENGTH = 1 << 14  # 0.37 s: both filters have decayed by far more than 100 dB


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
    return np.fft.rfft(_k_response(), size)


def _fft_size(length: int) -> int:
    return 1 << (length - 1).bit_length()


def limit(samples: np.ndarray, gain: float, ceiling_dbfs: float = CEILING_DBFS) -> np.ndarray:
    """``samples`` times ``gain``, with peaks over the ceiling turned down smoothly, as int16.

    The gain reduction starts LOOKAHEAD before a peak and lasts as long after
    it, so no sample exceeds the ceiling and the level never jumps (no clicks).
    """
    scaled = samples.astype(np.float64) * gain
    top = 32767 * 10 ** (ceiling_dbfs / 20)
    magnitude = np.abs(scaled)
    if not len(scaled) or magnitude.max() <= top:
        return np.round(scaled).astype("<i2")
    # Gains in single precision: a long clip's working arrays stay small, and 24 bits are plenty for a gain.
    needed = np.minimum(1.0, top / np.maximum(magnitude, 1e-9)).astype(np.float32)
    del magnitude
    held = _running_min(needed, 2 * LOOKAHEAD + 1)
    # Averaging over no more than the hold's reach keeps every gain at or below what its sample needs.
    smooth = _centered_mean(held, LOOKAHEAD + 1)
    return np.round(np.clip(scaled * smooth, -top, top)).astype("<i2")


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


def loudness_of(samples: np.ndarray) -> float:
    """Integrated loudness of a short sound in LUFS; sounds under a second are measured repeated."""
    if not len(samples) or not np.any(samples):
        return SILENCE_LUFS
    repeats = max(1, -(-SAMPLE_RATE // len(samples)))
    command = [tools.ffmpeg(), "-nostdin", "-hide_banner", "-nostats", "-f", "s16le", "-ar", str(SAMPLE_RATE),
               "-ac", "1", "-i", "pipe:0", "-af", "ebur128=framelog=quiet", "-f", "null", "-"]
    result = subprocess.run(command, input=np.tile(samples.astype("<i2"), repeats).tobytes(), capture_output=True)
    found = re.findall(r"I:\s+(-?[\d.]+) LUFS", result.stderr.decode(errors="replace"))
    if result.returncode != 0 or not found:
        raise AudioError("measuring loudness failed: " + result.stderr.decode(errors="replace").strip()[-200:])
    return max(float(found[-1]), SILENCE_LUFS)

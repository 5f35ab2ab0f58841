"""The K-weighting filter of BS.1770, applied by FFT convolution a chunk at a time."""

from __future__ import annotations

import functools
import math

import numpy as np

from voiceguide.units import SAMPLE_RATE

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



"""Peaks: the look-ahead limiter that keeps raised sound under a ceiling, and the true peak of BS.1770."""

from __future__ import annotations

import functools

import numpy as np

from voiceguide.loudness._energies import LOOKAHEAD, SILENCE_LUFS, Loudness
from voiceguide.units import SAMPLE_RATE

# Where the limiter starts. MP3 encoding adds to the peaks of buzzy synthetic
# speech (up to 2 dB seen), so the encoded peaks are measured and the ceiling
# lowered until they stay under TRUE_PEAK_LIMIT_DBTP.
CEILING_DBFS = -3.0
# The true peak of the decoded session (ITU-R BS.1770, 4x oversampled; see true_peak):
# the -1 dBTP that spoken-word platforms ask for, less a margin for meters that oversample more finely.
TRUE_PEAK_LIMIT_DBTP = -1.3

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
    # The gain is below 1 only within reach of a sample over the ceiling (the hold's LOOKAHEAD on either side,
    # the average's half as much again): it is worked out there alone, around each cluster of such samples.
    over = np.flatnonzero(np.abs(scaled) > top)
    reach = 2 * LOOKAHEAD + 2
    apart = np.flatnonzero(np.diff(over) > 2 * reach)
    for first, last in zip(over[np.r_[0, apart + 1]], over[np.r_[apart, len(over) - 1]]):
        part = scaled[max(0, first - reach) : last + reach + 1]
        magnitude = np.abs(part)
        np.divide(top, np.maximum(magnitude, 1e-9, out=magnitude), out=magnitude)
        # Gains in single precision: 24 bits are plenty for a gain.
        needed = np.minimum(magnitude, 1.0, out=magnitude).astype(np.float32)
        held = _running_min(needed, 2 * LOOKAHEAD + 1)
        # Averaging over no more than the hold's reach keeps every gain at or below what its sample needs.
        part *= _centered_mean(held, LOOKAHEAD + 1)
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
    # In double precision: a running sum in single precision drifts by a part in a thousand over a clip.
    sums = np.concatenate([[0.0], np.cumsum(padded, dtype=np.float64)])
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

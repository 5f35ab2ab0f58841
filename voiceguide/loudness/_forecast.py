"""Predicting the loudness of sounds laid over silence at any gains, from each sound analysed once."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from voiceguide.loudness._energies import GATE_STEP, LOOKAHEAD, condensed, integrated
from voiceguide.loudness._filter import _CHUNK, _KWeighting
from voiceguide.loudness._peaks import _centered_mean, _running_min

if TYPE_CHECKING:
    from voiceguide.cache import Cache

BIN = 49  # samples: 900 to a second and 90 to a 100 ms sub-block, so a Forecast's bins make up sub-blocks
_STEPS = GATE_STEP // BIN
_FINE_BINS = 120 * 900  # two minutes in bins; a longer run (a bed) is kept per 100 ms beyond them
ANALYSIS_FORMAT = 1  # bumped whenever _analysis_of changes, so stored analyses are not reused
_STORED = "analyses"  # the cache's kind of stored analyses


class Binned:
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

    def __init__(self, sounds: list[tuple[int, int, str, Callable[[], np.ndarray]]], analyses: Analyses) -> None:
        """``sounds``: (start, length, source, load) in order of start; the same source always sounds the same.
        Each is analysed once in ``analyses``."""
        self._analyses: dict[str, _Analysis] = {}
        self._sounds: list[tuple[int, int, str]] = []
        for start, length, source, load in sounds:
            if source not in self._analyses:
                self._analyses[source] = analyses.of(source, load)
            self._sounds.append((start, length, source))

    def loudness(self, gains: list[float], ceiling_dbfs: float) -> float:
        """Integrated loudness in LUFS with each sound at its gain (0: left out), limited at the ceiling."""
        top = 32767 * 10 ** (ceiling_dbfs / 20)
        heard: dict[tuple[str, float], np.ndarray] = {}
        laid: list[tuple[int, int, list[np.ndarray], np.ndarray]] = []
        for (start, length, source), gain in zip(self._sounds, gains):
            if gain <= 0:  # left out, but where it sounds the silence is not cut short, as when it is heard
                laid.append((start, length, [], _NONE))
                continue
            if (source, gain) not in heard:
                heard[source, gain] = self._analyses[source].energy_at(gain, top)
            laid.append((start, length, [heard[source, gain]], _NONE))
        return laid_out(laid)


_NONE = np.zeros(0)


def laid_out(sounds: list[tuple[int, int, list[np.ndarray], np.ndarray]], duration: int | None = None) -> float:
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


class Analyses:
    """The analyses of one build's sounds for its Forecasts, each made once: a build makes them ahead, while
    speech is still being synthesized, on cores that would otherwise wait, and its level search reads them.

    With a ``cache``, each is kept there under its source, which names
    everything that makes the sound (a clip's file name): a rebuild
    analyses only the sounds that are new.
    """

    def __init__(self, cache: Cache | None = None) -> None:
        self._cache = cache
        self._found: dict[str, _Analysis] = {}
        self._lock = threading.Lock()  # clips are analysed by the threads that made them

    def of(self, source: str, load: Callable[[], np.ndarray]) -> _Analysis:
        """The analysis of the sound ``source`` names; ``load`` gives its samples if it has none yet."""
        with self._lock:
            found = self._found.get(source)
        if found is None:
            found = self._stored(source)
            if found is None:
                found = _analysis_of(load())
                self._store(source, found)
            with self._lock:
                self._found[source] = found
        return found

    def _stored(self, source: str) -> _Analysis | None:
        kept = self._cache.arrays(_STORED, _key(source)) if self._cache is not None else None
        if kept is None or {"energy", "loudest", "peak"} - kept.keys():
            return None
        energy, loudest, peak = kept["energy"], kept["loudest"], kept["peak"]
        if energy.ndim != 1 or loudest.shape != energy.shape or peak.shape != (1,):
            return None  # kept in another shape: worked out again
        return _Analysis(energy, loudest, float(peak[0]))

    def _store(self, source: str, analysis: _Analysis) -> None:
        if self._cache is not None:
            self._cache.put_arrays(_STORED, _key(source), {"energy": analysis.energy, "loudest": analysis.loudest,
                                                           "peak": np.array([analysis.peak])})


def _key(source: str) -> str:
    return hashlib.sha256(json.dumps([ANALYSIS_FORMAT, BIN, source]).encode()).hexdigest()


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



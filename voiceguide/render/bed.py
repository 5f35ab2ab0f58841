"""The background bed: rain, a drone, a person's sound file or a playlist, looped under the whole session.

Built-in beds are made as exact loops: every part of them completes a whole
number of cycles in the loop's length, so the end joins the start without a
seam. A sound file is joined to itself with a crossfade; a playlist's files
are joined one to the next and the last to the first (music.py). Every loop
is a whole number of MP3 frames long. The bed fades in and out at the ends
of the session and dips under everything else that sounds.
The timeline says where every sound is, so the dip can start before a word
does: the bed is already down when the word begins, and no level ever jumps.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math

import numpy as np

from voiceguide import audio
from voiceguide.cache import Cache
from voiceguide.errors import AudioError, InputError
from voiceguide.loudness import loudness_of
from voiceguide.render import music
from voiceguide.render.music import MIN_FILE_SECONDS, crossfaded, period_of
from voiceguide.routine import DEFAULT_CROSSFADE_MS, Background
from voiceguide.sounds import band_limit
from voiceguide.tools import Tools
from voiceguide.units import FRAME, SAMPLE_RATE, samples

# About 24 s: long enough that rain does not audibly repeat, and a whole number
# of MP3 frames (1152 samples), so the loop starts on the same frame boundary each time.
LOOP_LENGTH = 918 * 1152
# Every bed is made this loud; rendering sets it relative to the speech.
BED_LUFS = -30.0
# A longer file is cut here: it would repeat seldom enough, and a whole hour of it would fill memory.
# A playlist's files are played whole (music.MAX_PLAYLIST_SECONDS bounds them).
MAX_FILE_SECONDS = 180
_SEED = 20261125
BEDS_FORMAT = 1  # bumped whenever a generated bed is made differently, so kept beds are not reused


def loop_of(background: Background, tools: Tools, cache: Cache | None = None) -> np.ndarray:
    """One period of the bed at BED_LUFS, a whole number of MP3 frames long, as float32 samples (a playlist's
    as int16, in the same units); a sound file is read with ``tools``. A generated bed is kept in ``cache``:
    making rain takes a sixth of a second, reading it a few milliseconds."""
    if background.playlist:
        return music.playlist_loop(background, tools, BED_LUFS)
    if background.path is None:
        identity = [BEDS_FORMAT, background.name, _SEED, LOOP_LENGTH, BED_LUFS, np.__version__]
        key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()
        kept = cache.arrays("beds", key) if cache else None
        if kept is not None and "loop" in kept and kept["loop"].shape == (LOOP_LENGTH,):
            return kept["loop"]
        made = _leveled(BEDS[background.name](np.random.default_rng(_SEED)))
        if cache:
            cache.put_arrays("beds", key, {"loop": made})
        return made
    return _leveled(_file_loop(background, tools))


def _leveled(loop: np.ndarray) -> np.ndarray:
    """``loop`` brought to BED_LUFS, as float32."""
    scale = 32767 * 0.5 / max(float(np.max(np.abs(loop))), 1e-12)
    measured = loudness_of(np.round(loop * scale).astype("<i2"))
    return (loop * scale * 10 ** ((BED_LUFS - measured) / 20)).astype(np.float32)


def _rain(rng: np.random.Generator) -> np.ndarray:
    """Soft rain: pink noise between 200 Hz and 7 kHz that swells slowly, with scattered drops.

    Made in single precision, a spectrum at a time: a 24 s loop in double
    precision, with its spectra, took 75 MB, which the process then kept.
    """
    frequencies = np.fft.rfftfreq(LOOP_LENGTH, 1 / SAMPLE_RATE).astype(np.float32)
    # A swell of a few tenths of a hertz: rain that comes and goes a little, not a steady hiss.
    swell_shape = ((frequencies > 0.04) & (frequencies < 0.4)).astype(np.float32)
    safe = np.maximum(frequencies, 1.0, out=frequencies)
    shape = (1 / np.sqrt(safe)) * (safe**2 / (safe**2 + 200.0**2)) / (1 + (safe / 7000.0) ** 4)
    del frequencies, safe
    shape[0] = 0.0
    noise = _periodic(shape, rng)
    del shape
    swell = _periodic(swell_shape, rng)
    del swell_shape
    noise *= 1 + 0.3 * swell / max(float(np.max(np.abs(swell))), 1e-12)
    del swell
    noise /= float(np.max(np.abs(noise)))
    length = SAMPLE_RATE // 40
    t = np.arange(length) / SAMPLE_RATE
    for _ in range(90):
        pitch = rng.uniform(1800, 4500)
        decay = rng.uniform(0.003, 0.012)
        drop = np.sin(2 * np.pi * pitch * t * (1 - 0.3 * t / t[-1])) * np.exp(-t / decay) * rng.uniform(0.1, 0.35)
        at = int(rng.integers(LOOP_LENGTH))
        noise[(at + np.arange(length)) % LOOP_LENGTH] += drop.astype(np.float32)
    return noise


def _drone(rng: np.random.Generator) -> np.ndarray:
    """A low drone: a root, its fifth and octaves, each a slowly beating pair that swells and fades.

    Every sample depends on its index alone, so the loop is made a block at a time, in little memory.
    """
    partials = []
    for ratio, amplitude in ((1.0, 1.0), (1.5, 0.55), (2.0, 0.5), (3.0, 0.22), (4.0, 0.1)):
        cycles = round(110.0 * ratio * LOOP_LENGTH / SAMPLE_RATE)
        swells, swell_phase = int(rng.integers(1, 3)), rng.uniform()
        # Three cycles apart per loop: a beat about every eight seconds.
        partials.append((amplitude, swells, swell_phase, cycles, rng.uniform(), rng.uniform()))
    total = np.zeros(LOOP_LENGTH, dtype=np.float32)
    for start in range(0, LOOP_LENGTH, _BLOCK):
        n = np.arange(start, min(start + _BLOCK, LOOP_LENGTH))
        for amplitude, swells, swell_phase, cycles, phase, beat_phase in partials:
            swell = 1 + 0.35 * np.sin(2 * np.pi * (swells * n / LOOP_LENGTH + swell_phase))
            pair = _tone(n, cycles, phase) + 0.6 * _tone(n, cycles + 3, beat_phase)
            total[start : start + len(n)] += amplitude * swell * pair
    return total


_BLOCK = 1 << 16


def _tone(n: np.ndarray, cycles: int, phase: float) -> np.ndarray:
    # Whole cycles per loop, computed in integers so that the phase is exact at any length.
    return np.sin(2 * np.pi * (((cycles * n) % LOOP_LENGTH) / LOOP_LENGTH + phase))


def _periodic(shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise with the magnitude spectrum ``shape`` that repeats exactly every LOOP_LENGTH samples, in the
    precision of ``shape``."""
    spectrum = np.exp(1j * (2 * np.pi * rng.uniform(size=len(shape))).astype(shape.dtype))
    spectrum *= shape
    return np.fft.irfft(spectrum, LOOP_LENGTH)


BEDS = {"rain": _rain, "drone": _drone}


def check(background: Background | None, tools: Tools) -> None:
    """Refuse a background file that is not audio, too short or silent (any file of a playlist, or a playlist
    too long to hold), before any speech is made for it."""
    if background is None:
        return
    if background.playlist:
        music.check(background, tools)
    elif background.path is not None:
        music.scan(background.files[0], tools, "loop", MAX_FILE_SECONDS)


def _decoded(background: Background, tools: Tools, seconds: float) -> np.ndarray:
    assert background.path is not None
    try:
        return audio.decode(background.path, tools, seconds=seconds)
    except AudioError as error:
        raise InputError(f"{background.where}: background {error}") from None


def _file_loop(background: Background, tools: Tools) -> np.ndarray:
    assert background.path is not None
    decoded = _decoded(background, tools, MAX_FILE_SECONDS)
    if len(decoded) < MIN_FILE_SECONDS * SAMPLE_RATE:
        raise InputError(f"{background.where}: background {background.path}: too short to loop (under {MIN_FILE_SECONDS:g} s)")
    if not np.any(decoded):
        raise InputError(f"{background.where}: background {background.path}: the sound file is silent")
    return looped(band_limit(decoded.astype(np.float64)), samples(background.crossfade))


def looped(sound: np.ndarray, crossfade: int = samples(DEFAULT_CROSSFADE_MS)) -> np.ndarray:
    """``sound`` made to repeat seamlessly: its end crossfaded into its start, over ``crossfade`` samples at
    most (a quarter of the sound).

    The end is first trimmed a little, so that the loop is a whole number
    of MP3 frames long (see music.period_of).
    """
    overlap = min(crossfade, len(sound) // 4)
    if overlap < 2:
        return sound
    period = period_of(sound, len(sound), overlap)
    joined = sound[:period].copy()
    joined[:overlap] = crossfaded(sound[period : period + overlap], sound[:overlap])
    return joined


class Bed:
    """The background of one session: the loop, faded at the ends and dipped under ``sounds``."""

    def __init__(self, background: Background, loop: np.ndarray, duration: int, sounds: list[tuple[int, int]]):
        self.background = background
        self.loop = loop
        self.duration = duration
        self.fade = min(samples(background.fade), duration // 2)
        self.attack = samples(background.attack)
        self.release = samples(background.release)
        self.spans = _union(sorted(sounds))
        self._starts = [start - self.attack for start, _ in self.spans]
        self._ends = [end + self.release for _, end in self.spans]

    def samples(self, start: int, stop: int) -> np.ndarray:
        """The bed from sample ``start`` to ``stop``, as float32 at unit gain."""
        offset = start % len(self.loop)
        if offset + stop - start <= len(self.loop):  # most stretches lie within one turn of the loop
            looped = self.loop[offset : offset + stop - start]
        else:  # the loop's turns laid end to end: copies, where an index array would be gathered from
            turns = -(-(offset + stop - start) // len(self.loop))
            looped = np.tile(self.loop, turns)[offset : offset + stop - start]
        return looped * self.gain(start, stop)

    def gain(self, start: int, stop: int) -> np.ndarray:
        """The bed's gain from ``start`` to ``stop``, as float32: the fades at both ends times the dip under sounds.

        Most of a session under a bed is a hold, away from both ends and from
        any sound, where the gain is 1: it is not worked out there.
        """
        gain = np.ones(stop - start, dtype=np.float32)
        if self.fade and (start < self.fade or stop > self.duration - self.fade):
            t = np.arange(start, stop, dtype=np.float64)
            gain *= _rise(np.minimum(t, self.duration - t) / self.fade)
        depth = self.background.depth
        first = bisect.bisect_right(self._ends, start)
        last = bisect.bisect_left(self._starts, stop)
        if depth <= 0 or first >= last:
            return gain
        # How far the bed is dipped, 0 to 1, from where the first dip in the stretch begins to where the last ends.
        low = max(start, self.spans[first][0] - self.attack)
        high = min(stop, self.spans[last - 1][1] + self.release)
        dip = np.zeros(high - low, dtype=np.float32)
        for begin, end in self.spans[first:last]:
            # 1 under the sound, a raised cosine on the attack before it and the release after it, 0 elsewhere;
            # where the release of one meets the attack of the next, the deeper of the two.
            under = slice(max(begin, low) - low, min(end, high) - low)
            if under.start < under.stop:
                dip[under] = 1.0
            for ramp, rising in ((slice(max(low, begin - self.attack), min(high, begin)), True),
                                 (slice(max(low, end), min(high, end + self.release)), False)):
                if ramp.start >= ramp.stop:
                    continue
                t = np.arange(ramp.start, ramp.stop, dtype=np.float64)
                shape = _rise((t - (begin - self.attack)) / self.attack) if rising else 1 - _rise((t - end) / self.release)
                part = dip[ramp.start - low : ramp.stop - low]
                np.maximum(part, shape.astype(np.float32), out=part)
        # -depth dB at a dip of 1, in proportion between: 10 ** (-depth * dip / 20), in single precision.
        dip *= np.float32(-depth * math.log(10) / 20)
        gain[low - start : high - start] *= np.exp(dip, out=dip)
        return gain

    def unsteady(self) -> list[tuple[int, int]]:
        """Where the bed's gain is not 1, as (start, end) in samples: the fades at both ends of the session
        (at least a frame each: before the first sample and after the last is silence), and each dip with
        its attack and release. Everywhere else the bed is its loop, unchanged."""
        edge = max(self.fade, FRAME)
        found = [(0, min(edge, self.duration)), (max(0, self.duration - edge), self.duration)]
        if self.background.depth > 0:
            found += [(max(0, start - self.attack), min(self.duration, end + self.release)) for start, end in self.spans]
        return sorted(found)


def _rise(x: np.ndarray) -> np.ndarray:
    """0 before 0, 1 after 1, a raised cosine between: a ramp without corners, so it is not heard as one."""
    return 0.5 - 0.5 * np.cos(np.pi * np.clip(x, 0.0, 1.0))


def _union(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans merged, so that both their starts and their ends are in order."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def bed_of(background: Background | None, duration: int, sounds: list[tuple[int, int]], tools: Tools,
           cache: Cache | None = None) -> Bed | None:
    return None if background is None else Bed(background, loop_of(background, tools, cache), duration, sounds)


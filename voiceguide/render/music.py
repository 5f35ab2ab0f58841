"""A person's sound files under a session: each read through, checked, band-limited and levelled, then joined
with crossfades into the bed's period; a playlist's files one after another, each played whole.

A playlist of music is long, so nothing of it is held whole but its period: ffmpeg's samples come a block at
a time, are filtered as they come, and are written straight into the period, as int16.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import numpy as np

from voiceguide import audio
from voiceguide.durations import format_clock
from voiceguide.errors import AudioError, InputError
from voiceguide.loudness import Loudness, loudness_of
from voiceguide.routine import Background, Sound
from voiceguide.sounds import BAND_LIMIT_HZ
from voiceguide.tools import Tools
from voiceguide.units import FRAME, SAMPLE_RATE, samples

MIN_FILE_SECONDS = 0.1  # a shorter sound file is refused: there is nothing in it to loop or to play
# A playlist's period is held in memory while a session is made (2 bytes a sample: 106 MB for 20 minutes).
# A session longer than its playlist hears it again from the start.
MAX_PLAYLIST_SECONDS = 20 * 60
# A file is written at half its own scale until its level is known, so that filtering cannot clip it.
_HEADROOM = np.float32(0.5)
_TAPS = 511  # of the band-limiting filter: its slope is 2 kHz wide, which this resolves many times over
_BLOCK = 1 << 16
_SEARCH_FRAMES = 6  # a loop's end is trimmed by under 7 frames (0.18 s) to match its start (see period_of)


def check(background: Background, tools: Tools) -> None:
    """Read every file of a playlist through, and refuse one that is not audio, too short or silent, or a
    playlist too long to hold (MAX_PLAYLIST_SECONDS), before any speech is made for it."""
    total = 0
    for file in background.playlist:
        total += scan(file, tools, "play")
        if total > samples(MAX_PLAYLIST_SECONDS * 1000):
            raise InputError(_too_long(file, f"lasts {format_clock(round(total * 1000 / SAMPLE_RATE))} by the end of"))


def scan(file: Sound, tools: Tools, use: str, seconds: float | None = None) -> int:
    """The length in samples of the sound file ``file`` (of its first ``seconds``), read through without
    being kept; InputError if it is not audio, too short to ``use`` or silent."""
    assert file.path is not None
    length, heard = 0, False
    limit = None if seconds is None else round(seconds * SAMPLE_RATE)
    try:
        with contextlib.closing(audio.stream(file.path, tools)) as blocks:
            for block in blocks:
                length += len(block)
                heard = heard or bool(np.any(block))
                if limit is not None and length >= limit:
                    break
    except AudioError as error:
        raise InputError(f"{file.where}: background {error}") from None
    _refuse(file, length, heard, use)
    return length


def _refuse(file: Sound, length: int, heard: bool, use: str) -> None:
    if length < MIN_FILE_SECONDS * SAMPLE_RATE:
        raise InputError(f"{file.where}: background {file.path}: too short to {use} (under {MIN_FILE_SECONDS:g} s)")
    if not heard:
        raise InputError(f"{file.where}: background {file.path}: the sound file is silent")


def _too_long(file: Sound, lasts: str) -> str:
    return (f"{file.where}: background: the playlist {lasts} {file.name}, longer than a playlist may last "
            f"({format_clock(MAX_PLAYLIST_SECONDS * 1000)}); leave some files out")


def playlist_loop(background: Background, tools: Tools, lufs: float) -> np.ndarray:
    """One period of a playlist's bed: its files one after another, each band-limited, levelled to ``lufs`` and
    played whole, each crossfaded into the next and the last into the first.

    int16, in the units of the other beds (full scale 32768), and a whole
    number of MP3 frames long. Levelling each file, rather than the whole,
    keeps the bed at its level whichever file plays.
    """
    period = _Period(samples(background.crossfade))
    for file in background.playlist:
        period.add(file, tools, lufs)
    return period.closed()


def crossfaded(tail: np.ndarray, head: np.ndarray) -> np.ndarray:
    """``tail`` fading out while ``head`` fades in, as float64, its power even whatever the two have in common.

    Equal-power weights suit unrelated sound (noise, a recording, another
    piece of music), equal-gain weights a sound that matches itself (a tone
    of whole cycles); the correlation of the two chooses between them.
    """
    tail, head = tail.astype(np.float64), head.astype(np.float64)
    correlation = min(1.0, max(-0.5, _correlation(head, tail)))
    angle = np.linspace(0, np.pi / 2, len(head))
    rising, falling = np.sin(angle), np.cos(angle)
    return (head * rising + tail * falling) / np.sqrt(1 + 2 * correlation * rising * falling)


def period_of(sound: np.ndarray, end: int, overlap: int) -> int:
    """Where a loop of ``sound[:end]`` starts again, when the ``overlap`` samples from there are crossfaded into
    its first ``overlap``: a whole number of MP3 frames, trimming the end by less than _SEARCH_FRAMES + 1.

    Of those lengths, the one where the end best matches the start: a tone
    then joins in phase (a trim of a fraction of its cycle could set the two
    against each other, and the crossfade would dip). A sound too short for
    a frame loops where it ends.
    """
    longest = (end - overlap) // FRAME
    lengths = [k * FRAME for k in range(max(1, longest - _SEARCH_FRAMES), longest + 1) if k * FRAME >= overlap]
    if not lengths:
        return end - overlap
    head = sound[:overlap].astype(np.float64)
    return max(lengths, key=lambda length: (_correlation(head, sound[length : length + overlap].astype(np.float64)),
                                            length))


def _correlation(head: np.ndarray, tail: np.ndarray) -> float:
    norms = float(np.sqrt(np.sum(head**2) * np.sum(tail**2)))
    return float(np.sum(head * tail)) / norms if norms else 0.0


class _Period:
    """A playlist's period, made as its files are read: each is written after the one before, over whose end
    its start is crossfaded.

    The array is taken at the largest size a playlist may have; its pages
    are only taken from the system as they are written.
    """

    def __init__(self, crossfade: int) -> None:
        self.samples = np.empty(samples(MAX_PLAYLIST_SECONDS * 1000), dtype=np.int16)
        self.end = 0
        self.crossfade = crossfade
        self.lengths: list[int] = []

    def add(self, file: Sound, tools: Tools, lufs: float) -> None:
        """Read ``file``, level it to ``lufs`` and lay it after the files before it."""
        # Its first samples, kept aside until the length of the crossfade is known.
        head = np.zeros(min(self.crossfade, self.lengths[-1] // 4) if self.lengths else 0, dtype=np.float32)
        start = self.end
        length = written = 0
        meter = Loudness()
        opening: list[np.ndarray] = []  # its first second, measured alone if that is all there is
        for part in _smoothed(file, tools):
            whole = _rounded(part)
            meter.write(whole)
            if length < SAMPLE_RATE:
                opening.append(whole[: SAMPLE_RATE - length])
            kept = max(0, min(len(head) - length, len(part)))
            head[length : length + kept] = part[:kept]
            length += len(part)
            rest = whole[kept:]
            self._room(file, start + written + len(rest))
            self.samples[start + written : start + written + len(rest)] = rest
            written += len(rest)
        _refuse(file, length, meter.peak > 0, "play")
        measured = meter.result()[0] if length >= SAMPLE_RATE else loudness_of(np.concatenate(opening))
        gain = np.float32(10 ** ((lufs - measured) / 20))
        for at in range(start, start + written, _BLOCK):
            block = self.samples[at : min(at + _BLOCK, start + written)]
            block[:] = _rounded(block * gain)
        head *= gain
        self.end = start + written
        if len(head):
            fade = min(len(head), length // 4)
            taken = min(length, len(head))
            if taken > fade:  # a file too short for the whole crossfade: the rest of its head goes after it
                self._room(file, self.end + taken - fade)
                self._shift(start, written, taken - fade)
                self.samples[start : start + taken - fade] = _rounded(head[fade:taken])
                self.end += taken - fade
            self.samples[start - fade : start] = _rounded(crossfaded(self.samples[start - fade : start], head[:fade]))
        self.lengths.append(length)

    def closed(self) -> np.ndarray:
        """The period: the end of the last file crossfaded into the start of the first, trimmed a little
        before it so that the period is a whole number of MP3 frames (see period_of)."""
        fade = min(self.crossfade, self.lengths[-1] // 4, self.lengths[0] // 4)
        length = period_of(self.samples, self.end, fade)
        self.samples[:fade] = _rounded(crossfaded(self.samples[length : length + fade], self.samples[:fade]))
        # A view, not a copy: the pages past the period were never written, and so were never taken.
        return self.samples[:length]

    def _room(self, file: Sound, end: int) -> None:
        if end > len(self.samples):
            raise InputError(_too_long(file, "runs out of room in"))

    def _shift(self, start: int, length: int, by: int) -> None:
        """Move ``length`` samples from ``start`` ``by`` samples later, a block at a time from the end."""
        for stop in range(start + length, start, -_BLOCK):
            begin = max(start, stop - _BLOCK)
            self.samples[begin + by : stop + by] = self.samples[begin:stop]


def _smoothed(file: Sound, tools: Tools) -> Iterator[np.ndarray]:
    """The samples of ``file``, band-limited as sounds.band_limit does, at half their scale, as float32 blocks."""
    assert file.path is not None
    carried = np.zeros(_TAPS - 1, dtype=np.float32)  # what the filter rings on into the next block
    delay = _TAPS // 2  # the filter's: samples still to leave out at the start
    try:
        for block in audio.stream(file.path, tools, _BLOCK):
            size = audio.quick_length(len(block) + _TAPS - 1)
            filtered = np.fft.irfft(np.fft.rfft(block.astype(np.float32), size) * _spectrum(size), size)
            filtered = filtered[: len(block) + _TAPS - 1]
            filtered[: _TAPS - 1] += carried
            carried = filtered[len(block) :].copy()
            done = filtered[: len(block)]
            late = min(delay, len(done))
            delay -= late
            yield done[late:] * _HEADROOM
    except AudioError as error:
        raise InputError(f"{file.where}: background {error}") from None
    yield carried[delay : _TAPS // 2] * _HEADROOM


def _rounded(sound: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(sound), -32768, 32767).astype(np.int16)


@functools.cache
def _kernel() -> np.ndarray:
    """sounds.band_limit's slope (down from BAND_LIMIT_HZ over 2 kHz, as a squared cosine) as a linear-phase
    FIR filter of _TAPS taps: the same filter for a sound that comes a block at a time."""
    size = 4096
    frequencies = np.fft.rfftfreq(size, 1 / SAMPLE_RATE)
    slope = np.clip((frequencies - BAND_LIMIT_HZ) / 2000, 0.0, 1.0)
    impulse = np.roll(np.fft.irfft(np.cos(slope * np.pi / 2) ** 2, size), _TAPS // 2)[:_TAPS] * np.hanning(_TAPS)
    return (impulse / np.sum(impulse)).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _spectrum(size: int) -> np.ndarray:
    return np.fft.rfft(_kernel(), size).astype(np.complex64)

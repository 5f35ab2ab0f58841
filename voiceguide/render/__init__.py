"""Render a timeline: every sound laid over silence, one short stretch at a time, at the target loudness.

Sounds (speech, chimes, cues) are layers at their planned start. Between two
moments where a layer starts or ends the mix does not change, so silence is
written without being computed and only the clips sounding at that moment are
in memory. A background bed, when there is one, sounds everywhere: it is made
a block at a time and added under the layers.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from voiceguide.loudness import (
    CEILING_DBFS,
    GATE_STEP,
    LOOKAHEAD,
    SILENCE_LUFS,
    TRUE_PEAK_LIMIT_DBTP,
    Analyses,
    Forecast,
    condensed,
    limit,
)
from voiceguide.plan.timeline import Timeline
from voiceguide.render.bed import BED_LUFS, Bed, bed_of
from voiceguide.routine import Sound
from voiceguide.sounds import CHIME_LUFS, Sounds
from voiceguide.speech import Clip, Speech
from voiceguide.tools import Tools
from voiceguide.units import FRAME, MARGIN, SAMPLE_RATE, Piece

LOUDNESS_ROUNDS = 12  # of the search on a Forecast, each about a millisecond
ENCODED_ROUNDS = 5  # of writing the session and measuring it, each a pass through the encoder
LEVEL_FORMAT = 12  # bumped whenever levelling changes, so stored levels are not reused
MAX_STEP_DB = 6.0
PEAK_MARGIN_DB = 0.3  # the encoded peak moves by a few tenths from one ceiling to the next
# Past this the limiter would flatten the speech; a session this quiet stays under its target.
MAX_SPEECH_GAIN_DB = 15.0
SEARCH_TOLERANCE = 0.05  # LU; the search on the forecast aims this close...
ENCODED_TOLERANCE = 0.4  # LU; ... and the encoded session is taken when it lands this close (±1 is allowed)
# What MP3 encoding does to the loudness of synthetic speech, as first guess (measured: 0.35 to 0.5 LU off).
ENCODER_LOSS_LU = 0.4
# A chime or bell this far under the speech is heard clearly and never startles.
SOUND_BELOW_SPEECH_LU = 8.0
SOUND_MIN_BELOW_LU = 1.5  # where the speech can rise no further, sounds rise at most this close to it
# Silence this long between two sounds is written as silent frames, not encoded: see voiceguide.mp3.
PIECE_GAP = 2 * (MARGIN + FRAME)
PIECE_FORMAT = 3  # bumped whenever rendering or encoding changes, so stored frames are not reused
# The bed is made this many samples at a time: a long hold is not held in memory whole.
BED_BLOCK = SAMPLE_RATE * 2


class Sink(Protocol):
    written: int

    def write(self, samples: np.ndarray) -> None: ...

    def silence(self, count: int) -> None: ...


@dataclass(frozen=True)
class Layer:
    start: int
    length: int
    load: Callable[[], np.ndarray]
    spoken: bool  # speech is levelled to the target; chimes and other sounds sit at a fixed distance below
    source: str  # what sounds: the clip's file, or the chime; the same source sounds the same


def source_of(clip: Clip) -> str:
    """What a clip's layers name as their source: its file, named by everything that makes it sound as it does."""
    return clip.path.name


def sound_source(chime: Sound) -> str:
    """What a chime's layers name as their source."""
    return f"{chime.name}:{chime.path}"


def analyse(analyses: Analyses, clip: Clip) -> None:
    """Analyse a clip for the level search ahead of time (see loudness.Analyses)."""
    analyses.of(source_of(clip), clip.samples)


def analyse_sound(analyses: Analyses, sounds: Sounds, sound: Sound) -> None:
    """Analyse a sound for the level search ahead of time."""
    analyses.of(sound_source(sound), lambda: sounds.samples(sound))


class Encoder(Protocol):
    """What render needs of the MP3 stage (voiceguide.mp3.Encoder), handed to it by the caller."""

    bitrate: int

    @property
    def identity(self) -> list[object]:
        """Part of what a piece's stored frames depend on."""

    def write(self, path: Path, total: int, pieces: list[Piece], fill: Callable[[Piece, Callable[[memoryview], None]], None],
              head: bytes = b"", measure: bool = False) -> tuple[float, float] | None:
        """Write the session as an MP3 file; with ``measure``, its loudness (LUFS) and true peak (dBTP)."""


def layers(timeline: Timeline, speech: Speech, sounds: Sounds) -> list[Layer]:
    """Every sound of the session, in order of start."""
    found = []
    for event in timeline.events:
        if event.line is not None:
            clip = speech.clip(event.line)
            # The plan was made from these very clips; a mismatch would shift everything after it.
            if event.kind == "speech" and clip.length != event.length:
                raise AssertionError(f"speech at {event.start} has {clip.length} samples, planned {event.length}")
            found.append(Layer(event.start, clip.length, clip.samples, spoken=True, source=source_of(clip)))
        elif event.sound is not None:
            chime = event.sound
            for start in event.strike_starts():
                found.append(Layer(start, sounds.length(chime), functools.partial(sounds.samples, chime), spoken=False,
                                   source=sound_source(chime)))
    return sorted(found, key=lambda layer: layer.start)


@dataclass(frozen=True)
class Level:
    """How loud the layers are made: gains for speech, sounds and the bed, and the limiter's ceiling in dBFS."""

    gain: float = 1.0
    sound_gain: float = 1.0
    ceiling: float = CEILING_DBFS
    bed_gain: float = 1.0


@dataclass(frozen=True)
class Measured:
    """How loud a session came out, as encoded: its speech (integrated over the spoken parts, as broadcast
    dialogue is measured), and the whole file (what a player or a platform measures), in LUFS."""

    speech: float
    whole: float


def mix(pending: list[Layer], sink: Sink, level: Level, start: int, stop: int, bed: Bed | None = None) -> None:
    """Write samples ``start`` to ``stop`` of the session into ``sink``: the layers at ``level``, the bed under them.

    ``pending`` holds the layers that sound in that stretch, in order of start.
    """
    active: list[tuple[int, np.ndarray]] = []
    limited: dict[tuple[str, float], np.ndarray] = {}  # a countdown says the same words in every hold
    position = start
    index = 0
    while position < stop:
        while index < len(pending) and pending[index].start <= position:
            layer = pending[index]
            gain = level.gain if layer.spoken else level.sound_gain
            if (layer.source, gain) not in limited:
                limited[layer.source, gain] = limit(layer.load(), gain, level.ceiling)
            active.append((layer.start, limited[layer.source, gain]))
            index += 1
        active = [(begin, data) for begin, data in active if begin + len(data) > position]
        upcoming = pending[index].start if index < len(pending) else stop
        end = min([upcoming, stop] + [begin + len(data) for begin, data in active])
        if bed is not None:
            end = min(end, position + BED_BLOCK)
            sounding = bed.samples(position, end) * level.bed_gain
            if active:
                sounding += _together(active, position, end, level)
            sink.write(np.round(np.clip(sounding, -32768, 32767)).astype("<i2"))
        elif not active:
            sink.silence(end - position)
        else:
            sink.write(_together(active, position, end, level))
        position = end
    assert sink.written == stop - start, "the rendered length must be the planned length"


def _together(active: list[tuple[int, np.ndarray]], position: int, stop: int, level: Level) -> np.ndarray:
    """The layers sounding from ``position`` to ``stop``, summed."""
    if len(active) == 1:
        start, data = active[0]
        return data[position - start : stop - start]
    # Overlapping cues are reported when planning; here their sum must stay under the ceiling too. The
    # limiter looks at the sum a little before and after the stretch, as it would over the whole session,
    # so that its gain meets the stretches on either side without a jump (a click, which MP3 makes worse).
    context = 2 * LOOKAHEAD
    begin, end = position - context, stop + context
    total_mix = np.zeros(end - begin, dtype=np.int32)
    for start, data in active:
        first, last = max(begin, start), min(end, start + len(data))
        total_mix[first - begin : last - begin] += data[first - start : last - start]
    return limit(total_mix, 1.0, level.ceiling)[context : context + stop - position]


Measure = Callable[[Level, "Bed | None"], tuple[float, float]]


def leveled(timeline: Timeline, pending: list[Layer], target_lufs: float, measure: Measure, analyses: Analyses,
            bed: Bed | None = None) -> tuple[Level, Measured]:
    """The level that brings the encoded speech to ``target_lufs`` with peaks under TRUE_PEAK_LIMIT_DBTP, and
    how loud the session then is.

    The speech alone is measured first, to set the balance: speech at the
    target, sounds SOUND_BELOW_SPEECH_LU under it. Then both are moved
    together until the whole session lands (``_searched``): the limiter
    takes some loudness off the peaks that a gain raises, so the gain is
    refined round by round. The search asks a Forecast, which costs a
    millisecond a round; ``measure`` then writes the session at the level
    found and measures it as encoded (the encoder takes a few tenths of a
    LU off and adds to the peaks), and the search is run again for what
    the encoder changed, until the encoded session lands: usually at once.
    A bed is set last, its level under the speech as it is then heard (see ``_bed_level``).
    """
    forecast = Forecast([(layer.start, layer.length, layer.source, layer.load) for layer in pending], analyses)

    def loudness(level: Level, sounds: bool = True) -> float:
        gains = [level.gain if layer.spoken else level.sound_gain * sounds for layer in pending]
        return forecast.loudness(gains, level.ceiling)

    has_speech = any(layer.spoken for layer in pending)
    speech_lufs = loudness(Level(), sounds=False) if has_speech else SILENCE_LUFS
    has_speech = speech_lufs > SILENCE_LUFS
    speech_db = min(MAX_SPEECH_GAIN_DB, target_lufs - speech_lufs) if has_speech else 0.0
    sound_db = target_lufs - SOUND_BELOW_SPEECH_LU - CHIME_LUFS

    def at(shift: float, ceiling: float) -> Level:
        # Past the most the speech may take, the sounds carry the rest (a session mostly of ticks)...
        speech_shift = min(shift, MAX_SPEECH_GAIN_DB - speech_db)
        gain = 10 ** ((speech_db + speech_shift) / 20)
        sound_shift = shift - speech_shift
        if sound_shift > 0 and has_speech:
            # ... but never so far that a chime comes near the words as they are heard, through the limiter:
            # then the session stays a little quiet.
            heard = loudness(Level(gain, 1.0, ceiling), sounds=False)
            loudest = heard - SOUND_MIN_BELOW_LU - (target_lufs - SOUND_BELOW_SPEECH_LU)
            sound_shift = max(0.0, min(sound_shift, loudest))
        return Level(gain, 10 ** ((sound_db + sound_shift) / 20), ceiling)

    ceiling = CEILING_DBFS
    shift = 0.0
    encoding = -ENCODER_LOSS_LU  # what the encoder adds to the loudness of the forecast
    slope = 1.0
    level = at(shift, ceiling)
    # (distance from the target, level, loudness as encoded, what the encoder added) of the best round within the peak
    best: tuple[float, Level, float, float] | None = None
    for _ in range(ENCODED_ROUNDS):
        shift, mixed, slope = _searched(functools.partial(_at_ceiling, loudness, at, ceiling=ceiling),
                                        target_lufs - encoding, shift, slope)
        if at(shift, ceiling) == level and best is not None:
            break  # every gain is at its most, as in the round before: nothing more to learn
        level = at(shift, ceiling)
        # Without the bed: it is set after, under the speech as the listener hears it.
        measured, peak = measure(level, None)
        if measured <= SILENCE_LUFS or mixed <= SILENCE_LUFS:
            break
        over = max(0.0, peak - TRUE_PEAK_LIMIT_DBTP)
        if not over and (best is None or abs(target_lufs - measured) < best[0]):
            best = (abs(target_lufs - measured), level, measured, measured - mixed)
        encoding = measured - mixed
        if abs(target_lufs - measured) < ENCODED_TOLERANCE and not over:
            break
        if over:
            # A margin, so that the next round does not land on the limit again.
            ceiling -= over + PEAK_MARGIN_DB
    whole = SILENCE_LUFS
    if best is not None:
        _, level, whole, encoding = best
    # The speech alone, as encoded: the forecast of its own loudness, with what the encoder added to the whole.
    speech = loudness(level, sounds=False) + encoding if has_speech else SILENCE_LUFS
    if bed is None:
        return level, Measured(speech, whole)
    level, whole = _bed_level(measure, bed, level, speech if has_speech else target_lufs)
    return level, Measured(speech, whole)


def _at_ceiling(loudness: Callable[[Level], float], at: Callable[[float, float], Level], shift: float,
                ceiling: float) -> float:
    """The forecast loudness at ``shift`` with the limiter at ``ceiling``."""
    return loudness(at(shift, ceiling))


def _searched(loudness_at: Callable[[float], float], goal: float, shift: float,
              slope: float = 1.0) -> tuple[float, float, float]:
    """The shift (dB) at which ``loudness_at`` gives ``goal``, starting from ``shift``: with the loudness there
    and the slope last seen.

    Once the limiter works, a dB of gain buys less than a dB of loudness:
    each step follows the slope of the last two rounds (the secant).
    """
    previous: tuple[float, float] | None = None
    measured = loudness_at(shift)
    for _ in range(LOUDNESS_ROUNDS):
        if measured <= SILENCE_LUFS or abs(goal - measured) < SEARCH_TOLERANCE:
            break
        if previous is not None and shift != previous[0]:
            slope = min(1.0, max(0.2, (measured - previous[1]) / (shift - previous[0])))
        previous = (shift, measured)
        shift += max(-MAX_STEP_DB, min(MAX_STEP_DB, (goal - measured) / slope))
        measured = loudness_at(shift)
        if abs(measured - previous[1]) < SEARCH_TOLERANCE / 2:
            break  # the gains are at their most (or nearly): the session stays this loud
    return shift, measured, slope


def _bed_level(measure: Measure, bed: Bed, level: Level, speech_lufs: float) -> tuple[Level, float]:
    """``level`` with the bed at its level under the speech (``speech_lufs``, as encoded), and the loudness of
    the whole session then.

    The bed stays where the routine asks, whatever it does to the whole:
    a sparse session under a bed measures quieter than its speech, and
    build says both. The bed adds little to the peaks (it is far under the
    speech, and lower still under it); what it does add the limiter's
    ceiling takes off, and the session is measured again.
    """
    bed_lufs = speech_lufs + bed.background.level
    chosen = dataclasses.replace(level, bed_gain=10 ** ((bed_lufs - BED_LUFS) / 20))
    whole, peak = measure(chosen, bed)
    over = max(0.0, peak - TRUE_PEAK_LIMIT_DBTP)
    if over:
        chosen = dataclasses.replace(chosen, ceiling=chosen.ceiling - over - PEAK_MARGIN_DB)
        whole, _ = measure(chosen, bed)
    return chosen, whole


def level_key(pending: list[Layer], target_lufs: float, bitrate: int, bed: Bed | None = None) -> str:
    """What the level depends on: the sounds and their spacing as the meter hears it, target and bitrate.

    Holds only add silence that the meter cuts short, so changing a hold
    usually leaves this key, and the level, as it was. Under a bed nothing is
    silent: every sample counts, and so does where each sound is.
    """
    parts: list[object] = [LEVEL_FORMAT, target_lufs, bitrate, CEILING_DBFS, TRUE_PEAK_LIMIT_DBTP, SOUND_BELOW_SPEECH_LU]
    if bed is not None:
        background = bed.background
        stat = background.path.stat() if background.path else None
        parts.append([background.name, str(background.path), stat and (stat.st_size, stat.st_mtime_ns),
                      background.level, background.fade, background.depth, background.attack, background.release,
                      bed.duration])
    position = 0
    for layer in pending:
        gap = layer.start - position
        # A pause grows by up to an MP3 frame when a hold before it changes (see the planner): far too
        # little to change the loudness, so gaps count to the 100 ms.
        parts.append((layer.source, layer.spoken, gap if bed is not None else condensed(gap) // GATE_STEP))
        position = max(position, layer.start)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def pieces_of(pending: list[Layer], total: int, bed: Bed | None, level: Level,
              encoder: Encoder) -> list[tuple[Piece, list[Layer]]]:
    """The session's sounds in pieces with silence between them long enough to be written as silent frames.

    A piece's key is what its frames depend on: its layers and where each
    starts within it, the level, and where it starts within an MP3 frame.
    The planner puts sounds after a hold at the same place within a frame
    whatever the hold's length, so changing a hold leaves most keys as they were.
    """
    if bed is not None:
        return [(Piece(0, total, None), pending)] if total else []
    groups: list[list[Layer]] = []
    end = 0
    for layer in pending:
        if groups and layer.start - end < PIECE_GAP:
            groups[-1].append(layer)
        else:
            groups.append([layer])
            end = 0
        end = max(end, layer.start + layer.length)
    pieces = []
    for group in groups:
        start = group[0].start
        length = max(layer.start + layer.length for layer in group) - start
        parts: list[object] = [PIECE_FORMAT, encoder.bitrate, dataclasses.astuple(level), start % FRAME, length,
                               encoder.identity]
        parts.extend((layer.source, layer.spoken, layer.start - start) for layer in group)
        pieces.append((Piece(start, length, hashlib.sha256(json.dumps(parts).encode()).hexdigest()), group))
    return pieces


_SILENCE = bytes(1 << 16)


class _Stream:
    """A sink that passes PCM on as bytes: views of the samples, and of one block of zeros for silence."""

    def __init__(self, out: Callable[[memoryview], None]):
        self.out = out
        self.written = 0

    def write(self, samples: np.ndarray) -> None:
        self.out(memoryview(np.ascontiguousarray(samples, dtype="<i2").data).cast("B"))
        self.written += len(samples)

    def silence(self, count: int) -> None:
        for start in range(0, 2 * count, len(_SILENCE)):
            self.out(memoryview(_SILENCE)[: min(len(_SILENCE), 2 * count - start)])
        self.written += count


def render(timeline: Timeline, speech: Speech, sounds: Sounds, path: Path, target_lufs: float, encoder: Encoder,
           analyses: Analyses, tools: Tools, head: bytes = b"") -> tuple[Level, Measured]:
    """Write the session as an MP3 file at ``path`` with ``encoder`` (after ``head``, its tags), at
    ``target_lufs``; return the level it was mixed at and how loud it came out. ``analyses`` holds the sounds analysed so far, and
    ``tools`` reads a background's sound file.

    The level found for the same sounds before is taken from the cache;
    otherwise each round of its search writes the session and measures it
    as written, and the last round is usually the session itself.
    """
    pending = layers(timeline, speech, sounds)
    bed = bed_of(timeline.background, timeline.duration, [(layer.start, layer.start + layer.length) for layer in pending],
                 tools)
    written: list[tuple[Level, Bed | None]] = []

    def write(level: Level, under: Bed | None, measuring: bool = False) -> tuple[float, float] | None:
        pieces = pieces_of(pending, timeline.duration, under, level, encoder)
        layers_at = {piece.start: group for piece, group in pieces}

        def fill(piece: Piece, out: Callable[[memoryview], None]) -> None:
            mix(layers_at[piece.start], _Stream(out), level, piece.start, piece.start + piece.length, under)

        measured = encoder.write(path, timeline.duration, [piece for piece, _ in pieces], fill, head, measuring)
        written.append((level, under))
        return measured

    def measure(level: Level, under: Bed | None) -> tuple[float, float]:
        measured = write(level, under, measuring=True)
        assert measured is not None
        return measured

    key = level_key(pending, target_lufs, encoder.bitrate, bed)
    stored = speech.cache.json("levels", key)
    try:
        level, measured = Level(**stored["level"]), Measured(**stored["measured"])  # type: ignore[index]
    except (TypeError, KeyError):  # none stored, or in another shape
        level, measured = leveled(timeline, pending, target_lufs, measure, analyses, bed)
        speech.cache.put_json("levels", key, {"level": dataclasses.asdict(level),
                                              "measured": dataclasses.asdict(measured)})
    if written[-1:] != [(level, bed)]:
        write(level, bed)
    return level, measured

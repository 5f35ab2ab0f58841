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

from voiceguide.cache import Cache
from voiceguide.loudness import LOOKAHEAD, SILENCE_LUFS, Analyses, limit
from voiceguide.plan.timeline import Timeline
from voiceguide.render.bed import Bed, bed_of
from voiceguide.render.level import Level, Measured, bed_level, level_key, leveled, recent_levels, remember
from voiceguide.routine import Sound
from voiceguide.sounds import Sounds
from voiceguide.speech.clips import Clip, Speech
from voiceguide.tools import Tools
from voiceguide.units import FRAME, MARGIN, SAMPLE_RATE, WARM, Ground, Piece

__all__ = ["Encoder", "Layer", "Level", "Measured", "analyse", "analyse_sound", "layers", "mix", "render"]

# Silence this long between two sounds is written as silent frames, not encoded: see voiceguide.mp3.
PIECE_GAP = 2 * (MARGIN + FRAME)
# Under a bed, pieces this far apart at least: the encoder hears up to a lead (MARGIN and a frame) and WARM
# before a piece, and this is more than that and TAIL after one.
BED_PIECE_GAP = MARGIN + 2 * FRAME + WARM
PIECE_FORMAT = 5  # bumped whenever rendering or encoding changes, so stored frames are not reused
# Under a bed, only what is not its steady loop is encoded; False encodes the whole session as one piece
# (what the tests compare the frames copied from the loop with).
FRAMES_UNDER_BED = True
MAX_GROUND = 5 * 60 * SAMPLE_RATE
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


def sound_source(sounds: Sounds, chime: Sound) -> str:
    """What a chime's layers name as their source: its name, and a digest of what it is made from (a sound file
    edited in place is another sound)."""
    return f"{chime.name}:{sounds.key(chime)}"


def analyse(analyses: Analyses, clip: Clip) -> None:
    """Analyse a clip for the level search ahead of time (see loudness.Analyses)."""
    analyses.of(source_of(clip), clip.samples)


def analyse_sound(analyses: Analyses, sounds: Sounds, sound: Sound) -> None:
    """Analyse a sound for the level search ahead of time."""
    analyses.of(sound_source(sounds, sound), lambda: sounds.samples(sound))


class Encoder(Protocol):
    """What render needs of the MP3 stage (voiceguide.mp3.Encoder), handed to it by the caller."""

    bitrate: int

    @property
    def identity(self) -> list[object]:
        """Part of what a piece's stored frames depend on."""

    def write(self, path: Path, total: int, pieces: list[Piece], fill: Callable[[Piece, Callable[[memoryview], None]], None],
              head: bytes = b"", measure: bool = False, ground: Ground | None = None) -> tuple[float, float] | None:
        """Write the session as an MP3 file; with ``measure``, its loudness (LUFS) and true peak (dBTP); with
        ``ground``, the bed's steady period between the pieces instead of silence."""


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
                                   source=sound_source(sounds, chime)))
    return sorted(found, key=lambda layer: layer.start)


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


def pieces_of(pending: list[Layer], total: int, bed: Bed | None, level: Level, encoder: Encoder,
              ground: Ground | None = None) -> list[Piece]:
    """The session's sounds in pieces, with silence between them long enough to be written as silent frames;
    under a bed with a ``ground``, with the bed's steady period between them (see _under).

    A piece's key is what its frames depend on: its layers and where each
    starts within it, the level, and where it starts within an MP3 frame.
    The planner puts sounds after a hold at the same place within a frame
    whatever the hold's length, so changing a hold leaves most keys as they were.
    """
    if bed is not None and ground is None:  # encoded whole (a bed whose loop is not of whole frames)
        return [Piece(0, total, None)] if total else []
    if bed is not None and ground is not None:
        return _under(pending, bed, level, encoder, ground)
    spans = _grouped([(layer.start, layer.start + layer.length) for layer in pending], PIECE_GAP)
    return [_piece(pending, start, end, level, encoder) for start, end in spans]


def _under(pending: list[Layer], bed: Bed, level: Level, encoder: Encoder, ground: Ground) -> list[Piece]:
    """Pieces under a bed: wherever something sounds or the bed is not steady (it fades or dips).

    They lie far enough apart that what the encoder hears around one (its
    lead, WARM before it, TAIL after: see voiceguide.mp3) is the steady bed,
    whose period the ground's key names; only near the session's ends does
    a piece's key say how near.
    """
    spans = bed.unsteady() + [(layer.start, layer.start + layer.length) for layer in pending]
    background = bed.background
    return [_piece(pending, start, end, level, encoder,
                   [ground.key, start % ground.length, min(start, BED_PIECE_GAP), min(bed.duration - end, BED_PIECE_GAP),
                    [background.fade, background.depth, background.attack, background.release]])
            for start, end in _grouped(sorted(spans), BED_PIECE_GAP)]


def _piece(pending: list[Layer], start: int, end: int, level: Level, encoder: Encoder,
           around: list[object] | None = None) -> Piece:
    """The piece from ``start`` to ``end``, keyed by what its frames depend on; ``around``: what sounds around it
    (a bed), when something does."""
    parts: list[object] = [PIECE_FORMAT, encoder.bitrate, dataclasses.astuple(level), start % FRAME, end - start,
                           encoder.identity, *(around or [])]
    parts.extend((layer.source, layer.spoken, layer.start - start) for layer in _overlapping(pending, start, end))
    return Piece(start, end - start, hashlib.sha256(json.dumps(parts).encode()).hexdigest())


def _grouped(spans: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """``spans`` (in order of start) joined where less than ``gap`` lies between them."""
    joined: list[tuple[int, int]] = []
    for start, end in spans:
        if joined and start - joined[-1][1] < gap:
            joined[-1] = (joined[-1][0], max(joined[-1][1], end))
        else:
            joined.append((start, end))
    return joined


def _overlapping(pending: list[Layer], start: int, end: int) -> list[Layer]:
    """The layers that sound between ``start`` and ``end``, in order of start."""
    return [layer for layer in pending if layer.start < end and layer.start + layer.length > start]


def ground_of(bed: Bed, level: Level, encoder: Encoder) -> Ground | None:
    """The bed's steady period at ``level``, as the mix makes it away from everything else; None when the
    loop is not a whole number of MP3 frames (it cannot be copied frame by frame), is longer than MAX_GROUND
    (a playlist), or longer than half the session (encoding it once would cost about what the session does)."""
    if len(bed.loop) % FRAME or len(bed.loop) > MAX_GROUND or 2 * len(bed.loop) > bed.duration:
        return None
    loop = bed.loop
    identity = hashlib.sha256(np.ascontiguousarray(loop).data).hexdigest()
    key = hashlib.sha256(json.dumps([PIECE_FORMAT, encoder.bitrate, encoder.identity, identity, level.bed_gain]).encode())

    def pcm() -> bytes:
        # As mix makes the bed where its gain is 1: the same float32 products, rounded the same way.
        steady = loop.astype(np.float32, copy=False) * level.bed_gain
        return np.round(np.clip(steady, -32768, 32767)).astype("<i2").tobytes()

    return Ground(key.hexdigest(), len(loop), pcm)


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


def _stored(cache: Cache, key: str) -> tuple[Level, Measured] | None:
    """The level stored under ``key``, and how loud the session came out there; None if none is stored."""
    stored = cache.json("levels", key)
    try:
        return Level(**stored["level"]), Measured(**stored["measured"])  # type: ignore[index]
    except (TypeError, KeyError):  # none stored, or in another shape
        return None


def _store(cache: Cache, key: str, level: Level, measured: Measured) -> None:
    cache.put_json("levels", key, {"level": dataclasses.asdict(level), "measured": dataclasses.asdict(measured)})


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
                 tools, speech.cache)
    written: list[tuple[Level, Bed | None]] = []

    def write(level: Level, under: Bed | None, measuring: bool = False) -> tuple[float, float] | None:
        ground = ground_of(under, level, encoder) if under is not None and FRAMES_UNDER_BED else None
        pieces = pieces_of(pending, timeline.duration, under, level, encoder, ground)

        def fill(piece: Piece, out: Callable[[memoryview], None]) -> None:
            # Under a bed the encoder hears around a piece too, which may reach past the session's ends.
            start, end = max(0, piece.start), min(timeline.duration, piece.start + piece.length)
            _Stream(out).silence(start - piece.start)
            mix(_overlapping(pending, start, end), _Stream(out), level, start, end, under)
            _Stream(out).silence(piece.start + piece.length - end)

        measured = encoder.write(path, timeline.duration, pieces, fill, head, measuring, ground)
        written.append((level, under))
        return measured

    def measure(level: Level, under: Bed | None) -> tuple[float, float]:
        measured = write(level, under, measuring=True)
        assert measured is not None
        return measured

    if bed is None:
        key = level_key(pending, target_lufs, encoder.bitrate)
        stored = _stored(speech.cache, key)
        if stored is None:
            found = leveled(timeline, pending, target_lufs, measure, analyses,
                            recent_levels(speech.cache, target_lufs, encoder.bitrate))
            stored = found.level, found.measured
            _store(speech.cache, key, *stored)
            if found.known is not None:
                remember(speech.cache, target_lufs, encoder.bitrate, found.known)
        level, measured = stored
    else:
        # The speech's level from the forecast, the bed's under it as the speech is heard; the session is then
        # written once, with its bed, and measured as written.
        key = level_key(pending, target_lufs, encoder.bitrate, bed)
        with_bed = _stored(speech.cache, key)
        if with_bed is None:
            # Kept apart from the level found as encoded without a bed, but like it keyed by the sounds and the
            # silences as the meter hears them: a new hold keeps it, and so every piece that did not move.
            forecast_key = level_key(pending, target_lufs, encoder.bitrate) + "-forecast"
            stored = _stored(speech.cache, forecast_key)
            if stored is None:
                found = leveled(timeline, pending, target_lufs, None, analyses)
                stored = found.level, found.measured
                _store(speech.cache, forecast_key, *stored)
            speech_lufs = stored[1].speech
            level, whole = bed_level(measure, bed, stored[0], speech_lufs if speech_lufs > SILENCE_LUFS else target_lufs)
            with_bed = level, Measured(speech_lufs, whole)
            _store(speech.cache, key, *with_bed)
        level, measured = with_bed
    if written[-1:] != [(level, bed)]:
        write(level, bed)
    return level, measured

"""The level of a session: the gains that bring its speech to the target loudness, as encoded, with its
peaks under the limit, and a bed at its level under the speech; and the levels found before, tried first."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voiceguide.loudness import (
    CEILING_DBFS,
    GATE_STEP,
    SILENCE_LUFS,
    TRUE_PEAK_LIMIT_DBTP,
    Forecast,
    condensed,
)
from voiceguide.plan.timeline import Timeline
from voiceguide.render.bed import BED_LUFS, Bed
from voiceguide.sounds import CHIME_LUFS

if TYPE_CHECKING:
    from voiceguide.cache import Cache
    from voiceguide.loudness import Analyses
    from voiceguide.render import Layer

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
RECENT_LEVELS = 8  # levels found before, kept per target and bitrate, tried before a search


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


@dataclass(frozen=True)
class Known:
    """A level a build found, before any bed, with what the encoder added to the forecast loudness there (LU) and
    the sounds it was used for (short digests of their sources): what another session may try first."""

    level: Level
    encoding: float
    sources: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Leveled:
    """The level of a session, how loud it came out, and what the next session may try first (None: nothing
    worth keeping, a silent session or one whose peaks never came under the limit)."""

    level: Level
    measured: Measured
    known: Known | None


Measure = Callable[[Level, "Bed | None"], tuple[float, float]]


def leveled(timeline: Timeline, pending: list[Layer], target_lufs: float, measure: Measure | None,
            analyses: Analyses, known: Sequence[Known] = ()) -> Leveled:
    """The level that brings the encoded speech to ``target_lufs`` with peaks under TRUE_PEAK_LIMIT_DBTP, how
    loud the session then is, and what a later session may try first.

    A level found before (``known``) is tried first (see ``_reused``):
    when one still fits, the session is written once, and every piece
    whose sounds did not change keeps its stored frames.
    Otherwise the level is searched. The speech alone is measured first,
    to set the balance: speech at the target, sounds SOUND_BELOW_SPEECH_LU
    under it. Then both are moved together until the whole session lands
    (``_searched``): the limiter takes some loudness off the peaks that a
    gain raises, so the gain is refined round by round. The search asks a
    Forecast, which costs a millisecond a round; ``measure`` then writes
    the session at the level found and measures it as encoded (the encoder
    takes a few tenths of a LU off and adds to the peaks), and the search
    is run again for what the encoder changed, until the encoded session
    lands: usually at once. All without a bed: it is set afterwards, its
    level under the speech as it is then heard (see ``bed_level``).

    Without ``measure`` (a session under a bed, written once with its bed
    and measured then) the level is the forecast's, with what the encoder
    usually takes off (ENCODER_LOSS_LU): encoding the speech alone first
    would cost as much again as the session itself.
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
    sources = frozenset(_digest(layer.source) for layer in pending)
    # (distance from the target, level, loudness as encoded, what the encoder added) of the best round within the
    # peak; a level found before, when it still fits, takes no search
    if measure is None:
        shift, mixed, _ = _searched(functools.partial(_at_ceiling, loudness, at, ceiling=ceiling),
                                    target_lufs - encoding, shift, slope)
        level = at(shift, ceiling)
        speech = loudness(level, sounds=False) + encoding if has_speech else SILENCE_LUFS
        return Leveled(level, Measured(speech, mixed + encoding if mixed > SILENCE_LUFS else SILENCE_LUFS), None)
    best = _reused(known, sources, loudness, level.sound_gain, target_lufs, measure)
    if best is None:
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
    found = None
    if best is not None:
        _, level, whole, encoding = best
        found = Known(level, encoding, sources)
    # The speech alone, as encoded: the forecast of its own loudness, with what the encoder added to the whole.
    speech = loudness(level, sounds=False) + encoding if has_speech else SILENCE_LUFS
    return Leveled(level, Measured(speech, whole), found)


def _reused(known: Sequence[Known], sources: frozenset[str], loudness: Callable[[Level], float], sound_gain: float,
            target_lufs: float, measure: Measure) -> tuple[float, Level, float, float] | None:
    """A level found before that still brings this session to the target as encoded, as the search's best
    round; None when none does.

    Only a level found for a session that had most of these sounds is
    tried (the same routine with a line or two said anew, as a changed
    ``{hold}`` makes it), the one that served most of them first: their
    pieces are stored at it. The forecast of this session at that level,
    with what the encoder added there before, says whether it can land
    within ENCODED_TOLERANCE; the first that can is written once and
    measured, and taken if it lands with its peaks under the limit;
    otherwise the search is cheaper than trying more. Only levels with the
    sounds where a search puts them (``sound_gain``) are tried: a session
    of few words may have raised its sounds, a balance that is its own.
    """
    for old in sorted(known, key=lambda old: -len(old.sources & sources)):
        if 2 * len(old.sources & sources) <= len(sources):
            break  # the rest share fewer still
        if not math.isclose(old.level.sound_gain, sound_gain):
            continue
        mixed = loudness(old.level)
        if mixed <= SILENCE_LUFS or abs(target_lufs - (mixed + old.encoding)) >= ENCODED_TOLERANCE:
            continue
        measured, peak = measure(old.level, None)
        if abs(target_lufs - measured) < ENCODED_TOLERANCE and peak <= TRUE_PEAK_LIMIT_DBTP:
            return abs(target_lufs - measured), old.level, measured, measured - mixed
        return None
    return None


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


def bed_level(measure: Measure, bed: Bed, level: Level, speech_lufs: float) -> tuple[Level, float]:
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
    """What the level depends on: the sounds and their spacing as the meter hears it, target and bitrate;
    with ``bed``, the level with the bed under the speech.

    Holds only add silence that the meter cuts short, so changing a hold
    usually leaves this key, and the level, as it was. Under a bed nothing
    is silent: the loudness of the whole depends on every sample, and so
    does its key; the speech's level there comes from the forecast, which
    costs milliseconds, so a new hold under a bed searches nothing either.
    """
    parts: list[object] = [LEVEL_FORMAT, target_lufs, bitrate, CEILING_DBFS, TRUE_PEAK_LIMIT_DBTP, SOUND_BELOW_SPEECH_LU]
    if bed is not None:
        background = bed.background
        stat = background.path.stat() if background.path else None
        parts.append([background.name, str(background.path), stat and (stat.st_size, stat.st_mtime_ns),
                      background.level, background.fade, background.depth, background.attack, background.release,
                      bed.duration])
        if background.files:
            stats = [file.path.stat() for file in background.playlist if file.path]
            parts.append([background.crossfade, [str(file.path) for file in background.playlist],
                          [(stat.st_size, stat.st_mtime_ns) for stat in stats]])
    position = 0
    for layer in pending:
        gap = layer.start - position
        # A pause grows by up to an MP3 frame when a hold before it changes (see the planner): far too
        # little to change the loudness, so gaps count to the 100 ms.
        parts.append((layer.source, layer.spoken, gap if bed is not None else condensed(gap) // GATE_STEP))
        position = max(position, layer.start)
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def recent_levels(cache: Cache, target_lufs: float, bitrate: int) -> list[Known]:
    """The levels found last for ``target_lufs`` and ``bitrate``, the latest first (see ``remember``)."""
    stored = cache.json("levels", _recent_key(target_lufs, bitrate)) or {}
    found = []
    for entry in stored.get("recent", []):
        try:
            found.append(Known(Level(**entry["level"]), float(entry["encoding"]), frozenset(entry["sources"])))
        except (TypeError, KeyError, ValueError):  # in another shape: passed over
            continue
    return found


def remember(cache: Cache, target_lufs: float, bitrate: int, known: Known) -> None:
    """Keep ``known`` first among the RECENT_LEVELS levels found for ``target_lufs`` and ``bitrate``.

    They are kept together whatever the routine, its holds and its bed:
    a level is tried only on a session that has most of the sounds it
    was found for, and taken only as that session measures at it (see
    ``_reused``); a bed is levelled under the speech afterwards.
    """
    kept = [old for old in recent_levels(cache, target_lufs, bitrate) if old.level != known.level]
    entries = [{"level": dataclasses.asdict(each.level), "encoding": each.encoding, "sources": sorted(each.sources)}
               for each in [known, *kept][:RECENT_LEVELS]]
    cache.put_json("levels", _recent_key(target_lufs, bitrate), {"recent": entries})


def _recent_key(target_lufs: float, bitrate: int) -> str:
    parts = ["recent", LEVEL_FORMAT, target_lufs, bitrate, CEILING_DBFS, TRUE_PEAK_LIMIT_DBTP, SOUND_BELOW_SPEECH_LU]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def _digest(source: str) -> str:
    """A short name for a sound's source, as a known level keeps it."""
    return hashlib.sha256(source.encode()).hexdigest()[:16]

"""The level of a session: the gains that bring its speech to the target loudness, as encoded, with its
peaks under the limit, and a bed at its level under the speech."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Callable
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

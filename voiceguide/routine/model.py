"""A routine as plain data: what a routine file says, checked, with every value's place in the file.

The loader (loader.py) makes these; every later stage reads them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

from voiceguide.durations import format_clock
from voiceguide.errors import Location
from voiceguide.routine.phrases import ENGLISH, ENGLISH_PHRASES, UNIT_KEYS, phrases, say_duration, say_number
from voiceguide.routine.phrases import title as section_title
from voiceguide.routine.phrases import units as unit_words

BUILTIN_CHIMES = ("bell", "soft", "gong", "wood", "none")
SOUND_SUFFIXES = (".wav", ".mp3", ".ogg", ".oga", ".flac", ".m4a", ".aac", ".opus")
DEFAULT_CHIME = "bell"
DEFAULT_PAUSE_MS = 800
MAX_SESSION_MS = 12 * 3_600_000
# A limit on events as well as on time: a routine of many short spoken steps
# repeated a million times is short of 12 hours of holds but not of work.
# Every line, hold, chime, rest and cue counts: a bell every second of a 12-hour hold is 43,200 of them.
MAX_EVENTS = 50_000
RATE_RANGE = (40, 600)
# Far more than any body has (left and right; four limbs), few enough that a typo of a list is caught at once.
MAX_SIDES = 50
# Groups inside groups, this many deep at most: a circuit of circuits is two.
MAX_NESTING = 10
# A spoken line's length in characters, once filled in: a long paragraph is a few hundred; engines fail on
# (pyttsx3 crashes at) many thousands.
MAX_LINE_CHARS = 1000

# Cue settings: at the top of a routine they are defaults, on a group or step they refine them.
CUE_KEYS = ("countdown", "halfway", "remaining", "cues", "bells", "switch", "next", "last-round")
TOP_KEYS = ("title", "description", "voice", "chime", "pause", "intro", "outro", "vars", "steps",
            "lead-in", "closing", "phrases", "language", "cover", "background") + CUE_KEYS
STEP_KEYS = ("title", "id", "say", "hold", "repeat", "between", "rest-between", "sides", "rest", "chime",
             "voice") + CUE_KEYS
GROUP_KEYS = ("title", "id", "say", "steps", "rounds", "rest", "sides", "chime", "voice", "strict",
              "chapters") + CUE_KEYS
CLOSING_KEYS = ("sound", "strikes")
MAX_STRIKES = 10
VOICE_KEYS = ("engine", "voice", "rate", "volume")
BUILTIN_BEDS = ("rain", "drone")
BACKGROUND_KEYS = ("sound", "level", "fade", "crossfade", "duck")
DUCK_KEYS = ("depth", "attack", "release")
# A bed this far under the speech is felt more than heard, and never competes with the words.
DEFAULT_BED_LEVEL_DB = -20.0
BED_LEVEL_RANGE = (-40.0, -6.0)
DEFAULT_BED_FADE_MS = 5000
# Where a sound file repeats, or one file of a playlist gives way to the next (at most a quarter of either).
DEFAULT_CROSSFADE_MS = 3000
MAX_CROSSFADE_MS = 10_000
DEFAULT_DUCK_DB = 10.0
MAX_DUCK_DB = 40.0
DEFAULT_ATTACK_MS = 300
DEFAULT_RELEASE_MS = 1000
RESERVED_IDS = ("intro", "outro", "lead-in")
# The words of cues when a routine gives no language: English.
DEFAULT_PHRASES = ENGLISH_PHRASES
# The names each phrase may use besides the routine's vars.
PHRASE_SCOPE = {"halfway": (), "remaining": ("time",), "switch": ("side",), "next": ("title",), "lead-in": (),
                "last-round": ("round", "rounds"), "chapter": ("title", "round", "rounds")}
UNIT_PHRASES = UNIT_KEYS
PHRASE_KEYS = tuple(DEFAULT_PHRASES) + UNIT_PHRASES + ("numbers",)
DEFAULT_COUNTDOWN = 3
DEFAULT_SWITCH_GAP_MS = 3000
DEFAULT_LEAD_IN_MS = 5000
# Names the program fills in; a routine's own vars may not take them.
TEMPLATE_NAMES = ("side", "round", "rounds", "repeat", "repeats", "hold", "interval", "intervals")
# What every work interval (a hold) knows of its place in the circuit: the nth hold of how many.
INTERVAL_NAMES = ("interval", "intervals")



@dataclass(frozen=True)
class Text:
    """A line to speak, possibly with {templates}; filled in when planning."""

    template: str
    where: Location


@dataclass(frozen=True)
class Voice:
    """Speech settings; a field left as None is inherited from the enclosing level."""

    engine: str | None = None
    voice: str | None = None
    rate: int | None = None
    volume: float | None = None
    engine_at: Location | None = None
    voice_at: Location | None = None
    # With no voice named: the engine's voice for this language (a routine's or a profile's `language`).
    language: str | None = None
    language_at: Location | None = None

    def over(self, base: Voice) -> Voice:
        """These settings, with the fields left unset taken from ``base``."""
        return Voice(
            engine=self.engine if self.engine is not None else base.engine,
            voice=self.voice if self.voice is not None else base.voice,
            rate=self.rate if self.rate is not None else base.rate,
            volume=self.volume if self.volume is not None else base.volume,
            engine_at=self.engine_at if self.engine is not None else base.engine_at,
            voice_at=self.voice_at if self.voice is not None else base.voice_at,
            language=self.language if self.language is not None else base.language,
            language_at=self.language_at if self.language is not None else base.language_at,
        )


@dataclass(frozen=True)
class Sound:
    """A sound the routine names (an end-of-hold signal, a file of a playlist): a built-in name, or a sound file."""

    name: str
    where: Location
    path: Path | None = None


@dataclass(frozen=True)
class Background:
    """A sound under the whole session, dipped under speech and cues: a built-in bed, a looped sound file, or
    a playlist of sound files played one after another, each whole, and again from the first.

    ``level`` is the bed's loudness relative to the speech in dB; while
    anything else sounds it is ``depth`` dB lower, reached over ``attack`` ms
    before the sound starts and left over ``release`` ms after it ends. A
    playlist's ``name`` is its files' names, as written, joined by commas.
    """

    name: str
    where: Location
    path: Path | None = None
    level: float = DEFAULT_BED_LEVEL_DB
    fade: int = DEFAULT_BED_FADE_MS
    depth: float = DEFAULT_DUCK_DB
    attack: int = DEFAULT_ATTACK_MS
    release: int = DEFAULT_RELEASE_MS
    playlist: tuple[Sound, ...] = ()
    crossfade: int = DEFAULT_CROSSFADE_MS

    @property
    def files(self) -> tuple[Sound, ...]:
        """Every sound file the bed plays: a playlist's, or the one file; none for a built-in bed."""
        if self.playlist or self.path is None:
            return self.playlist
        return (Sound(self.name, self.where, self.path),)


@dataclass(frozen=True)
class Signal:
    """What a cue gives: words, a sound, or the routine's phrase for it. Neither: off."""

    text: Text | None = None
    sound: Sound | None = None
    phrase: bool = False

    @property
    def on(self) -> bool:
        return self.phrase or self.text is not None or self.sound is not None


OFF = Signal()


@dataclass(frozen=True)
class TimedCue:
    """A line or sound at a point of a hold: ``at`` ms from its start, or from its end when negative."""

    at: int
    signal: Signal
    where: Location


@dataclass(frozen=True)
class CueSettings:
    """How holds are coached. A field left as None is inherited from the enclosing level."""

    countdown: int | None = None
    countdown_sound: Sound | None = None
    halfway: Signal | None = None
    remaining: tuple[int, ...] | None = None
    remaining_every: int | None = None
    bell_every: int | None = None
    bell: Sound | None = None
    strikes: int | None = None
    cues: tuple[TimedCue, ...] | None = None
    switch: Signal | None = None
    switch_gap: int | None = None
    next: Signal | None = None
    last_round: Signal | None = None

    def over(self, base: CueSettings) -> CueSettings:
        """These settings, with the fields left unset taken from ``base``."""
        return CueSettings(**{
            f.name: getattr(self, f.name) if getattr(self, f.name) is not None else getattr(base, f.name)
            for f in fields(self)
        })


@dataclass(frozen=True)
class Phrases:
    """The words voiceguide says on its own: its language's (`language:`), each replaceable (`phrases:`).

    ``own`` are the keys the routine's `phrases:` sets, which stay when a
    profile's `language` gives the others in another language.
    """

    texts: dict[str, Text]
    units: dict[str, str]
    digits: bool = False
    language: str = ENGLISH
    own: frozenset[str] = frozenset()

    def number(self, n: int) -> str:
        """A count, as the voice says it alone: "three", "drei"."""
        return str(n) if self.digits else say_number(n, self.language)

    def duration(self, ms: int) -> str:
        return say_duration(ms, self.language, self.units, self.digits)

    def title(self, section: str) -> str:
        """The chapter title of the intro, the lead-in or the outro."""
        return section_title(self.language, section)

    def in_language(self, code: str, where: Location) -> Phrases:
        """These phrases with every one the routine does not set itself in the language ``code``."""
        texts = {key: self.texts[key] if key in self.own else Text(text, where) for key, text in phrases(code).items()}
        units = {key: self.units[key] if key in self.own else word for key, word in unit_words(code).items()}
        return Phrases(texts, units, self.digits, code, self.own)


@dataclass(frozen=True)
class Step:
    """A step of a routine; with ``steps`` of its own it is a group."""

    id: str
    title: str
    where: Location
    say: tuple[Text, ...] = ()
    hold: int | None = None
    hold_at: Location | None = None
    repeat: int = 1
    between: tuple[Text, ...] = ()
    rest_between: int = 0  # silence between repetitions, after each chime; `between` is spoken at its end
    sides: tuple[str, ...] = ()
    rest: int = 0
    chime: Sound | None = None
    voice: Voice | None = None
    steps: tuple[Step, ...] = ()
    rounds: int = 1
    cue_settings: CueSettings = field(default_factory=CueSettings)
    strict: bool = False  # every hold one cycle (its hold and the rest after it) after the one before
    chapters: str | None = None  # "rounds": each round its own chapter

    @property
    def is_group(self) -> bool:
        return bool(self.steps)


@dataclass(frozen=True)
class Routine:
    path: Path
    title: str
    steps: tuple[Step, ...]
    description: str = ""
    voice: Voice = field(default_factory=Voice)
    chime: Sound | None = None
    pause: int = DEFAULT_PAUSE_MS
    intro: tuple[Text, ...] = ()
    outro: tuple[Text, ...] = ()
    vars: dict[str, str] = field(default_factory=dict)
    cue_settings: CueSettings = field(default_factory=CueSettings)
    lead_in: Signal = OFF
    lead_in_ms: int = 0
    closing: Sound | None = None
    closing_strikes: int = 1
    phrases: Phrases = field(default_factory=lambda: Phrases({}, {}))
    cover: Path | None = None
    cover_at: Location | None = None
    background: Background | None = None

    def all_steps(self) -> Iterator[Step]:
        """Every step and group, depth first, in file order."""

        def walk(steps: tuple[Step, ...]) -> Iterator[Step]:
            for step in steps:
                yield step
                yield from walk(step.steps)

        return walk(self.steps)

    def hold_ids(self) -> list[str]:
        """Ids of the steps that have a hold, the ones --hold can set."""
        return [step.id for step in self.all_steps() if step.hold is not None]



def minimum_length(step: Step, inherited: CueSettings | None = None) -> int:
    """Least time a step takes in ms (its holds, rests and side switches, without speech)."""
    return lower_bound(step, inherited)[0]


def lower_bound(step: Step, inherited: CueSettings | None = None) -> tuple[int, int]:
    """Least time of a step and an estimate of its events (cues included), computed without expanding it.

    ``inherited`` are the cue settings of the routine and groups around the
    step. The count is meant to grow as expanding would, so that a session
    too big to plan is refused before anything is expanded.
    """
    settings = step.cue_settings.over(inherited or CueSettings())
    sides = max(1, len(step.sides))
    # Between two sides: a rest as long as the switch's gap, opening with its line.
    gap = DEFAULT_SWITCH_GAP_MS if settings.switch_gap is None else settings.switch_gap
    switch_ms, switches = gap * (sides - 1), 2 * (sides - 1)
    if step.is_group:
        parts = [lower_bound(child, settings) for child in step.steps]
        round_ms = sum(ms for ms, _ in parts)
        round_events = sum(events for _, events in parts) + len(step.say) + 1
        ms = (round_ms * step.rounds + step.rest * (step.rounds - 1)) * sides + switch_ms
        return ms, round_events * step.rounds * sides + switches
    per_repeat_ms = step.hold or 0
    cues = cue_count(step.hold, settings) if step.hold else 0
    per_repeat_events = 2 + len(step.say) + len(step.between) + 2 + cues
    # A rest between repetitions is one more event, and its time, wherever the repetitions run.
    rests_between = (step.repeat - 1) * sides if step.rest_between else 0
    ms = per_repeat_ms * step.repeat * sides + step.rest_between * rests_between + step.rest + switch_ms
    return ms, per_repeat_events * step.repeat * sides + rests_between + switches + 1


def cue_count(hold: int, settings: CueSettings) -> int:
    """How many cues one hold of ``hold`` ms gets from ``settings``, or a little more (never fewer)."""
    count = len(settings.cues or ()) + len(settings.remaining or ()) + min(settings.countdown or 0, hold // 1000)
    count += 1 if settings.halfway is not None and settings.halfway.on else 0
    if settings.bell_every and settings.bell_every < hold:
        count += (hold - 1) // settings.bell_every  # one at every multiple inside the hold
    if settings.remaining_every:
        count += hold // settings.remaining_every
    return count


def too_big(steps: tuple[Step, ...], settings: CueSettings) -> tuple[Step, str] | None:
    """The first step by which the session is sure to pass its limits (12 hours, MAX_EVENTS), and why;
    None if it may not. ``settings`` are the routine's cue settings."""
    total_ms = 0
    total_events = 0
    for step in steps:
        ms, events = lower_bound(step, settings)
        total_ms += ms
        total_events += events
        if total_ms > MAX_SESSION_MS:
            # A number of hours with thousands of digits says nothing more than "far too long".
            reach = format_clock(total_ms) if total_ms < 1000 * MAX_SESSION_MS else "thousands of hours"
            return step, f"the session would last more than 12 hours (holds and rests reach {reach} by step '{step.id}')"
        if total_events > MAX_EVENTS:
            return step, (f"the session would have more than {MAX_EVENTS} events (lines, holds, chimes, rests and "
                          f"cues) by step '{step.id}'; use fewer repeats, rounds, sides or cues")
    return None


def speakable(text: str) -> bool:
    """Whether a line has something a voice can say: a letter or a digit, in any script."""
    return any(unicodedata.category(char)[0] in "LN" for char in text)


def intervals(step: Step) -> int:
    """How many work intervals (holds) a step has in all, over its sides, repetitions and rounds."""
    sides = max(1, len(step.sides))
    if step.is_group:
        return sides * step.rounds * sum(intervals(child) for child in step.steps)
    return sides * step.repeat if step.hold is not None else 0



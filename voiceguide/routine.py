"""Routine files: load a YAML routine, check all of it, and return plain data.

Every problem in a file is collected and reported at once as FILE:LINE:COL,
so a person fixes their routine in one pass instead of one error per run.
"""

from __future__ import annotations

import difflib
import os
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from voiceguide.durations import ENGLISH_UNITS, DurationError, format_clock, parse_duration
from voiceguide.engines import engine_names
from voiceguide.errors import Location, Problem, RoutineError
from voiceguide.yamlfile import YList, YMap, read_yaml

BUILTIN_CHIMES = ("bell", "soft", "gong", "wood", "none")
SOUND_SUFFIXES = (".wav", ".mp3", ".ogg", ".oga", ".flac", ".m4a", ".aac", ".opus")
DEFAULT_CHIME = "bell"
DEFAULT_PAUSE_MS = 800
MAX_SESSION_MS = 12 * 3_600_000
# A limit on events as well as on time: a routine of many short spoken steps
# repeated a million times is short of 12 hours of holds but not of work.
MAX_EVENTS = 50_000
RATE_RANGE = (40, 600)

# Cue settings: at the top of a routine they are defaults, on a group or step they refine them.
COACHING_KEYS = ("countdown", "halfway", "remaining", "cues", "bells", "switch", "next")
TOP_KEYS = ("title", "description", "voice", "chime", "pause", "intro", "outro", "vars", "steps",
            "lead-in", "closing", "phrases", "cover", "background") + COACHING_KEYS
STEP_KEYS = ("title", "id", "say", "hold", "repeat", "between", "sides", "rest", "chime", "voice") + COACHING_KEYS
GROUP_KEYS = ("title", "id", "say", "steps", "rounds", "rest", "sides", "chime", "voice") + COACHING_KEYS
VOICE_KEYS = ("engine", "voice", "rate", "volume")
BUILTIN_BEDS = ("rain", "drone")
BACKGROUND_KEYS = ("sound", "level", "fade", "duck")
DUCK_KEYS = ("depth", "attack", "release")
# A bed this far under the speech is felt more than heard, and never competes with the words.
DEFAULT_BED_LEVEL_DB = -20.0
BED_LEVEL_RANGE = (-40.0, -6.0)
DEFAULT_BED_FADE_MS = 5000
DEFAULT_DUCK_DB = 10.0
MAX_DUCK_DB = 40.0
DEFAULT_ATTACK_MS = 300
DEFAULT_RELEASE_MS = 1000
RESERVED_IDS = ("intro", "outro", "lead-in")
DEFAULT_PHRASES = {
    "halfway": "Halfway.",
    "remaining": "{time} left.",
    "switch": "Switch to the {side} side.",
    "next": "Next up: {title}.",
    "lead-in": "Get ready.",
}
# The names each phrase may use besides the routine's vars.
PHRASE_SCOPE = {"halfway": (), "remaining": ("time",), "switch": ("side",), "next": ("title",), "lead-in": ()}
UNIT_PHRASES = ("second", "seconds", "minute", "minutes", "hour", "hours")
PHRASE_KEYS = tuple(DEFAULT_PHRASES) + UNIT_PHRASES + ("numbers",)
DEFAULT_COUNTDOWN = 3
DEFAULT_SWITCH_GAP_MS = 3000
DEFAULT_LEAD_IN_MS = 5000
# Names the program fills in; a routine's own vars may not take them.
TEMPLATE_NAMES = ("side", "round", "rounds", "repeat", "repeats", "hold")

_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


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

    def over(self, base: Voice) -> Voice:
        """These settings, with the fields left unset taken from ``base``."""
        return Voice(
            engine=self.engine if self.engine is not None else base.engine,
            voice=self.voice if self.voice is not None else base.voice,
            rate=self.rate if self.rate is not None else base.rate,
            volume=self.volume if self.volume is not None else base.volume,
            engine_at=self.engine_at if self.engine is not None else base.engine_at,
            voice_at=self.voice_at if self.voice is not None else base.voice_at,
        )


@dataclass(frozen=True)
class Chime:
    """An end-of-hold signal: a built-in name, or a sound file."""

    name: str
    where: Location
    path: Path | None = None


@dataclass(frozen=True)
class Background:
    """A sound under the whole session: a built-in bed or a looped sound file, dipped under speech and cues.

    ``level`` is the bed's loudness relative to the speech in dB; while
    anything else sounds it is ``depth`` dB lower, reached over ``attack`` ms
    before the sound starts and left over ``release`` ms after it ends.
    """

    name: str
    where: Location
    path: Path | None = None
    level: float = DEFAULT_BED_LEVEL_DB
    fade: int = DEFAULT_BED_FADE_MS
    depth: float = DEFAULT_DUCK_DB
    attack: int = DEFAULT_ATTACK_MS
    release: int = DEFAULT_RELEASE_MS


@dataclass(frozen=True)
class Signal:
    """What a cue gives: words, a sound, or the routine's phrase for it. Neither: off."""

    text: Text | None = None
    sound: Chime | None = None
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
class Coaching:
    """How holds are coached. A field left as None is inherited from the enclosing level."""

    countdown: int | None = None
    countdown_sound: Chime | None = None
    halfway: Signal | None = None
    remaining: tuple[int, ...] | None = None
    remaining_every: int | None = None
    bell_every: int | None = None
    bell: Chime | None = None
    strikes: int | None = None
    cues: tuple[TimedCue, ...] | None = None
    switch: Signal | None = None
    switch_gap: int | None = None
    next: Signal | None = None

    def over(self, base: Coaching) -> Coaching:
        """These settings, with the fields left unset taken from ``base``."""
        return Coaching(**{
            f.name: getattr(self, f.name) if getattr(self, f.name) is not None else getattr(base, f.name)
            for f in fields(self)
        })


@dataclass(frozen=True)
class Phrases:
    """The words of cues, replaceable so a routine in another language speaks only it."""

    texts: dict[str, Text]
    units: dict[str, str]
    digits: bool = False


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
    sides: tuple[str, ...] = ()
    rest: int = 0
    chime: Chime | None = None
    voice: Voice | None = None
    steps: tuple[Step, ...] = ()
    rounds: int = 1
    coaching: Coaching = field(default_factory=Coaching)

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
    chime: Chime | None = None
    pause: int = DEFAULT_PAUSE_MS
    intro: tuple[Text, ...] = ()
    outro: tuple[Text, ...] = ()
    vars: dict[str, str] = field(default_factory=dict)
    coaching: Coaching = field(default_factory=Coaching)
    lead_in: Signal = OFF
    lead_in_ms: int = 0
    closing: Chime | None = None
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


def load_routine(path: str | os.PathLike[str]) -> Routine:
    """Read and check the routine file at ``path``; raise RoutineError listing every problem."""
    checker = _RoutineChecker(Path(path))
    data, where = read_yaml(path, "routine", checker.problems)
    routine = checker.routine(data, where)
    if checker.problems:
        raise RoutineError(sorted(checker.problems, key=_order))
    assert routine is not None
    return routine


def _order(problem: Problem) -> tuple[int, int]:
    return (problem.where.line, problem.where.column)


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


class Checker:
    """Collects problems while reading a YAML tree; shared by routines and profiles."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def problem(self, where: Location, message: str) -> None:
        self.problems.append(Problem(where, message))

    def mapping(self, value: Any, where: Location, what: str, keys: tuple[str, ...] | None) -> YMap | None:
        """``value`` as a mapping, flagging keys outside ``keys`` (None: any key goes)."""
        if not isinstance(value, YMap):
            if keys is None:
                expected = "name: value pairs"
            else:
                expected = ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "")
            self.problem(where, f"{what} must be a mapping of {expected}; got {_kind(value)}")
            return None
        for key in value:
            if keys is not None and key not in keys:
                hint = did_you_mean(key, keys) or f" (valid keys: {', '.join(keys)})"
                self.problem(value.key_at[key], f"unknown key '{key}' in {what}{hint}")
        return value

    def text(self, data: YMap, key: str, what: str, required: bool = False) -> str | None:
        if key not in data:
            if required:
                self.problem(data.where, f"{what} needs a '{key}'")
            return None
        value = data[key]
        if isinstance(value, (YMap, YList)) or value is None:
            self.problem(data.at(key), f"'{key}' must be text, got {_kind(value)}")
            return None
        # Plain scalars like `yes` or `2024` are text here, as the person wrote them.
        text = data.raw.get(key, str(value))
        if required and not text.strip():
            self.problem(data.at(key), f"'{key}' must not be empty")
            return None
        return text

    def duration(self, data: YMap, key: str, allow_zero: bool) -> int | None:
        if key not in data:
            return None
        return self.duration_value(data[key], data.raw.get(key), data.at(key), key, allow_zero)

    def duration_value(self, value: Any, raw: str | None, where: Location, key: str, allow_zero: bool) -> int | None:
        # YAML 1.1 reads 1:30 as the number 90 and `yes` as true; use what the person wrote.
        misread = isinstance(value, bool) or (isinstance(value, int) and raw is not None and ":" in raw)
        source = raw if misread and raw is not None else value
        try:
            ms = parse_duration(source)
        except DurationError as error:
            self.problem(where, f"'{key}': {error}")
            return None
        if ms == 0 and not allow_zero:
            self.problem(where, f"'{key}' must be longer than zero")
            return None
        return ms

    def count(self, data: YMap, key: str) -> int | None:
        if key not in data:
            return None
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(data.at(key), f"'{key}' must be a whole number, got {_kind(value)}")
            return None
        if value < 1:
            self.problem(data.at(key), f"'{key}' must be at least 1, got {value}")
            return None
        return value

    def voice(self, data: YMap, key: str) -> Voice | None:
        if key not in data:
            return None
        value = data[key]
        where = data.at(key)
        if isinstance(value, str) or (not isinstance(value, (YMap, YList)) and value is not None and key in data.raw):
            # `voice: en-us` is short for `voice: {voice: en-us}`.
            return Voice(voice=data.raw.get(key, str(value)), voice_at=where)
        settings = self.mapping(value, where, f"'{key}'", VOICE_KEYS)
        if settings is None:
            return None
        rate = None
        if "rate" in settings:
            rate_value = settings["rate"]
            low, high = RATE_RANGE
            if isinstance(rate_value, bool) or not isinstance(rate_value, (int, float)):
                self.problem(settings.at("rate"), f"'rate' must be words per minute, a number from {low} to {high}, got {_kind(rate_value)}")
            elif not low <= rate_value <= high:
                self.problem(settings.at("rate"), f"'rate' must be from {low} to {high} words per minute, got {rate_value:g}")
            else:
                rate = round(rate_value)
        volume = None
        if "volume" in settings:
            volume_value = settings["volume"]
            if isinstance(volume_value, bool) or not isinstance(volume_value, (int, float)) or not 0 < volume_value <= 1:
                self.problem(settings.at("volume"), f"'volume' must be a number above 0 and at most 1, got {_kind(volume_value)}")
            else:
                volume = float(volume_value)
        engine = self.text(settings, "engine", "'voice'")
        if engine is not None:
            if engine not in engine_names():
                names = engine_names()
                self.problem(settings.at("engine"), f"unknown engine '{engine}'{did_you_mean(engine, names)} (valid engines: {', '.join(names)})")
        return Voice(
            engine=engine,
            voice=self.text(settings, "voice", "'voice'"),
            rate=rate,
            volume=volume,
            engine_at=settings.at("engine") if "engine" in settings else None,
            voice_at=settings.at("voice") if "voice" in settings else None,
        )


class _RoutineChecker(Checker):
    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.ids: dict[str, Location] = {}
        self.vars: dict[str, str] = {}

    def routine(self, value: Any, where: Location) -> Routine | None:
        data = self.mapping(value, where, "a routine", TOP_KEYS)
        if data is None:
            return None
        title = self.text(data, "title", "a routine", required=True)
        description = self.text(data, "description", "a routine") or ""
        self.vars = self._vars(data)
        voice = self.voice(data, "voice") or Voice()
        chime = self._chime(data)
        pause = self.duration(data, "pause", allow_zero=True)
        intro = self._texts(data, "intro", scope=())
        outro = self._texts(data, "outro", scope=())
        phrases = self._phrases(data)
        # Defaults apply to steps of any shape, so their texts may use only what every hold has.
        coaching = self._coaching(data, ("hold", "repeat", "repeats"))
        lead_in, lead_in_ms = self._lead_in(data)
        closing = self._chime(data, "closing")
        cover = self._file(data, "cover", "cover image")
        background = self._background(data) if "background" in data else None
        for reserved in RESERVED_IDS:
            self.ids[reserved] = data.where
        steps: tuple[Step, ...] = ()
        if "steps" not in data:
            self.problem(data.where, "a routine needs 'steps', a list of at least one step")
        else:
            steps = self._steps(data["steps"], data.at("steps"), scope=())
            if steps:
                self._check_size(steps)
        return Routine(
            path=self.path,
            title=title or "",
            description=description,
            voice=voice,
            chime=chime,
            pause=DEFAULT_PAUSE_MS if pause is None else pause,
            intro=intro,
            outro=outro,
            vars=self.vars,
            steps=steps,
            coaching=coaching,
            lead_in=lead_in,
            lead_in_ms=lead_in_ms,
            closing=closing,
            phrases=phrases,
            cover=cover,
            cover_at=data.at("cover") if cover else None,
            background=background,
        )

    def _vars(self, data: YMap) -> dict[str, str]:
        if "vars" not in data:
            return {}
        table = self.mapping(data["vars"], data.at("vars"), "'vars'", None)
        result: dict[str, str] = {}
        if table is None:
            return result
        for name, value in table.items():
            if not name.isidentifier():
                self.problem(table.key_at[name], f"variable name '{name}' must be a single word (letters, digits, _)")
            elif name in TEMPLATE_NAMES:
                self.problem(table.key_at[name], f"variable name '{name}' is filled in by voiceguide; choose another name")
            elif isinstance(value, (YMap, YList)) or value is None:
                self.problem(table.at(name), f"variable '{name}' must be text or a number, got {_kind(value)}")
            else:
                result[name] = table.raw.get(name, str(value))
        return result

    def _phrases(self, data: YMap) -> Phrases:
        where = Location(str(self.path))
        texts = {key: Text(value, where) for key, value in DEFAULT_PHRASES.items()}
        units = dict(ENGLISH_UNITS)
        digits = False
        table = self.mapping(data["phrases"], data.at("phrases"), "'phrases'", PHRASE_KEYS) if "phrases" in data else None
        for key in table or {}:
            if key not in PHRASE_KEYS:
                continue
            text = self.text(table, key, "'phrases'", required=True)
            if text is None:
                continue
            if key == "numbers":
                if text not in ("words", "digits"):
                    self.problem(table.at(key), f"'numbers' must be words (English number words) or digits (read by the voice in its language), got '{text}'")
                digits = text == "digits"
            elif key in UNIT_PHRASES:
                units[key] = text
            else:
                self._check_template(text, table.at(key), key, PHRASE_SCOPE[key])
                texts[key] = Text(text, table.at(key))
        return Phrases(texts, units, digits)

    def _lead_in(self, data: YMap) -> tuple[Signal, int]:
        """`lead-in: 5s`, or `lead-in: {say: ..., time: 5s}`: a line, then time to get into place."""
        if "lead-in" not in data or data["lead-in"] is False:
            return OFF, 0
        value = data["lead-in"]
        if value is True:
            return Signal(phrase=True), DEFAULT_LEAD_IN_MS
        if isinstance(value, YMap):
            settings = self.mapping(value, data.at("lead-in"), "'lead-in'", ("say", "time"))
            assert settings is not None
            texts = self._texts(settings, "say", ())
            ms = self.duration(settings, "time", allow_zero=True)
            signal = Signal(text=texts[0]) if len(texts) == 1 else Signal(phrase=True)
            if len(texts) > 1:
                self.problem(settings.at("say"), "'say' of 'lead-in' is one line")
            return signal, DEFAULT_LEAD_IN_MS if ms is None else ms
        ms = self.duration(data, "lead-in", allow_zero=True)
        return Signal(phrase=True), ms or 0

    def _coaching(self, data: YMap, scope: tuple[str, ...]) -> Coaching:
        settings: dict[str, Any] = {}
        if "countdown" in data:
            settings.update(self._countdown(data))
        for key in ("halfway", "switch", "next"):
            if key in data:
                # `switch` may say {side} and `next` {title} wherever they are set.
                settings.update(self._signal_setting(data, key, scope + PHRASE_SCOPE[key]))
        if "remaining" in data:
            settings.update(self._remaining(data))
        if "bells" in data:
            settings.update(self._bells(data))
        if "cues" in data:
            settings["cues"] = self._timed_cues(data, scope)
        return Coaching(**settings)

    def _countdown(self, data: YMap) -> dict[str, Any]:
        value = data["countdown"]
        if value is False:
            return {"countdown": 0}
        if value is True:
            return {"countdown": DEFAULT_COUNTDOWN}
        if isinstance(value, YMap):
            settings = self.mapping(value, data.at("countdown"), "'countdown'", ("count", "sound"))
            assert settings is not None
            return {"countdown": self._small_count(settings, "count", DEFAULT_COUNTDOWN),
                    "countdown_sound": self._chime(settings, "sound")}
        return {"countdown": self._small_count(data, "countdown", 0)}

    def _small_count(self, data: YMap, key: str, default: int) -> int:
        if key not in data:
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
            self.problem(data.at(key), f"'{key}' must be a whole number from 0 to 10, got {_kind(value)}")
            return default
        return value

    def _signal_setting(self, data: YMap, key: str, scope: tuple[str, ...]) -> dict[str, Any]:
        """`true` (the routine's phrase), `false`, a text, or `{say: ...}` / `{sound: ...}`."""
        value = data[key]
        if value is True:
            return {key: Signal(phrase=True)}
        if value is False:
            return {key: OFF}
        if isinstance(value, YMap):
            keys = ("say", "sound", "gap") if key == "switch" else ("say", "sound")
            settings = self.mapping(value, data.at(key), f"'{key}'", keys)
            assert settings is not None
            result: dict[str, Any] = {key: self._signal(settings, scope, f"'{key}'") or Signal(phrase=True)}
            if key == "switch" and "gap" in settings:
                result["switch_gap"] = self.duration(settings, "gap", allow_zero=True)
            return result
        texts = self._texts(data, key, scope)
        return {key: Signal(text=texts[0])} if texts else {}

    def _signal(self, data: YMap, scope: tuple[str, ...], what: str) -> Signal | None:
        if "say" in data and "sound" in data:
            self.problem(data.key_at["sound"], f"{what} has both 'say' and 'sound'; give one")
        if "sound" in data:
            chime = self._chime(data, "sound")
            return Signal(sound=chime) if chime else None
        if "say" in data:
            texts = self._texts(data, "say", scope)
            if len(texts) > 1:
                self.problem(data.at("say"), f"'say' of {what} is one line")
            return Signal(text=texts[0]) if texts else None
        return None

    def _remaining(self, data: YMap) -> dict[str, Any]:
        """`remaining: [1m, 30s]`, or `{at: [...], every: 1m}`; `false` turns it off."""
        value = data["remaining"]
        if value is False:
            return {"remaining": (), "remaining_every": 0}
        every = None
        if isinstance(value, YMap):
            settings = self.mapping(value, data.at("remaining"), "'remaining'", ("at", "every"))
            assert settings is not None
            every = self.duration(settings, "every", allow_zero=False)
            at = self._durations(settings, "at") if "at" in settings else ()
        else:
            at = self._durations(data, "remaining")
        return {"remaining": at, "remaining_every": every or 0}

    def _durations(self, data: YMap, key: str) -> tuple[int, ...]:
        value = data[key]
        if not isinstance(value, YList):
            ms = self.duration(data, key, allow_zero=False)
            return (ms,) if ms else ()
        found = (self.duration_value(item, raw, where, key, allow_zero=False)
                 for item, where, raw in zip(value, value.item_at, value.raw))
        return tuple(ms for ms in found if ms)

    def _bells(self, data: YMap) -> dict[str, Any]:
        """`bells: {every: 5m, sound: bell, strikes: 3}`: interval bells, and the end chime struck N times."""
        value = data["bells"]
        if value is False:
            return {"bell_every": 0, "strikes": 1}
        settings = self.mapping(value, data.at("bells"), "'bells'", ("every", "sound", "strikes"))
        if settings is None:
            return {}
        result: dict[str, Any] = {}
        if "every" in settings:
            result["bell_every"] = self.duration(settings, "every", allow_zero=False)
        if "sound" in settings:
            result["bell"] = self._chime(settings, "sound")
        if "strikes" in settings:
            strikes = self._small_count(settings, "strikes", 1)
            result["strikes"] = max(1, strikes)
        return result

    def _timed_cues(self, data: YMap, scope: tuple[str, ...]) -> tuple[TimedCue, ...]:
        value = data["cues"]
        if not isinstance(value, YList):
            self.problem(data.at("cues"), f"'cues' must be a list of {{at: 20s, say: ...}} or {{at: -10s, sound: ...}}, got {_kind(value)}")
            return ()
        cues = []
        for item, where in zip(value, value.item_at):
            settings = self.mapping(item, where, "a cue", ("at", "say", "sound"))
            if settings is None:
                continue
            if "at" not in settings:
                self.problem(where, "a cue needs 'at': a time from the start of the hold (20s) or from its end (-10s)")
                continue
            at = self._offset(settings)
            signal = self._signal(settings, scope, "a cue")
            if signal is None and "say" not in settings and "sound" not in settings:
                self.problem(where, "a cue needs 'say' or 'sound'")
            if at is not None and signal is not None:
                cues.append(TimedCue(at, signal, where))
        return tuple(cues)

    def _offset(self, data: YMap) -> int | None:
        """A signed duration: negative counts from the end of the hold."""
        value, raw, where = data["at"], data.raw.get("at"), data.at("at")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            ms = self.duration_value(-value, None, where, "at", allow_zero=False)
            return None if ms is None else -ms
        if isinstance(value, str) and value.strip().startswith("-"):
            ms = self.duration_value(value.strip()[1:], None, where, "at", allow_zero=False)
            return None if ms is None else -ms
        return self.duration_value(value, raw, where, "at", allow_zero=True)

    def _background(self, data: YMap) -> Background | None:
        """`background: rain`, or `{sound: rain.ogg, level: -20dB, fade: 5s, duck: {depth: 10dB, ...}}`."""
        value = data["background"]
        if value is False or value == "none":
            return None
        settings = data
        if isinstance(value, YMap):
            settings = self.mapping(value, data.at("background"), "'background'", BACKGROUND_KEYS)
            assert settings is not None
            if "sound" not in settings:
                self.problem(data.at("background"), f"'background' needs a 'sound': {', '.join(BUILTIN_BEDS)}, or a sound file")
        sound = self._sound(settings, "sound" if settings is not data else "background", BUILTIN_BEDS, "background")
        found: dict[str, Any] = {}
        if settings is not data:
            level = self._decibels(settings, "level", BED_LEVEL_RANGE)
            if level is not None:
                found["level"] = level
            fade = self.duration(settings, "fade", allow_zero=True)
            if fade is not None:
                found["fade"] = fade
            found.update(self._duck(settings))
        where = settings.at("sound") if settings is not data and "sound" in settings else data.at("background")
        return None if sound is None else Background(sound[0], where, sound[1], **found)

    def _duck(self, data: YMap) -> dict[str, Any]:
        """`duck: {depth: 10dB, attack: 300ms, release: 1s}`, or `duck: false` to keep the bed level."""
        if "duck" not in data:
            return {}
        if data["duck"] is False:
            return {"depth": 0.0}
        settings = self.mapping(data["duck"], data.at("duck"), "'duck'", DUCK_KEYS)
        if settings is None:
            return {}
        found: dict[str, Any] = {}
        depth = self._decibels(settings, "depth", (0.0, MAX_DUCK_DB))
        if depth is not None:
            found["depth"] = depth
        for key in ("attack", "release"):
            ms = self.duration(settings, key, allow_zero=True)
            if ms is not None:
                found[key] = ms
        return found

    def _decibels(self, data: YMap, key: str, bounds: tuple[float, float]) -> float | None:
        """A level in dB: `-20dB`, `-20 dB` or `-20`, within ``bounds``."""
        if key not in data:
            return None
        value = data[key]
        number: float | None = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):
            match = re.fullmatch(r"\s*([-+−]?\d+(?:\.\d+)?)\s*(?:db|dB|DB|Db)?\s*", value)
            if match:
                number = float(match.group(1).replace("−", "-"))
        low, high = bounds
        if number is None or not low <= number <= high:
            self.problem(data.at(key), f"'{key}' must be a level in dB from {low:g} to {high:g} (e.g. {(low + high) / 2:g}dB), got {_kind(value) if number is None else value}")
            return None
        return number

    def _file(self, data: YMap, key: str, what: str) -> Path | None:
        name = self.text(data, key, "a routine")
        if name is None:
            return None
        path = (self.path.parent / name).resolve() if not Path(name).is_absolute() else Path(name)
        if not path.is_file():
            self.problem(data.at(key), f"{what} not found: {name} (looked for {path})")
            return None
        return path

    def _chime(self, data: YMap, key: str = "chime") -> Chime | None:
        sound = self._sound(data, key, BUILTIN_CHIMES, "chime")
        return None if sound is None else Chime(sound[0], data.at(key), sound[1])

    def _sound(self, data: YMap, key: str, builtin: tuple[str, ...], what: str) -> tuple[str, Path | None] | None:
        """A built-in sound's name, or a sound file's name as written and its path."""
        name = self.text(data, key, "a step")
        if name is None:
            return None
        where = data.at(key)
        if name in builtin:
            return name, None
        looks_like_file = "/" in name or "\\" in name or name.lower().endswith(SOUND_SUFFIXES)
        if not looks_like_file:
            hint = did_you_mean(name, builtin)
            self.problem(where, f"unknown {what} '{name}'{hint} (built-in: {', '.join(builtin)}; or a path to a sound file)")
            return None
        path = (self.path.parent / name).resolve() if not Path(name).is_absolute() else Path(name)
        if not path.is_file():
            self.problem(where, f"sound file not found: {name} (looked for {path})")
            return None
        return name, path

    def _texts(self, data: YMap, key: str, scope: tuple[str, ...]) -> tuple[Text, ...]:
        if key not in data:
            return ()
        value = data[key]
        if isinstance(value, YList):
            items = list(zip(value, value.item_at, value.raw))
        else:
            items = [(value, data.at(key), data.raw.get(key))]
        texts = []
        for item, where, raw in items:
            if isinstance(item, (YMap, YList)) or item is None or (not isinstance(item, str) and raw is None):
                self.problem(where, f"'{key}' must be text or a list of texts, got {_kind(item)}")
                continue
            text = item if isinstance(item, str) else raw
            if not text.strip():
                self.problem(where, f"'{key}' has an empty line to say")
                continue
            self._check_template(text, where, key, scope)
            texts.append(Text(text, where))
        return tuple(texts)

    def _check_template(self, text: str, where: Location, key: str, scope: tuple[str, ...]) -> None:
        try:
            fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
        except ValueError as error:
            self.problem(where, f"'{key}': bad template ({error}); write {{{{ and }}}} for literal braces")
            return
        known = list(scope) + list(self.vars)
        for name, spec, conv in fields:
            if spec or conv:
                self.problem(where, f"'{key}': write the template as {{{name}}}, without ':' or '!'")
            elif name in scope or name in self.vars:
                continue
            elif name in TEMPLATE_NAMES:
                self.problem(where, f"'{key}': {{{name}}} has no value here ({_scope_hint(name)})")
            else:
                choices = sorted(set(known))
                close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
                if close:
                    hint = f"; did you mean {{{close[0]}}}?"
                elif choices:
                    hint = f"; known here: {', '.join('{' + c + '}' for c in choices)}"
                else:
                    hint = "; define it under 'vars'"
                self.problem(where, f"'{key}': unknown variable {{{name}}}{hint}")

    def _steps(self, value: Any, where: Location, scope: tuple[str, ...]) -> tuple[Step, ...]:
        if not isinstance(value, YList) or not value:
            self.problem(where, f"'steps' must be a list of at least one step, got {_kind(value)}")
            return ()
        steps = []
        for item, item_where in zip(value, value.item_at):
            step = self._step(item, item_where, scope)
            if step is not None:
                steps.append(step)
        return tuple(steps)

    def _step(self, value: Any, where: Location, scope: tuple[str, ...]) -> Step | None:
        is_group = isinstance(value, YMap) and "steps" in value
        # Keys of the other kind are flagged below with a clearer message.
        keys = STEP_KEYS + tuple(k for k in GROUP_KEYS if k not in STEP_KEYS)
        data = self.mapping(value, where, "a group" if is_group else "a step", keys)
        if data is None:
            return None
        for key in data:
            if key in ("hold", "repeat", "between") and is_group:
                self.problem(data.key_at[key], f"'{key}' belongs on a step; a group has 'rounds' and 'steps'")
            elif key == "rounds" and not is_group:
                self.problem(data.key_at[key], "'rounds' belongs on a group (a step with 'steps')")
        title = self.text(data, "title", "a step", required=True) or ""
        step_id = self._id(data, title, where)
        sides = self._sides(data)
        repeat = self.count(data, "repeat") or 1
        rounds = self.count(data, "rounds") or 1
        hold = self.duration(data, "hold", allow_zero=False)
        if "between" in data and repeat == 1:
            self.problem(data.key_at["between"], "'between' is spoken between repetitions; add 'repeat' of 2 or more")

        inner = scope + (("side",) if sides else ())
        if is_group:
            inner += ("round", "rounds")
            say_scope = inner
        else:
            say_scope = inner + ("repeat", "repeats") + (("hold",) if hold is not None else ())
        say = self._texts(data, "say", say_scope)
        between = self._texts(data, "between", say_scope)
        # Cue texts inside a group apply to the steps in it, which each have a hold.
        coaching = self._coaching(data, say_scope + ("hold", "repeat", "repeats") if is_group else say_scope)
        steps = self._steps(data["steps"], data.at("steps"), inner) if is_group else ()
        return Step(
            id=step_id,
            title=title,
            where=where,
            say=say,
            hold=hold,
            hold_at=data.at("hold") if hold is not None else None,
            repeat=repeat,
            between=between,
            sides=sides,
            rest=self.duration(data, "rest", allow_zero=True) or 0,
            chime=self._chime(data),
            voice=self.voice(data, "voice"),
            steps=steps,
            rounds=rounds,
            coaching=coaching,
        )

    def _id(self, data: YMap, title: str, where: Location) -> str:
        explicit = "id" in data
        if explicit:
            step_id = self.text(data, "id", "a step") or ""
            at = data.at("id")
            if not _ID.fullmatch(step_id):
                self.problem(at, f"id '{step_id}' must be lowercase letters, digits, '-' or '_'")
                return step_id
        else:
            step_id = slug(title) or "step"
            at = data.at("title") if "title" in data else where
        if step_id in self.ids:
            first = self.ids[step_id]
            if step_id in RESERVED_IDS:
                self.problem(at, f"id '{step_id}' is reserved for the routine's {step_id}; give this step another id")
            else:
                how = "" if explicit else " (made from the title; add an 'id' to tell them apart)"
                self.problem(at, f"duplicate step id '{step_id}', first used at line {first.line}{how}")
        else:
            self.ids[step_id] = at
        return step_id

    def _sides(self, data: YMap) -> tuple[str, ...]:
        if "sides" not in data:
            return ()
        value = data["sides"]
        if not isinstance(value, YList) or not value:
            self.problem(data.at("sides"), f"'sides' must be a list of side names such as [left, right], got {_kind(value)}")
            return ()
        sides = []
        for item, at, raw in zip(value, value.item_at, value.raw):
            name = raw if raw is not None and not isinstance(item, (YMap, YList)) else None
            if not name or not name.strip():
                self.problem(at, "each side must be a name such as left or right")
            elif name in sides:
                self.problem(at, f"side '{name}' is listed twice")
            else:
                sides.append(name)
        return tuple(sides)

    def _check_size(self, steps: tuple[Step, ...]) -> None:
        """Refuse sessions over 12 hours before anything is expanded in memory."""
        total_ms = 0
        total_events = 0
        for step in steps:
            ms, events = _lower_bound(step)
            total_ms += ms
            total_events += events
            if total_ms > MAX_SESSION_MS:
                self.problem(step.where, f"the session would last more than 12 hours (holds and rests reach {format_clock(total_ms)} by step '{step.id}')")
                return
            if total_events > MAX_EVENTS:
                self.problem(step.where, f"the session would have more than {MAX_EVENTS} events by step '{step.id}'; use fewer repeats or rounds")
                return


def minimum_length(step: Step) -> int:
    """Least time a step takes in ms (its holds and rests, without speech)."""
    return _lower_bound(step)[0]


def _lower_bound(step: Step) -> tuple[int, int]:
    """Least time and event count of a step, computed without expanding it."""
    sides = max(1, len(step.sides))
    if step.is_group:
        parts = [_lower_bound(child) for child in step.steps]
        round_ms = sum(ms for ms, _ in parts)
        round_events = sum(events for _, events in parts) + len(step.say) + 1
        ms = (round_ms * step.rounds + step.rest * (step.rounds - 1)) * sides
        return ms, round_events * step.rounds * sides
    per_repeat_ms = step.hold or 0
    per_repeat_events = 2 + len(step.say) + len(step.between) + 2
    return per_repeat_ms * step.repeat * sides + step.rest, per_repeat_events * step.repeat * sides + 1


def _scope_hint(name: str) -> str:
    return {
        "side": "only in a step or group with 'sides'",
        "round": "only inside a group",
        "rounds": "only inside a group",
        "repeat": "only in a step's 'say' or 'between'",
        "repeats": "only in a step's 'say' or 'between'",
        "hold": "only in a step with a 'hold'",
    }[name]


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (YMap, dict)):
        return "a mapping"
    if isinstance(value, (YList, list)):
        return "a list" if value else "an empty list"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return f"'{value}'" if len(value) < 40 else "text"
    return type(value).__name__

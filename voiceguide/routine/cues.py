"""Checking the parts of a routine that sound besides its steps: cue settings, phrases, texts and their
templates, sound files and the background bed.
"""

from __future__ import annotations

import difflib
import re
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from voiceguide.errors import Location, quote
from voiceguide.routine.checker import Checker, _kind, did_you_mean
from voiceguide.routine.model import (
    BACKGROUND_KEYS,
    BED_LEVEL_RANGE,
    BUILTIN_BEDS,
    BUILTIN_CHIMES,
    CLOSING_KEYS,
    DEFAULT_COUNTDOWN,
    DEFAULT_LEAD_IN_MS,
    DUCK_KEYS,
    INTERVAL_NAMES,
    MAX_CROSSFADE_MS,
    MAX_DUCK_DB,
    MAX_LINE_CHARS,
    MAX_STRIKES,
    OFF,
    PHRASE_KEYS,
    PHRASE_SCOPE,
    SOUND_SUFFIXES,
    TEMPLATE_NAMES,
    UNIT_PHRASES,
    Background,
    CueSettings,
    Phrases,
    Signal,
    Sound,
    Text,
    TimedCue,
    speakable,
)
from voiceguide.routine.phrases import phrases
from voiceguide.routine.phrases import units as unit_words
from voiceguide.yamlfile import YList, YMap


class CueChecker(Checker):
    """Reads cue settings, texts and sounds; the routine checker (loader.py) builds on it."""

    def __init__(self, path: Path, engines: Sequence[str]):
        super().__init__(engines)
        self.path = path
        self.vars: dict[str, str] = {}  # the routine's own names, which any template may use

    def _phrases(self, data: YMap, language: str) -> Phrases:
        """The language's phrases, with those the routine's `phrases:` gives instead."""
        where = Location(str(self.path))
        texts = {key: Text(value, where) for key, value in phrases(language).items()}
        units = unit_words(language)
        digits = False
        table = self.mapping(data["phrases"], data.at("phrases"), "'phrases'", PHRASE_KEYS) if "phrases" in data else None
        if table is None:
            return Phrases(texts, units, digits, language)
        for key in table:
            if key not in PHRASE_KEYS:
                continue
            text = self.text(table, key, "'phrases'", required=True)
            if text is None:
                continue
            if key == "numbers":
                if text not in ("words", "digits"):
                    self.problem(table.at(key), "'numbers' must be words (number words of the routine's language) "
                                                f"or digits (read by the voice in its language), got '{text}'")
                digits = text == "digits"
            elif key in UNIT_PHRASES:
                units[key] = text
            else:
                # A chapter's title is read, not spoken.
                if self._check_template(text, table.at(key), key, PHRASE_SCOPE[key]) and key != "chapter":
                    self._check_spoken(text, table.at(key), key)
                texts[key] = Text(text, table.at(key))
        return Phrases(texts, units, digits, language, frozenset(key for key in table if key in PHRASE_KEYS))

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

    def _closing(self, data: YMap) -> tuple[Sound | None, int]:
        """`closing: gong`, or `closing: {sound: gong, strikes: 3}`: the session's last chime, struck N times."""
        if not isinstance(data.get("closing"), YMap):
            return self._chime(data, "closing"), 1
        settings = self.mapping(data["closing"], data.at("closing"), "'closing'", CLOSING_KEYS)
        assert settings is not None
        if "sound" not in settings:
            self.problem(data.at("closing"), f"'closing' needs a 'sound': {', '.join(BUILTIN_CHIMES)}, or a sound file")
        strikes = 1
        if "strikes" in settings:
            value = settings["strikes"]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STRIKES:
                self.problem(settings.at("strikes"), f"'strikes' must be a whole number from 1 to {MAX_STRIKES}, "
                                                     f"got {_kind(value)}")
            else:
                strikes = value
        return self._chime(settings, "sound"), strikes

    def _cue_settings(self, data: YMap, scope: tuple[str, ...]) -> CueSettings:
        settings: dict[str, Any] = {}
        if "countdown" in data:
            settings.update(self._countdown(data))
        for key in ("halfway", "switch", "next", "last-round"):
            if key in data:
                # `switch` may say {side} and `next` {title} wherever they are set; `last-round` is spoken
                # at the start of a round, where only the round's own names have a value.
                key_scope = PHRASE_SCOPE[key] + INTERVAL_NAMES if key == "last-round" else scope + PHRASE_SCOPE[key]
                found = self._signal_setting(data, key, key_scope)
                settings.update({name.replace("-", "_"): value for name, value in found.items()})
        if "remaining" in data:
            settings.update(self._remaining(data))
        if "bells" in data:
            settings.update(self._bells(data))
        if "cues" in data:
            settings["cues"] = self._timed_cues(data, scope)
        return CueSettings(**settings)

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
        """`background: rain`, a sound file, a playlist `[a.mp3, b.ogg]`, or
        `{sound: ..., level: -20dB, fade: 5s, crossfade: 3s, duck: {depth: 10dB, ...}}`."""
        value = data["background"]
        if value is False or value == "none":
            return None
        settings = data
        if isinstance(value, YMap):
            # Already a mapping: this only reports its unknown keys.
            self.mapping(value, data.at("background"), "'background'", BACKGROUND_KEYS)
            settings = value
            if "sound" not in settings:
                self.problem(data.at("background"), f"'background' needs a 'sound': {', '.join(BUILTIN_BEDS)}, "
                                                    "a sound file, or a list of sound files")
        key = "sound" if settings is not data else "background"
        playlist: tuple[Sound, ...] = ()
        sound: tuple[str, Path | None] | None
        if isinstance(settings.get(key), YList):
            playlist = self._playlist(settings[key], settings.at(key))
            sound = (", ".join(file.name for file in playlist), None) if playlist else None
        else:
            sound = self._sound(settings, key, BUILTIN_BEDS, "background")
        found: dict[str, Any] = {}
        if settings is not data:
            level = self._decibels(settings, "level", BED_LEVEL_RANGE)
            if level is not None:
                found["level"] = level
            fade = self.duration(settings, "fade", allow_zero=True)
            if fade is not None:
                found["fade"] = fade
            crossfade = self._crossfade(settings, built_in=sound is not None and sound[0] in BUILTIN_BEDS)
            if crossfade is not None:
                found["crossfade"] = crossfade
            found.update(self._duck(settings))
        where = settings.at(key) if key in settings else data.at("background")
        return None if sound is None else Background(sound[0], where, sound[1], playlist=playlist, **found)

    def _playlist(self, items: YList, where: Location) -> tuple[Sound, ...]:
        """Sound files to play one after another, each named relative to the routine; any problem is reported."""
        if not items:
            self.problem(where, "a playlist needs at least one sound file, got an empty list")
        files = []
        for item, at, raw in zip(items, items.item_at, items.raw):
            name = raw if raw is not None and not isinstance(item, (YMap, YList)) else None
            if not name or not name.strip():
                self.problem(at, f"each file of a playlist must be a sound file's name, got {_kind(item)}")
            elif name in BUILTIN_BEDS:
                self.problem(at, f"a playlist plays sound files; '{name}' is built in: give it alone, "
                                 f"as `background: {name}`")
            else:
                path = self._sound_file(name, at)
                if path is not None:
                    files.append(Sound(name, at, path))
        return tuple(files) if len(files) == len(items) else ()

    def _crossfade(self, settings: YMap, built_in: bool) -> int | None:
        ms = self.duration(settings, "crossfade", allow_zero=False)
        if ms is None:
            return None
        if ms > MAX_CROSSFADE_MS:
            self.problem(settings.at("crossfade"), f"'crossfade' must be at most {MAX_CROSSFADE_MS // 1000}s, "
                                                   f"got {settings.raw.get('crossfade', ms)}")
            return None
        if built_in:
            self.problem(settings.at("crossfade"), f"'crossfade' joins sound files; {' and '.join(BUILTIN_BEDS)} "
                                                   "loop without one")
            return None
        return ms

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

    def _chime(self, data: YMap, key: str = "chime") -> Sound | None:
        sound = self._sound(data, key, BUILTIN_CHIMES, "chime")
        return None if sound is None else Sound(sound[0], data.at(key), sound[1])

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
        path = self._sound_file(name, where)
        return None if path is None else (name, path)

    def _sound_file(self, name: str, where: Location) -> Path | None:
        """The path of the sound file ``name``, relative to the routine; None, reported, if there is none."""
        path = (self.path.parent / name).resolve() if not Path(name).is_absolute() else Path(name)
        if not path.is_file():
            self.problem(where, f"sound file not found: {name} (looked for {path})")
            return None
        return path

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
            # A number or `yes` is text too, as the person wrote it.
            text = item if isinstance(item, str) else raw
            if isinstance(item, (YMap, YList)) or item is None or text is None:
                self.problem(where, f"'{key}' must be text or a list of texts, got {_kind(item)}")
                continue
            if not text.strip():
                self.problem(where, f"'{key}' has an empty line to say")
                continue
            if self._check_template(text, where, key, scope):
                self._check_spoken(text, where, key)
            texts.append(Text(text, where))
        return tuple(texts)

    def _check_spoken(self, text: str, where: Location, key: str) -> None:
        """A line must give the voice something to say, and not so much that an engine fails on it.

        Checked with the routine's vars filled in; the names voiceguide fills
        (a side, a number, a time) are words, and the planner checks the line
        they make again (see planner.py).
        """
        parts, filled_later = [], False
        for literal, name, _, _ in string.Formatter().parse(text):
            parts.append(literal)
            if name is not None and name in self.vars:
                parts.append(self.vars[name])
            elif name is not None:
                filled_later = True
        line = "".join(parts)
        if len(line) > MAX_LINE_CHARS:
            self.problem(where, f"'{key}': a line of {len(line)} characters; a spoken line may have at most "
                                f"{MAX_LINE_CHARS} (split it into several)")
        elif not filled_later and not speakable(line):
            self.problem(where, f"'{key}': nothing to say in {quote(text)}; a line needs a letter or a digit")

    def _check_template(self, text: str, where: Location, key: str, scope: tuple[str, ...]) -> bool:
        """Report the template's problems; whether it has none."""
        try:
            fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
        except ValueError as error:
            self.problem(where, f"'{key}': bad template ({error}); write {{{{ and }}}} for literal braces")
            return False
        count = len(self.problems)
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
        return len(self.problems) == count


def _scope_hint(name: str) -> str:
    return {
        "side": "only in a step or group with 'sides'",
        "round": "only inside a group",
        "rounds": "only inside a group",
        "repeat": "only in a step's 'say' or 'between'",
        "repeats": "only in a step's 'say' or 'between'",
        "hold": "only in a step with a 'hold'",
        "interval": "only in a step with a 'hold' or inside a group",
        "intervals": "only in a step with a 'hold' or inside a group",
    }[name]



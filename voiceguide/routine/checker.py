"""Checking a YAML tree value by value, collecting every problem with its place: the base of the routine
and profile loaders.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from voiceguide.durations import DurationError, parse_duration
from voiceguide.errors import Location, Problem
from voiceguide.routine.model import RATE_RANGE, VOICE_KEYS, Voice
from voiceguide.routine.phrases import parse_language
from voiceguide.yamlfile import YList, YMap


def _order(problem: Problem) -> tuple[int, int]:
    return (problem.where.line, problem.where.column)


# What people write for a key, by what they mean, most likely first: spelling alone would suggest 'rest'
# for `reps`. A synonym is suggested only where its meaning is a valid key.
SYNONYMS = {
    "reps": ("repeat",), "repeats": ("repeat",), "repetitions": ("repeat",), "times": ("repeat",),
    "sets": ("repeat", "rounds"), "cycles": ("rounds",), "loops": ("rounds",),
    "duration": ("hold", "time"), "time": ("hold",), "length": ("hold", "time"), "seconds": ("hold", "time"),
    "text": ("say",), "speak": ("say",), "instruction": ("say",), "instructions": ("say",), "words": ("say",),
    "name": ("title",), "label": ("title",), "desc": ("description",), "summary": ("description",),
    "break": ("rest",), "pause": ("rest",), "wait": ("rest",),
    "sound": ("chime",), "speed": ("rate",), "wpm": ("rate",), "substeps": ("steps",), "children": ("steps",),
}


def closest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The choice ``word`` most likely meant: a synonym, else the nearest spelling; None if nothing is near."""
    for meant in SYNONYMS.get(word.casefold(), ()):
        if meant in choices:
            return meant
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str:
    meant = closest(word, choices)
    return f"; did you mean '{meant}'?" if meant else ""


def slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


class Checker:
    """Collects problems while reading a YAML tree; shared by routines and profiles."""

    def __init__(self, engines: Sequence[str]) -> None:
        self.problems: list[Problem] = []
        self.engines = list(engines)  # the names a voice's engine may take

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

    def language(self, data: YMap) -> str | None:
        """`language: de`: the language of the words voiceguide says, and of the voice when none is named."""
        if "language" not in data:
            return None
        text = self.text(data, "language", "a routine")
        if text is None:
            return None
        try:
            return parse_language(text)
        except ValueError as error:
            self.problem(data.at("language"), str(error))
            return None

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
            if engine not in self.engines:
                names = self.engines
                self.problem(settings.at("engine"), f"unknown engine '{engine}'{did_you_mean(engine, names)} (valid engines: {', '.join(names)})")
        return Voice(
            engine=engine,
            voice=self.text(settings, "voice", "'voice'"),
            rate=rate,
            volume=volume,
            engine_at=settings.at("engine") if "engine" in settings else None,
            voice_at=settings.at("voice") if "voice" in settings else None,
        )



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

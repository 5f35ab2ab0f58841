"""Durations: parse what people write ("1:30", "90 seconds", "1.5m") and say it back in words."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping

MS_PER_UNIT = {
    "h": 3_600_000, "hr": 3_600_000, "hrs": 3_600_000, "hour": 3_600_000, "hours": 3_600_000,
    "m": 60_000, "min": 60_000, "mins": 60_000, "minute": 60_000, "minutes": 60_000,
    "s": 1000, "sec": 1000, "secs": 1000, "second": 1000, "seconds": 1000,
    "ms": 1, "millisecond": 1, "milliseconds": 1,
}

_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_PART = re.compile(rf"\s*({_NUMBER})\s*([a-z]+)\s*,?", re.IGNORECASE)
_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d{2}(?:\.\d+)?)")


class DurationError(ValueError):
    """A text that is not a duration; the message says what is accepted."""


EXPECTED = "a duration such as 45, 45s, 1m30s, 1:30, 2 min, 1.5m, 90 seconds or 1h"


def parse_duration(value: object) -> int:
    """Return the duration in whole milliseconds.

    A bare number means seconds. Negative values are refused here; whether
    zero is allowed depends on where the duration is used, so callers check.
    """
    if isinstance(value, bool) or value is None:
        raise DurationError(f"expected {EXPECTED}, got {_show(value)}")
    if isinstance(value, (int, float)):
        seconds = float(value)
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            raise DurationError(f"expected {EXPECTED}, got {value}")
        if seconds < 0:
            raise DurationError(f"a duration cannot be negative, got {value}")
        return _whole_ms(seconds * 1000, value)
    if not isinstance(value, str):
        raise DurationError(f"expected {EXPECTED}, got {_show(value)}")

    text = value.strip()
    if text.startswith("-"):
        raise DurationError(f"a duration cannot be negative, got {value!r}")
    if re.fullmatch(_NUMBER, text):
        return _whole_ms(float(text) * 1000, value)
    clock = _CLOCK.fullmatch(text)
    if clock:
        hours, minutes, secs = clock.groups()
        if hours is not None and int(minutes) >= 60:
            raise DurationError(f"minutes must be under 60 in {value!r}")
        if float(secs) >= 60:
            raise DurationError(f"seconds must be under 60 in {value!r}")
        total = int(hours or 0) * 3600 + int(minutes) * 60 + float(secs)
        return _whole_ms(total * 1000, value)
    return _parse_units(text, value)


def _parse_units(text: str, original: str) -> int:
    total = 0.0
    position = 0
    last_scale = None
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        number, unit = match.groups()
        scale = MS_PER_UNIT.get(unit.lower())
        if scale is None:
            raise DurationError(f"unknown unit {unit!r} in {original!r}; use h, m, s or ms")
        if last_scale is not None and scale >= last_scale:
            raise DurationError(f"units out of order in {original!r}; write larger units first")
        last_scale = scale
        total += float(number) * scale
        position = match.end()
    if position != len(text) or last_scale is None:
        raise DurationError(f"expected {EXPECTED}, got {original!r}")
    return _whole_ms(total, original)


# Far beyond any session, but small enough that arithmetic on it stays exact.
_LONGEST_MS = 10**15


def _whole_ms(ms: float, original: object) -> int:
    if not math.isfinite(ms) or ms > _LONGEST_MS:
        raise DurationError(f"too long for a duration, got {original!r}")
    return round(ms)


def _show(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value)


def format_clock(ms: int) -> str:
    """Clock time for tables: 1:05, 12:00, 1:02:03; tenths where they matter."""
    tenths = round(ms / 100)
    seconds, tenth = divmod(tenths, 10)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"
    return f"{clock}.{tenth}" if tenth else clock


def format_short(ms: int) -> str:
    """Compact duration for tables and messages: 45s, 1m30s, 2h5m, 1.5s."""
    if ms % 1000:
        if ms < 60_000:
            return f"{ms / 1000:g}s"
    seconds = round(ms / 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{seconds}s" if seconds else ""]
    return "".join(parts) or "0s"


_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen "
         "fourteen fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """English words for a whole number: 42 -> 'forty-two'."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            words = f"{number_words(head)} {name}"
            if rest:
                words += (" and " if rest < 100 else " ") + number_words(rest)
            return words
    raise AssertionError("unreachable")


ENGLISH_UNITS = {"hour": "hour", "hours": "hours", "minute": "minute", "minutes": "minutes",
                 "second": "second", "seconds": "seconds"}


def spoken_duration(ms: int, units: Mapping[str, str] = ENGLISH_UNITS,
                    number: Callable[[int], str] = number_words) -> str:
    """A duration as a person says it: 'one minute thirty seconds'.

    Rounded to whole seconds because nobody says "twelve point three seconds"
    to someone holding a stretch; anything above zero is at least one second.
    ``units`` and ``number`` let a routine in another language say it its way.
    """
    seconds = max(1, round(ms / 1000)) if ms > 0 else 0
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = []
    for amount, unit in ((hours, "hour"), (minutes, "minute"), (seconds, "second")):
        if amount:
            parts.append(f"{number(amount)} {units[unit if amount == 1 else unit + 's']}")
    return " ".join(parts) or f"{number(0)} {units['seconds']}"

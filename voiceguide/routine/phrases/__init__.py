"""The words voiceguide says on its own, in every language it speaks them: cue phrases (halfway, time left,
switch sides, next up, get ready, last round), numbers and units, and the chapters it names.

A routine picks a language with `language: de`; its `phrases:` still replace
any of these. English is the default, and says exactly what it always said.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping

from voiceguide.durations import number_words
from voiceguide.routine.phrases import _numbers
from voiceguide.routine.phrases._numbers import Gender
from voiceguide.routine.phrases._tables import AND, ENGLISH_PHRASES, GENDERS, ID3_CODES, NAMES, PHRASES, TITLES, UNITS

__all__ = ["ENGLISH", "ENGLISH_PHRASES", "LANGUAGES", "UNIT_KEYS", "id3_language", "language_name", "parse_language", "phrases",
           "primary", "say_duration", "say_number", "title", "units"]

ENGLISH = "en"
# The languages voiceguide has words for, by their ISO 639-1 codes.
LANGUAGES = tuple(PHRASES)
UNIT_KEYS = ("second", "seconds", "minute", "minutes", "hour", "hours")
_REGION = re.compile(r"[a-z0-9]{2,8}")

_NUMBERS: dict[str, Callable[[int, Gender], str]] = {
    "de": _numbers.german, "fr": _numbers.french, "es": _numbers.spanish, "it": _numbers.italian,
    "pt": _numbers.portuguese, "nl": _numbers.dutch,
}


def primary(code: str) -> str:
    """The language of a code, without its country: pt-br -> pt."""
    return code.partition("-")[0]


def parse_language(text: str) -> str:
    """A language code as a routine may give it (de, pt-BR, pt_br), in the form voiceguide uses (pt-br); raise
    ValueError with a message for the user when voiceguide has no words for it."""
    code = text.strip().casefold().replace("_", "-")
    language, dash, region = code.partition("-")
    if language in PHRASES and (not dash or _REGION.fullmatch(region)):
        return code
    # What people write instead of the code: the language's name, in English or in itself, or its three letters.
    names = {name.casefold(): key for key, found in NAMES.items() for name in found}
    names.update({three: key for key, three in ID3_CODES.items()})
    meant = names.get(code) or names.get(language)
    if meant is None:
        close = difflib.get_close_matches(code, list(names), n=1, cutoff=0.75)
        meant = names[close[0]] if close else None
    hint = f"; did you mean '{meant}'?" if meant else ""
    supported = ", ".join(f"{key} ({NAMES[key][0]})" for key in LANGUAGES)
    raise ValueError(f"unknown language '{text}'{hint} (supported: {supported})")


def id3_language(code: str) -> str:
    """The language's code in ID3 tags (ISO 639-2): deu."""
    return ID3_CODES[primary(code)]


def language_name(code: str) -> str:
    """The language's name in English, for messages: German."""
    return NAMES[primary(code)][0]


def phrases(code: str) -> dict[str, str]:
    """The cue phrases of the language ``code``, by their keys in `phrases:`."""
    return dict(PHRASES[primary(code)])


def units(code: str) -> dict[str, str]:
    """The words of the time units, by their keys in `phrases:` (second, seconds, ...)."""
    return dict(UNITS[primary(code)])


def title(code: str, section: str) -> str:
    """The chapter title of the intro, the lead-in or the outro."""
    return TITLES[primary(code)][section]


def say_number(n: int, code: str, gender: Gender = None) -> str:
    """``n`` in words, said alone (counting) or, with the ``gender`` of a unit, before it."""
    language = primary(code)
    if language == ENGLISH:
        return number_words(n)
    if not 0 <= n < 100:
        return str(n)  # never asked for by the planner; the voice reads digits in its language
    if language == "pt":
        return _numbers.portuguese(n, gender, brazil=code == "pt-br")
    return _NUMBERS[language](n, gender)


def say_duration(ms: int, code: str, words: Mapping[str, str], digits: bool = False) -> str:
    """A duration as a person says it in the language ``code``, with ``words`` for the units: 'one minute
    thirty seconds', 'eine Minute und dreißig Sekunden'; ``digits``: the numbers as digits.

    Rounded to whole seconds as durations.spoken_duration does, which this is
    for English, word for word.
    """
    seconds = max(1, round(ms / 1000)) if ms > 0 else 0
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [_quantity(amount, unit, code, words, digits)
             for amount, unit in ((hours, "hour"), (minutes, "minute"), (seconds, "second")) if amount]
    if not parts:
        return f"{0 if digits else say_number(0, code)} {words['seconds']}"
    return " ".join(parts[:-1]) + AND[primary(code)] + parts[-1] if len(parts) > 1 else parts[0]


def _quantity(amount: int, unit: str, code: str, words: Mapping[str, str], digits: bool) -> str:
    word = words[unit if amount == 1 else unit + "s"]
    if digits:
        return f"{amount} {word}"
    language = primary(code)
    gender: Gender = "f" if GENDERS.get(language, {}).get(unit) == "f" else "m"
    if language == "it" and amount == 1 and gender == "f" and word[:1].casefold() in "aeiou":
        return f"un'{word}"  # un'ora
    return f"{say_number(amount, code, gender)} {word}"


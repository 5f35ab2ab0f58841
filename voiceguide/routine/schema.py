"""JSON Schemas of routine and profile files, for editors: completion, hover and checking as one types.

The keys come from the loader's own tables (model.py; a profile's from overrides.py, a later stage, through the
caller), so a key the loader accepts is a key the schema knows and no other. The schema checks shapes: keys, kinds of value, built-in names, how a duration is
written. What needs the whole routine (timing, templates, files on disk, limits) stays the loader's to say:
`voiceguide check` has the last word.

Draft-07, the newest draft every version of the YAML language server reads. YAML 1.2, which editors read,
takes `yes` and `2024` for text where PyYAML (YAML 1.1) takes true and a number: the loader accepts any
scalar as text, and so does the schema.
"""

from __future__ import annotations

from typing import Any

from voiceguide.durations import MS_PER_UNIT
from voiceguide.routine.model import (
    BACKGROUND_KEYS,
    BED_LEVEL_RANGE,
    BUILTIN_BEDS,
    BUILTIN_CHIMES,
    CLOSING_KEYS,
    CUE_KEYS,
    DEFAULT_CHIME,
    DEFAULT_COUNTDOWN,
    DUCK_KEYS,
    GROUP_KEYS,
    MAX_CROSSFADE_MS,
    MAX_DUCK_DB,
    MAX_NESTING,
    MAX_SESSION_MS,
    MAX_SIDES,
    MAX_STRIKES,
    PHRASE_KEYS,
    RATE_RANGE,
    RESERVED_IDS,
    SOUND_SUFFIXES,
    STEP_KEYS,
    TEMPLATE_NAMES,
    TOP_KEYS,
    UNIT_PHRASES,
    VOICE_KEYS,
)
from voiceguide.routine.phrases import LANGUAGES

DRAFT = "http://json-schema.org/draft-07/schema#"
# Names, not addresses: the schemas are written beside the routines (`voiceguide schema -o`), where an editor
# finds them by path; nothing is fetched.
ROUTINE_ID = "urn:voiceguide:schema:routine"
PROFILE_ID = "urn:voiceguide:schema:profile"
# What a routine's first line says to point an editor at the schema written beside it.
ROUTINE_SCHEMA_FILE = "routine.schema.json"
PROFILE_SCHEMA_FILE = "profile.schema.json"
MODELINE = "# yaml-language-server: $schema="

# Keys the loader takes on one kind of step only (loader.py reports them on the other kind).
STEP_ONLY = ("hold", "repeat", "between", "rest-between")
GROUP_ONLY = ("rounds", "strict", "chapters", "last-round")
# Keys of the settings written as a mapping inside a cue setting (cues.py).
LEAD_IN_KEYS = ("say", "time")
COUNTDOWN_KEYS = ("count", "sound")
SIGNAL_KEYS = ("say", "sound")
SWITCH_KEYS = ("say", "sound", "gap")
REMAINING_KEYS = ("at", "every")
BELLS_KEYS = ("every", "sound", "strikes")
TIMED_CUE_KEYS = ("at", "say", "sound")
MAX_COUNTDOWN = 10

Schema = dict[str, Any]


def _anycase(word: str) -> str:
    """A pattern for ``word`` in any case: JSON Schema patterns take no flags."""
    return "".join(f"[{char.lower()}{char.upper()}]" if char.isalpha() else char for char in word)


def _units(ms: int) -> str:
    """The unit words worth ``ms`` each, longest first so that `minutes` is not read as `m`."""
    words = sorted((word for word, value in MS_PER_UNIT.items() if value == ms), key=len, reverse=True)
    return "(?:" + "|".join(_anycase(word) for word in words) + ")(?![A-Za-z])"


# The forms parse_duration reads (durations.py): a number of seconds, a clock (1:30, 1:02:03.5), or numbers
# with units, larger units first (1h 30m, 1m30s, 2 min, 90 seconds, 500ms).
_NUMBER = r"(?:\d+(?:\.\d+)?|\.\d+)"
_CLOCK = r"(?:\d+:0*[0-5]?\d|\d+):[0-5]\d(?:\.\d+)?"
_UNITS = "".join(rf"(?:\s*{_NUMBER}\s*{_units(ms)}\s*,?)?" for ms in sorted(set(MS_PER_UNIT.values()), reverse=True))
DURATION_PATTERN = rf"^\s*(?:{_NUMBER}|{_CLOCK}|(?=.*[A-Za-z]){_UNITS})\s*$"
# Longer than zero: a digit other than 0 somewhere.
POSITIVE_PATTERN = r"^(?=.*[1-9])" + DURATION_PATTERN[1:]
OFFSET_PATTERN = r"^\s*-(?=.*[1-9])" + DURATION_PATTERN[1:]
DECIBEL_PATTERN = r"^\s*[-+−]?\d+(?:\.\d+)?\s*(?:db|dB|DB|Db)?\s*$"
SOUND_FILE_PATTERN = r"[/\\]|\.(?:" + "|".join(_anycase(suffix[1:]) for suffix in SOUND_SUFFIXES) + r")$"
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
VAR_PATTERN = r"^[A-Za-z_\u00c0-\uffff][A-Za-z0-9_\u00c0-\uffff]*$"
# A code parse_language takes (routine/phrases): a language voiceguide has words for, and perhaps a country.
LANGUAGE_PATTERN = (r"^\s*(?:" + "|".join(_anycase(code) for code in LANGUAGES) + r")(?:[-_][A-Za-z0-9]{2,8})?\s*$")

# Words YAML 1.1 reads as true and false, and so the loader (PyYAML); YAML 1.2, which editors read, takes them
# for text. A setting that may be true or false takes them too: `strict: yes` is what the file means.
TRUE_WORDS = ("yes", "Yes", "YES", "on", "On", "ON")
FALSE_WORDS = ("no", "No", "NO", "off", "Off", "OFF")
# Far beyond any session (parse_duration's own limit), so that `hold: 1e308` is marked.
LONGEST_SECONDS = 10**12


def _ref(name: str, description: str | None = None, **extra: Any) -> Schema:
    """A shape from the schema's definitions; ``description`` is what an editor shows for this key."""
    schema: Schema = {"$ref": f"#/definitions/{name}", **extra}
    if description is not None:
        schema["description"] = description
    return schema


def _durations(positive: bool, most_ms: int | None = None) -> Schema:
    number: Schema = {"type": "number", "exclusiveMinimum" if positive else "minimum": 0,
                      "maximum": LONGEST_SECONDS if most_ms is None else most_ms / 1000}
    return {"anyOf": [number, _ref("positive-duration-text" if positive else "duration-text")]}


def _count(description: str, least: int = 1, most: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "minimum": least, "description": description}
    if most is not None:
        schema["maximum"] = most
    return schema


def _sound(builtin: tuple[str, ...], description: str) -> Schema:
    return {"description": description, "anyOf": [
        {"enum": list(builtin)},
        {"type": "string", "pattern": SOUND_FILE_PATTERN, "description": "A sound file, relative to the routine"},
    ]}


def _decibels(description: str, low: float, high: float) -> Schema:
    # A level's sign is the part of its range a pattern can check: a bed is under the speech, a dip is down.
    sign = "[-−]" if high < 0 else r"\+?" if low >= 0 else "[-+−]?"
    pattern = DECIBEL_PATTERN.replace("[-+−]?", sign)
    return {"description": f"{description}, {low:g}dB to {high:g}dB", "anyOf": [
        {"type": "number", "minimum": low, "maximum": high}, {"type": "string", "pattern": pattern}]}


def _object(keys: tuple[str, ...], shapes: dict[str, Schema], description: str, **extra: Any) -> Schema:
    """A mapping of exactly ``keys``, each with its shape from ``shapes``."""
    return {"type": "object", "description": description, "additionalProperties": False,
            "properties": {key: shapes.get(key, {}) for key in keys}, **extra}


def _not_both(first: str, second: str) -> Schema:
    return {"not": {"required": [first, second]}}


def _common() -> dict[str, Schema]:
    """The definitions routines and profiles share: text, durations, voices."""
    return {
        # Any scalar is text to the loader, as written; a line must hold something besides spaces.
        "text": {"type": ["string", "number", "boolean"], "pattern": r"\S"},
        # Where the loader takes even an empty value (a description, a voice's name).
        "scalar": {"type": ["string", "number", "boolean"]},
        "duration-text": {"type": "string", "pattern": DURATION_PATTERN},
        "positive-duration-text": {"type": "string", "pattern": POSITIVE_PATTERN},
        "duration": {**_durations(positive=False), "description": "A duration: 45, 45s, 1m30s, 1:30, 2 min, 500ms"},
        "positive-duration": {**_durations(positive=True), "description": "A duration longer than zero: 45, 45s, "
                                                                          "1m30s, 1:30, 2 min"},
        "voice": {"description": "Speech settings; a voice's id, name or language alone is short for {voice: ...}",
                  "anyOf": [_ref("scalar"), _object(VOICE_KEYS, {
                      "engine": {"type": "string", "examples": ["pyttsx3", "piper"],
                                 "description": "The speech engine: pyttsx3 (the default), piper, or a plugin's"},
                      "voice": _ref("scalar", "A voice id, name or language (see `voiceguide voices`); for piper, a "
                                            "model file"),
                      "rate": {"type": "number", "minimum": RATE_RANGE[0], "maximum": RATE_RANGE[1],
                               "description": "Words per minute"},
                      "volume": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                                 "description": "Above 0, at most 1"},
                  }, "Speech settings")]},
        "language": {"description": "The language of the words voiceguide says (and of the voice, when none is "
                                    f"named): {', '.join(LANGUAGES)}, or with a country, such as pt-BR",
                     "anyOf": [{"enum": list(LANGUAGES)}, {"type": "string", "pattern": LANGUAGE_PATTERN}]},
    }


def _signal(keys: tuple[str, ...], description: str) -> Schema:
    """`true` (the routine's phrase), `false`, a text, or `{say: ...}` / `{sound: ...}` (switch: and `gap`)."""
    shapes = {"say": _ref("line"), "sound": _ref("chime"),
              "gap": _ref("duration", "Time to change position after the line")}
    return {"description": description, "anyOf": [
        _ref("flag"), _ref("texts"), _object(keys, shapes, description, **_not_both("say", "sound"))]}


def _cue_definitions() -> dict[str, Schema]:
    """The cue settings (CUE_KEYS), the same at the top, on a group and on a step."""
    count = _count(f"How many seconds to count down, 0 to {MAX_COUNTDOWN}", 0, MAX_COUNTDOWN)
    before_end = _ref("positive-duration", "A time before the end of the hold")
    times = {"anyOf": [before_end, {"type": "array", "items": before_end}]}
    return {
        "countdown": {"description": "Count the last seconds of each hold: a number, true (3), false, or "
                                     "{count, sound} for ticks", "default": DEFAULT_COUNTDOWN,
                      "anyOf": [_ref("flag"), count, _object(COUNTDOWN_KEYS, {
                          "count": count, "sound": _ref("chime")}, "Ticks instead of words")]},
        "halfway": _signal(SIGNAL_KEYS, "A line or sound at the middle of each hold; true: \"Halfway.\""),
        "remaining": {"description": "Say how long is left, at these times before a hold ends; false: off",
                      "anyOf": [_ref("off"), times, _object(REMAINING_KEYS, {
                          "at": times, "every": _ref("positive-duration", "Say it this often in long holds"),
                      }, "At chosen times, and every so often")]},
        "cues": {"type": "array", "description": "Your own lines or sounds at chosen times of each hold",
                 "items": _object(TIMED_CUE_KEYS, {
                     "at": {"description": "From the start of the hold (20s) or, negative, from its end (-10s)",
                            "anyOf": [{"type": "number"}, _ref("duration-text"),
                                      {"type": "string", "pattern": OFFSET_PATTERN}]},
                     "say": _ref("line"),
                     "sound": _ref("chime"),
                 }, "A line or a sound at a chosen time", required=["at"],
                     anyOf=[{"required": ["say"]}, {"required": ["sound"]}], **_not_both("say", "sound"))},
        "bells": {"description": "Interval bells inside long holds, and the end chime struck several times",
                  "anyOf": [_ref("off"), _object(BELLS_KEYS, {
                      "every": _ref("positive-duration", "A bell this often inside each hold"),
                      "sound": _ref("chime"),
                      "strikes": _count("Strikes of the chime that ends each hold", 0, MAX_COUNTDOWN),
                  }, "Interval bells")]},
        "switch": _signal(SWITCH_KEYS, "Between sides: a line, then time to change position; on by default"),
        "next": _signal(SIGNAL_KEYS, "\"Next up: <title>\" at the end of each rest; or your own text with {title}"),
        "last-round": _signal(SIGNAL_KEYS, "\"Last round.\" at the start of a group's last round"),
    }


def _step_definitions() -> dict[str, Schema]:
    """A step, and a group: a step with steps of its own."""
    cues = {key: _ref(key) for key in CUE_KEYS}
    shapes = {
        **cues,
        "title": _ref("text", "The step's name: its chapter's title in the MP3"),
        "id": {"type": ["string", "integer", "boolean"], "pattern": ID_PATTERN, "minimum": 0, "not": {"enum": list(RESERVED_IDS)},
               "description": "The name --hold and profiles use (default: made from the title): lowercase "
                              "letters, digits, - and _"},
        "say": _ref("texts", "Spoken first, in order: a text or a list; a group's at the start of every round"),
        "hold": _ref("positive-duration", "The timed part; its chime ends it"),
        "repeat": _count("How many times the step runs (on each side)"),
        "between": _ref("texts", "Spoken before each repetition after the first, instead of 'say'"),
        "rest-between": _ref("duration", "Silence after each repetition's chime but the last"),
        "sides": {"type": "array", "items": _ref("text"), "minItems": 1, "maxItems": MAX_SIDES, "uniqueItems": True,
                  "description": "The step or group once per side, e.g. [left, right]"},
        "rest": _ref("duration", "Silence after the step; in a group, between rounds"),
        "chime": _ref("chime"),
        "voice": _ref("voice"),
        "steps": _ref("steps", f"The steps of the group, in order (groups nest at most {MAX_NESTING} deep)"),
        "rounds": _count("How many times the whole group runs"),
        "strict": {**_ref("flag"), "description": "Keep an interval timer's clock: every hold one cycle after "
                                                     "the one before, the words inside the rests"},
        "chapters": {"const": "rounds", "description": "rounds: each round its own chapter (a group at the top "
                                                       "with 2 rounds or more)"},
    }
    repeated = {"required": ["repeat"], "properties": {"repeat": {"minimum": 2}}}
    step = _object(tuple(key for key in STEP_KEYS if key not in GROUP_ONLY), shapes,
                   "A step: speaks its 'say' lines, holds, rings its chime", required=["title"],
                   dependencies={"between": repeated, "rest-between": repeated})
    # Offered while writing a step, and never checked here: a step with 'steps' is checked as a group.
    step["properties"]["steps"] = shapes["steps"]
    group = _object(tuple(key for key in GROUP_KEYS if key not in STEP_ONLY), shapes,
                    "A group: a step with steps of its own, run 'rounds' times", required=["title", "steps"],
                    dependencies={"chapters": {"required": ["rounds"], "properties": {"rounds": {"minimum": 2}}}})
    return {
        "steps": {"type": "array", "minItems": 1, "items": _ref("step")},
        "step": {"if": {"type": "object", "required": ["steps"]}, "then": _ref("group"), "else": _ref("plain-step")},
        "plain-step": step,
        "group": group,
    }


def _background() -> Schema:
    bed = _sound(BUILTIN_BEDS, "rain or drone (generated), or a sound file relative to this file")
    playlist = {"type": "array", "minItems": 1, "description": "Sound files played one after another",
                "items": {"type": ["string", "number"], "pattern": r"\S", "not": {"enum": list(BUILTIN_BEDS)}}}
    settings = _object(BACKGROUND_KEYS, {
        "sound": {"anyOf": [bed, playlist]},
        "level": _decibels("Its loudness under the speech's", *BED_LEVEL_RANGE),
        "fade": _ref("duration", "Fade in at the start, out at the end"),
        "crossfade": {**_durations(positive=True, most_ms=MAX_CROSSFADE_MS),
                      "description": "Where a sound file repeats or gives way to the next"},
        "duck": {"description": "The dip under speech and sounds; false: none", "anyOf": [
            _ref("off"), _object(DUCK_KEYS, {
                "depth": _decibels("How far it dips", 0.0, MAX_DUCK_DB),
                "attack": _ref("duration", "It is fully down this long before a word starts"),
                "release": _ref("duration", "And back up this long after it ends"),
            }, "The dip")]},
    }, "A bed with its settings", required=["sound"])
    # rain and drone loop without a crossfade.
    settings["if"] = {"required": ["sound"], "properties": {"sound": {"enum": list(BUILTIN_BEDS)}}}
    settings["then"] = {"not": {"required": ["crossfade"]}}
    return {"description": "A calm sound under the whole session",
            "anyOf": [_ref("off"), {"const": "none"}, bed, playlist, settings]}


def routine_schema() -> Schema:
    """The JSON Schema of a routine file."""
    top = {
        **{key: _ref(key) for key in CUE_KEYS},
        "title": _ref("text", "The session's title: the MP3's title tag"),
        "description": _ref("scalar", "Goes into the MP3's comment tag"),
        "language": _ref("language"),
        "voice": _ref("voice"),
        "chime": _ref("chime", default=DEFAULT_CHIME),
        "pause": _ref("duration", "Silence between two sounds that would touch"),
        "intro": _ref("texts", "Spoken before the first step: a text or a list"),
        "outro": _ref("texts", "Spoken after the last step: a text or a list"),
        "vars": {"type": "object", "description": "Your own {names} for text",
                 "propertyNames": {"pattern": VAR_PATTERN, "not": {"enum": list(TEMPLATE_NAMES)}},
                 "additionalProperties": _ref("scalar")},
        "steps": _ref("steps", "The routine's steps, in order; at least one"),
        "lead-in": {"description": "After the intro: a line, then time to get in place", "anyOf": [
            _ref("flag"), _ref("duration"),
            _object(LEAD_IN_KEYS, {"say": _ref("line"), "time": _ref("duration", "Time to get in place")},
                    "A line and a time")]},
        "closing": {"description": "A chime at the very end of the session", "anyOf": [
            _ref("chime"), _object(CLOSING_KEYS, {
                "sound": _ref("chime"), "strikes": _count("How many times it is struck", 1, MAX_STRIKES),
            }, "A chime struck several times", required=["sound"])]},
        "phrases": _object(PHRASE_KEYS, _phrase_shapes(), "The words of cues, for a routine in another language"),
        "cover": _ref("text", "Lock-screen art: an image file relative to this file"),
        "background": _background(),
    }
    return {
        "$schema": DRAFT,
        "$id": ROUTINE_ID,
        "title": "voiceguide routine",
        **_object(TOP_KEYS, top, "A routine voiceguide turns into one MP3 that talks you through it",
                  required=["title", "steps"]),
        "definitions": {
            **_common(),
            "texts": {"anyOf": [_ref("text"), {"type": "array", "items": _ref("text")}]},
            "line": {"description": "The line to say", "anyOf": [
                _ref("text"), {"type": "array", "items": _ref("text"), "maxItems": 1}]},
            "chime": _sound(BUILTIN_CHIMES, "A built-in chime, or a sound file relative to this file"),
            "flag": {"anyOf": [{"type": "boolean"}, {"enum": list(TRUE_WORDS + FALSE_WORDS)}]},
            "off": {"anyOf": [{"const": False}, {"enum": list(FALSE_WORDS)}]},
            **_cue_definitions(),
            **_step_definitions(),
        },
    }


def _phrase_shapes() -> dict[str, Schema]:
    shapes = {key: _ref("text", f"The words of the {key} cue") for key in PHRASE_KEYS}
    shapes.update({key: _ref("text", f"The word for '{key}'") for key in UNIT_PHRASES})
    shapes["chapter"] = _ref("text", "A round's chapter title, with chapters: rounds")
    shapes["numbers"] = {"enum": ["words", "digits"],
                         "description": "words (English number words) or digits (read by the voice in its language)"}
    return shapes


def profile_schema(keys: tuple[str, ...], most_scale: float) -> Schema:
    """The JSON Schema of a profile file (--profile): standing preferences for any routine. Its ``keys`` and the
    largest hold-scale are the profile loader's (overrides.PROFILE_KEYS and MAX_SCALE)."""
    shapes: dict[str, Schema] = {
        "holds": {"type": "object", "description": "Holds by step id, for every routine that has the step",
                  "additionalProperties": _ref("positive-duration")},
        "hold-scale": {"type": "number", "exclusiveMinimum": 0, "maximum": most_scale,
                       "description": "Multiply every hold not set under 'holds'"},
        "fit": {**_durations(positive=True, most_ms=MAX_SESSION_MS),
                "description": "How long the whole session lasts; the other holds are scaled to it"},
        "voice": _ref("voice"),
        "language": _ref("language"),
    }
    return {
        "$schema": DRAFT,
        "$id": PROFILE_ID,
        "title": "voiceguide profile",
        **_object(keys, shapes, "Your standing preferences, for every routine",
                  **_not_both("fit", "hold-scale")),
        "definitions": _common(),
    }


__all__ = ["MODELINE", "PROFILE_SCHEMA_FILE", "ROUTINE_SCHEMA_FILE", "profile_schema", "routine_schema"]

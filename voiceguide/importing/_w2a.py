"""w2a's workout files (github.com/mrclmr/w2a): a list of exercises, each with a duration, and a pause before
each, announcements, a side switch at half time; read as a voiceguide routine.

What w2a does with them, as its source (cmd/w2a/root.go, internal/config) shows: before every exercise it
plays a pause (`pause.duration`, or the exercise's `pause_duration`) that speaks `pause.text` and counts down
five seconds; the exercise then lasts `duration`, with `exercise_beginning` and its `texts` spoken at its start
and a five-second countdown at its end; with `half_time: true`, `half_time.text` is spoken at the middle and
`half_time.duration` is added there to change sides. Durations are Go durations (`30s`, `1m30s`), never bare
numbers. Texts may use Go template values such as `{{ .ExerciseName }}`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from voiceguide.errors import Location
from voiceguide.importing._shared import Draft, Reading, duration_text, escape, title_from_name
from voiceguide.yamlfile import YList, YMap, read_yaml

KIND = "w2a workout"
TOP_KEYS = ("tts", "audio_format", "log_level", "i18n", "before_workout_announce", "after_workout_announce",
            "pause", "half_time", "exercise_beginning", "exercises")
EXERCISE_KEYS = ("name", "duration", "texts", "half_time", "pause_duration")
# w2a counts down the last five seconds of each exercise (and of each pause).
COUNTDOWN = 5
# Go's duration units, in milliseconds.
_UNITS = {"ns": Decimal("0.000001"), "us": Decimal("0.001"), "µs": Decimal("0.001"), "μs": Decimal("0.001"),
          "ms": Decimal(1), "s": Decimal(1000), "m": Decimal(60_000), "h": Decimal(3_600_000)}
_GO_DURATION = re.compile(r"[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+|[+-]?0")
_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_TEMPLATE = re.compile(r"\{\{(-?)(.*?)(-?)\}\}", re.S)
_FIELD = re.compile(r"\s*\.(\w+)\s*")
FIELDS = ("WorkoutExercisesCount", "WorkoutDuration", "WorkoutDurationWithoutPauses", "ExerciseDuration",
          "ExerciseName")
ENGLISH = {"and": "and", "minute": ("minute", "minutes"), "second": ("second", "seconds")}
# In a line of the exercise itself, its duration is the hold, and follows any change made with --hold.
HOLD = object()


def read(path: str, text: str) -> tuple[Draft, Reading]:
    """The routine the w2a workout file at ``path``, holding ``text``, stands for, and what could not be
    carried over."""
    reading = Reading(path)
    data, where = read_yaml(path, KIND, reading.problems)
    if not isinstance(data, YMap):
        reading.problem(where, "a w2a workout is a mapping with 'exercises'; this file holds something else")
        reading.stop_if_wrong()
    if "exercises" not in data:
        if "steps" in data:
            reading.problem(where, "this is a voiceguide routine already (it has 'steps'); check it with "
                                   "`voiceguide check`")
        else:
            reading.problem(where, "a w2a workout needs 'exercises', a list of exercises with a name and a duration")
        reading.stop_if_wrong()
    return _Workout(reading, data, text.splitlines()).draft(), reading


class _Workout:
    def __init__(self, reading: Reading, data: YMap, lines: list[str]):
        self.reading = reading
        self.data = data
        self.lines = lines
        self.units = self._i18n()

    def draft(self) -> Draft:
        reading, data = self.reading, self.data
        for key in data:
            if key not in TOP_KEYS and not self._anchor(key):
                reading.lose(data.key_at[key], f"unknown key '{key}' in a w2a workout: not carried over")
        pause_text, pause_ms = self._announce("pause")
        half_text, half_ms = self._announce("half_time")
        beginning = self._template(data, "exercise_beginning")
        exercises = self._exercises()
        reading.stop_if_wrong()

        settings: dict[str, Any] = {"title": title_from_name(reading.path)}
        voice = self._voice()
        if voice:
            settings["voice"] = voice
        if self.units != ENGLISH:
            # w2a says durations with digits and its own words for the units; so does the routine.
            settings["phrases"] = {"second": self.units["second"][0], "seconds": self.units["second"][1],
                                   "minute": self.units["minute"][0], "minutes": self.units["minute"][1],
                                   "numbers": "digits"}
        settings["countdown"] = COUNTDOWN
        count = len(exercises)
        total = sum(ms for _, _, ms, _ in exercises) + count * pause_ms
        values: dict[str, Any] = {
            "WorkoutExercisesCount": str(count), "WorkoutDuration": self._words(total),
            "WorkoutDurationWithoutPauses": self._words(sum(ms for _, _, ms, _ in exercises)),
            "ExerciseName": "", "ExerciseDuration": ""}
        intro = self._template(data, "before_workout_announce")
        if intro is not None:
            settings["intro"] = self._fill(intro, values)
        header = [f"Imported from the w2a workout {Path(reading.path).name} by `voiceguide import`.",
                  "Each exercise is a step holding for its duration, with a five-second countdown; the pause",
                  "before it is a step of its own, silent for the pause's duration after its line.",
                  "An exercise with half_time holds each half and rests between them to change sides."]
        draft = Draft(header, settings)
        for exercise, where, ms, pause_override in exercises:
            values = dict(values, ExerciseName=exercise["name"], ExerciseDuration=self._words(ms))
            pause = pause_override or pause_ms
            if pause_text is not None or pause:
                draft.step(f"w2a: the pause before '{exercise['name']}' (line {where.line})", "Pause",
                           say=self._fill(pause_text, values) if pause_text is not None else None,
                           rest=duration_text(pause) if pause else None)
            at_hold = dict(values, ExerciseDuration=HOLD)
            lines = [self._fill(beginning, at_hold)] if beginning is not None else []
            lines += [escape(line) for line in exercise["texts"]] or ([] if lines else [escape(exercise["name"])])
            keys: dict[str, Any] = {"say": lines[0] if len(lines) == 1 else lines}
            if exercise["half_time"]:
                keys.update(hold=duration_text(ms // 2), repeat=2,
                            rest_between=duration_text(half_ms),
                            between=self._fill(half_text, at_hold) if half_text is not None else None)
                if ms % 2:
                    self.reading.lose(where, f"'{exercise['name']}': half of {duration_text(ms)} is not a whole "
                                             f"millisecond; each half holds {duration_text(ms // 2)}")
            else:
                keys["hold"] = duration_text(ms)
            draft.step(f"w2a: exercise {exercise['name']!r} (line {where.line})", exercise["name"], **keys)
        outro = self._template(data, "after_workout_announce")
        if outro is not None:
            # w2a fills the closing words after the last exercise, which its values still name.
            draft.settings["outro"] = self._fill(outro, values)
        return draft

    def _anchor(self, key: str) -> bool:
        """Whether a key holds a value named with an anchor (`&squats`) for use elsewhere (`<<: *squats`), as
        w2a's example does: YAML's way to write an exercise once, not a setting."""
        at = self.data.value_at[key]
        line = self.lines[at.line - 1] if 0 < at.line <= len(self.lines) else ""
        return line[at.column - 1 : at.column] == "&"

    def _exercises(self) -> list[tuple[dict[str, Any], Location, int, int]]:
        """Each exercise's name, texts and half_time, its place, duration and own pause (0: the workout's)."""
        value, where = self.data["exercises"], self.data.at("exercises")
        if not isinstance(value, YList) or not value:
            self.reading.problem(where, "'exercises' must be a list of exercises, each with a name and a duration")
            return []
        found = []
        for item, at in zip(value, value.item_at):
            if not isinstance(item, YMap):
                self.reading.problem(at, "an exercise is a mapping with a name and a duration, such as "
                                         "{name: Squats, duration: 30s}")
                continue
            for key in item:
                if key not in EXERCISE_KEYS:
                    self.reading.lose(item.key_at[key], f"unknown key '{key}' in an exercise: not carried over")
            name = item.raw.get("name") if isinstance(item.get("name"), (str, int, float)) else None
            if not name or not name.strip():
                self.reading.problem(item.at("name") if "name" in item else at,
                                     "an exercise needs a 'name', the text of its title")
                continue
            ms = self._duration(item, "duration", at, required=True)
            pause = self._duration(item, "pause_duration", at) if "pause_duration" in item else 0
            texts = self._texts(item)
            half = item.get("half_time", False)
            if not isinstance(half, bool):
                self.reading.problem(item.at("half_time"), "'half_time' must be true or false")
            if half and "half_time" not in self.data:
                self.reading.problem(item.at("half_time"), "this exercise switches at half time, and the workout "
                                                           "has no 'half_time' with its text and duration")
            if ms:
                found.append(({"name": name.strip(), "texts": texts, "half_time": half is True}, at, ms, pause or 0))
        return found

    def _texts(self, item: YMap) -> list[str]:
        value = item.get("texts")
        if value is None:
            return []
        if not isinstance(value, YList) or not value:
            self.reading.problem(item.at("texts"), "'texts' must be a list of lines to say")
            return []
        lines = []
        for text, at in zip(value, value.item_at):
            if not isinstance(text, (str, int, float)) or isinstance(text, bool):
                self.reading.problem(at, "each of 'texts' must be a line to say")
            # w2a says these as written: a `{{` in them is no template.
            elif self.reading.spoken(str(text), at, "texts") is not None:
                lines.append(str(text).strip())
        return lines

    def _duration(self, data: YMap, key: str, where: Location, required: bool = False) -> int:
        """A Go duration in milliseconds; 0 (with a problem if it is required) when missing or wrong."""
        if key not in data or data[key] is None:
            if required:
                self.reading.problem(where, f"this exercise has no '{key}'; w2a needs one, such as {key}: 30s")
            return 0
        value, at = data[key], data.at(key)
        text = data.raw.get(key, str(value)).strip()
        if not isinstance(value, str) or not _GO_DURATION.fullmatch(text):
            self.reading.problem(at, f"'{key}' must be a Go duration such as 30s, 1m30s or 2.5s (w2a reads no "
                                     f"bare numbers), got {text!r}")
            return 0
        if text.startswith("-"):
            self.reading.problem(at, f"'{key}' cannot be negative, got {text!r}")
            return 0
        try:
            exact = sum((Decimal(number) * _UNITS[unit] for number, unit in _PART.findall(text)), Decimal(0))
        except InvalidOperation:
            self.reading.problem(at, f"'{key}': cannot read {text!r} as a duration")
            return 0
        ms = int(exact.to_integral_value())
        if ms != exact:
            self.reading.lose(at, f"'{key}' {text} is kept to the millisecond: {duration_text(ms)}")
        if ms == 0 and required:
            self.reading.problem(at, f"'{key}' must be longer than zero, got {text!r}")
        return ms

    def _announce(self, key: str) -> tuple[str | None, int]:
        """The text and duration of `pause` or `half_time`."""
        if key not in self.data or self.data[key] is None:
            return None, 0
        value = self.data[key]
        if not isinstance(value, YMap):
            self.reading.problem(self.data.at(key), f"'{key}' must be a mapping with 'text' and 'duration'")
            return None, 0
        for inner in value:
            if inner not in ("text", "duration"):
                self.reading.lose(value.key_at[inner], f"unknown key '{inner}' in '{key}': not carried over")
        return self._template(value, "text"), self._duration(value, "duration", value.where)

    def _template(self, data: YMap, key: str) -> str | None:
        """A text with Go template values, checked; None when absent."""
        if key not in data or data[key] is None:
            return None
        value, at = data[key], data.at(key)
        if not isinstance(value, str) or not value.strip():
            self.reading.problem(at, f"'{key}' must be a text to say")
            return None
        for match in _TEMPLATE.finditer(value):
            found = _FIELD.fullmatch(match.group(2))
            if not found or found.group(1) not in FIELDS:
                self.reading.problem(at, f"'{key}': the template {match.group()!r} cannot be carried over; "
                                         f"w2a's values are {', '.join('{{ .' + name + ' }}' for name in FIELDS)}")
                return None
        rest = _TEMPLATE.sub("", value)
        if "{{" in rest or "}}" in rest:
            self.reading.problem(at, f"'{key}': a '{{{{' without its '}}}}' (or the other way round) in {value!r}")
            return None
        return value if self.reading.spoken(_TEMPLATE.sub("x", value), at, key) is not None else None

    def _fill(self, template: str, values: Mapping[str, Any]) -> str:
        """The template as a voiceguide line: its values written in, the exercise's duration as {hold}."""
        parts: list[str] = []
        last = 0
        trim_next = False
        for match in _TEMPLATE.finditer(template):
            literal = template[last:match.start()]
            literal = literal.lstrip() if trim_next else literal
            parts.append(escape(literal.rstrip() if match.group(1) else literal))
            found = _FIELD.fullmatch(match.group(2))
            assert found is not None
            value = values[found.group(1)]
            parts.append("{hold}" if value is HOLD else escape(value))
            last, trim_next = match.end(), bool(match.group(3))
        tail = template[last:]
        parts.append(escape(tail.lstrip() if trim_next else tail))
        return " ".join("".join(parts).split())

    def _words(self, ms: int) -> str:
        """A duration as w2a says it: whole seconds, in minutes and seconds, with the workout's words."""
        minutes, seconds = divmod(ms // 1000, 60)

        def amount(count: int, unit: str) -> str:
            singular, plural = self.units[unit]
            return f"1 {singular}" if count == 1 else f"{count} {plural}"

        if minutes == 0:
            return amount(seconds, "second")
        if seconds == 0:
            return amount(minutes, "minute")
        return f"{amount(minutes, 'minute')} {self.units['and']} {amount(seconds, 'second')}"

    def _i18n(self) -> dict[str, Any]:
        value = self.data.get("i18n")
        if value is None:
            return ENGLISH
        if not isinstance(value, YMap):
            self.reading.problem(self.data.at("i18n"), "'i18n' must be a mapping with 'and', 'minute' and 'second'")
            return ENGLISH
        units: dict[str, Any] = dict(ENGLISH)
        for key in value:
            if key not in ENGLISH:
                self.reading.lose(value.key_at[key], f"unknown key '{key}' in 'i18n': not carried over")
        if isinstance(value.get("and"), str) and value["and"].strip():
            units["and"] = value["and"].strip()
        for unit in ("minute", "second"):
            words = value.get(unit)
            if words is None:
                continue
            if not isinstance(words, YMap) or not all(isinstance(words.get(k), str) and words[k].strip()
                                                      for k in ("singular", "plural")):
                self.reading.problem(value.at(unit), f"'{unit}' must have 'singular' and 'plural', each a word")
                continue
            units[unit] = (words["singular"].strip(), words["plural"].strip())
        return units

    def _voice(self) -> str | None:
        """The voice w2a's TTS names, as a voice of voiceguide's default engine (espeak-ng on Linux, the
        system's voices on macOS)."""
        value = self.data.get("tts")
        if not isinstance(value, YMap):
            return None
        named = {key: value[key].strip() for key in ("espeak_ng_voice", "say_voice")
                 if isinstance(value.get(key), str) and value[key].strip()}
        for key in value:
            if key == "custom_command":
                self.reading.lose(value.key_at[key], "tts.custom_command: not carried over; voiceguide speaks with "
                                                     "its own engines (pyttsx3, piper): choose one with voice:")
            elif key not in ("espeak_ng_voice", "say_voice"):
                self.reading.lose(value.key_at[key], f"unknown key '{key}' in 'tts': not carried over")
        # espeak-ng's voices are the default engine's wherever espeak-ng runs (Linux, and the bundled one); a
        # macOS voice's name is kept only when it is all there is, and said to be one.
        if "espeak_ng_voice" in named:
            if "say_voice" in named:
                self.reading.lose(value.key_at["say_voice"], f"tts.say_voice '{named['say_voice']}' (a macOS voice) "
                                                             "not carried over: the espeak-ng voice is kept")
            return named["espeak_ng_voice"]
        if "say_voice" in named:
            self.reading.lose(value.key_at["say_voice"], f"tts.say_voice '{named['say_voice']}' kept as voice:, a "
                                                         "macOS voice other systems lack; `voiceguide voices` lists "
                                                         "this one's")
            return named["say_voice"]
        return None

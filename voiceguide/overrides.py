"""Hold and voice settings from outside the routine file: --hold, --hold-scale, --profile.

A person tunes a routine to their body without editing it; this module turns
their settings into a changed Routine, before anything is planned.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from voiceguide.durations import DurationError, format_clock, parse_duration
from voiceguide.errors import InputError, Location, Problem, RoutineError
from voiceguide.routine import MAX_SESSION_MS, Checker, Routine, Step, Voice, did_you_mean, minimum_length
from voiceguide.yamlfile import read_yaml

PROFILE_KEYS = ("holds", "hold-scale", "voice")
MAX_SCALE = 100.0


@dataclass(frozen=True)
class HoldSetting:
    """One explicit hold and where it was asked for, so an unknown id can be reported there."""

    ms: int
    source: str


@dataclass(frozen=True)
class Overrides:
    holds: dict[str, HoldSetting] = field(default_factory=dict)
    hold_scale: float | None = None
    voice: Voice = field(default_factory=Voice)

    def over(self, base: Overrides) -> Overrides:
        """These settings winning over ``base`` (the command line over a profile)."""
        return Overrides(
            holds={**base.holds, **self.holds},
            hold_scale=self.hold_scale if self.hold_scale is not None else base.hold_scale,
            voice=self.voice.over(base.voice),
        )


def check_scale(value: float) -> float:
    if not 0 < value <= MAX_SCALE:
        raise ValueError(f"must be above 0 and at most {MAX_SCALE:g}, got {value:g}")
    return value


def load_profile(path: str | os.PathLike[str], engines: Sequence[str]) -> Overrides:
    """Read the profile file at ``path``, whose voice may name ``engines``; raise RoutineError listing every
    problem in it."""
    checker = Checker(engines)
    data, where = read_yaml(path, "profile", checker.problems)
    table = checker.mapping(data, where, "a profile", PROFILE_KEYS)
    holds: dict[str, HoldSetting] = {}
    scale = None
    voice = Voice()
    if table is not None:
        if "holds" in table:
            entries = checker.mapping(table["holds"], table.at("holds"), "'holds'", None)
            if entries is not None:
                for step_id in entries:
                    ms = checker.duration(entries, step_id, allow_zero=False)
                    if ms is not None:
                        holds[step_id] = HoldSetting(ms, str(entries.key_at[step_id]))
        if "hold-scale" in table:
            value = table["hold-scale"]
            try:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError("must be a number such as 1.5")
                scale = check_scale(float(value))
            except ValueError as error:
                checker.problem(table.at("hold-scale"), f"'hold-scale' {error}")
        voice = checker.voice(table, "voice") or Voice()
    if checker.problems:
        raise RoutineError(sorted(checker.problems, key=lambda p: (p.where.line, p.where.column)))
    return Overrides(holds=holds, hold_scale=scale, voice=voice)


def apply_overrides(routine: Routine, overrides: Overrides) -> Routine:
    """The routine with its holds set and scaled; unknown ids are reported with the valid ones."""
    valid = routine.hold_ids()
    problems = []
    for step_id, setting in overrides.holds.items():
        if step_id not in valid:
            if valid:
                message = f"no step with id '{step_id}' has a hold{did_you_mean(step_id, valid)} (valid ids: {', '.join(valid)})"
            else:
                message = f"no step with id '{step_id}' has a hold; this routine has no holds"
            problems.append(Problem(Location(setting.source), message))
    if problems:
        # A profile's problems already carry FILE:LINE:COL; a --hold option names itself.
        raise RoutineError(problems)
    scale = overrides.hold_scale or 1.0

    def adjust(step: Step) -> Step:
        hold = step.hold
        if hold is not None:
            setting = overrides.holds.get(step.id)
            hold = setting.ms if setting else max(1, round(hold * scale))
        return dataclasses.replace(step, hold=hold, steps=tuple(adjust(s) for s in step.steps))

    adjusted = dataclasses.replace(routine, steps=tuple(adjust(s) for s in routine.steps))
    # Checked here, before any speech is made for a session that cannot be built.
    least = sum(minimum_length(step) for step in adjusted.steps)
    if least > MAX_SESSION_MS:
        raise InputError(f"{routine.path}: with these holds the session would last more than 12 hours "
                         f"(holds and rests alone: {format_clock(least)})")
    return adjusted


def parse_hold_option(text: str) -> tuple[str, int]:
    """Split ``ID=DURATION`` from --hold; raise ValueError with a message for the user."""
    step_id, sep, duration = text.partition("=")
    if not sep or not step_id.strip() or not duration.strip():
        raise ValueError(f"expected ID=DURATION such as tennis-balls=90s, got {text!r}")
    try:
        ms = parse_duration(duration.strip())
    except DurationError as error:
        raise ValueError(str(error)) from None
    if ms == 0:
        raise ValueError(f"a hold must be longer than zero, got {text!r}")
    return step_id.strip(), ms

"""Hold and voice settings from outside the routine file: --hold, --hold-scale, --fit, --profile.

A person tunes a routine to their body without editing it; this module turns
their settings into a changed Routine, before anything is planned.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from voiceguide.durations import DurationError, format_clock, parse_duration
from voiceguide.errors import InputError, Location, Problem, RoutineError
from voiceguide.routine import MAX_SESSION_MS, Checker, Routine, Step, Voice, did_you_mean, minimum_length
from voiceguide.routine.checker import closest
from voiceguide.yamlfile import read_yaml

PROFILE_KEYS = ("holds", "hold-scale", "fit", "voice", "language")
MAX_SCALE = 100.0


@dataclass(frozen=True)
class HoldSetting:
    """One explicit hold and where it was asked for, so an unknown id can be reported there.

    An ``optional`` hold (a profile's) applies only to a routine that has its
    step: a profile is shared between routines, a --hold is meant for this one.
    """

    ms: int
    source: str
    optional: bool = False


@dataclass(frozen=True)
class Fit:
    """How long the whole session is to last; the holds not set explicitly are scaled to reach it."""

    ms: int
    source: str  # where it was asked for, for messages: "--fit 20m" or the profile's FILE:LINE:COL


@dataclass(frozen=True)
class Overrides:
    holds: dict[str, HoldSetting] = field(default_factory=dict)
    hold_scale: float | None = None
    voice: Voice = field(default_factory=Voice)
    fit: Fit | None = None

    def over(self, base: Overrides) -> Overrides:
        """These settings winning over ``base`` (the command line over a profile).

        hold-scale and fit both say how long the other holds are: whichever of
        them these settings give replaces both of the base's.
        """
        sized = self.hold_scale is not None or self.fit is not None
        return Overrides(
            holds={**base.holds, **self.holds},
            hold_scale=self.hold_scale if sized else base.hold_scale,
            voice=self.voice.over(base.voice),
            fit=self.fit if sized else base.fit,
        )


def check_scale(value: float) -> float:
    if not 0 < value <= MAX_SCALE:
        raise ValueError(f"must be above 0 and at most {MAX_SCALE:g}, got {value:g}")
    return value


def check_fit(ms: int) -> int:
    """A session length for --fit or `fit:`; raise ValueError with a message for the user."""
    if ms <= 0:
        raise ValueError("a session must last longer than zero")
    if ms > MAX_SESSION_MS:
        raise ValueError(f"a session may last at most 12 hours, got {format_clock(ms)}")
    return ms


def parse_fit(text: str, source: str) -> Fit:
    """``20m`` from --fit (or the Python API) as a Fit; raise ValueError with a message for the user."""
    try:
        return Fit(check_fit(parse_duration(text.strip())), source)
    except DurationError as error:
        raise ValueError(str(error)) from None


def load_profile(path: str | os.PathLike[str], engines: Sequence[str]) -> Overrides:
    """Read the profile file at ``path``, whose voice may name ``engines``; raise RoutineError listing every
    problem in it."""
    checker = Checker(engines)
    data, where = read_yaml(path, "profile", checker.problems)
    table = checker.mapping(data, where, "a profile", PROFILE_KEYS)
    holds: dict[str, HoldSetting] = {}
    scale = None
    fit = None
    voice = Voice()
    if table is not None:
        if "holds" in table:
            entries = checker.mapping(table["holds"], table.at("holds"), "'holds'", None)
            if entries is not None:
                for step_id in entries:
                    ms = checker.duration(entries, step_id, allow_zero=False)
                    if ms is not None:
                        holds[step_id] = HoldSetting(ms, str(entries.key_at[step_id]), optional=True)
        if "fit" in table:
            ms = checker.duration(table, "fit", allow_zero=False)
            if ms is not None:
                try:
                    fit = Fit(check_fit(ms), str(table.at("fit")))
                except ValueError as error:
                    checker.problem(table.at("fit"), f"'fit': {error}")
            if "hold-scale" in table:
                checker.problem(table.at("fit"), "'fit' and 'hold-scale' both say how long the holds are; keep one")
        if "hold-scale" in table:
            value = table["hold-scale"]
            try:
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError("must be a number such as 1.5")
                scale = check_scale(float(value))
            except ValueError as error:
                checker.problem(table.at("hold-scale"), f"'hold-scale' {error}")
        voice = checker.voice(table, "voice") or Voice()
        language = checker.language(table)
        if language is not None:
            voice = dataclasses.replace(voice, language=language, language_at=table.at("language"))
    if checker.problems:
        raise RoutineError(sorted(checker.problems, key=lambda p: (p.where.line, p.where.column)))
    return Overrides(holds=holds, hold_scale=scale, voice=voice, fit=fit)


def apply_overrides(routine: Routine, overrides: Overrides) -> Routine:
    """The routine with its holds set and scaled; unknown ids are reported with the valid ones, but for a
    profile's, which are skipped (see skipped_holds)."""
    valid = routine.hold_ids()
    problems = []
    for step_id, setting in overrides.holds.items():
        if step_id not in valid and not setting.optional:
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
    if overrides.voice.language:
        # A profile's language is the listener's: it wins over the routine's, as its voice does.
        phrases = routine.phrases.in_language(overrides.voice.language, Location(str(routine.path)))
        adjusted = dataclasses.replace(adjusted, phrases=phrases)
    # Checked here, before any speech is made for a session that cannot be built.
    least = sum(minimum_length(step) for step in adjusted.steps)
    if least > MAX_SESSION_MS:
        raise InputError(f"{routine.path}: with these holds the session would last more than 12 hours "
                         f"(holds and rests alone: {format_clock(least)})")
    return adjusted


def skipped_holds(routine: Routine, overrides: Overrides) -> Problem | None:
    """A note on a profile's holds that ``routine`` has no step for, which apply_overrides skips; None if none."""
    valid = routine.hold_ids()
    skipped = [(step_id, setting) for step_id, setting in overrides.holds.items()
               if setting.optional and step_id not in valid]
    if not skipped:
        return None
    names = []
    for step_id, _ in skipped:
        meant = closest(step_id, valid)
        names.append(f"'{step_id}'" + (f" (did you mean '{meant}'?)" if meant else ""))
    listed = names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
    return Problem(Location(skipped[0][1].source), f"note: no step with id {listed} has a hold in this routine; skipped")


def set_holds(routine: Routine, holds: Mapping[str, int]) -> Routine:
    """The routine with the steps named in ``holds`` holding that many ms instead."""

    def change(step: Step) -> Step:
        hold = holds.get(step.id, step.hold) if step.hold is not None else None
        return dataclasses.replace(step, hold=hold, steps=tuple(change(s) for s in step.steps))

    return dataclasses.replace(routine, steps=tuple(change(s) for s in routine.steps))


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

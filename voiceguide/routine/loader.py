"""Routine files: load a YAML routine, check all of it, and return plain data (model.py).

Every problem in a file is collected and reported at once as FILE:LINE:COL,
so a person fixes their routine in one pass instead of one error per run.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from voiceguide.errors import Location, RoutineError, quote
from voiceguide.routine.checker import _kind, _order, slug
from voiceguide.routine.cues import CueChecker
from voiceguide.routine.model import (
    DEFAULT_PAUSE_MS,
    GROUP_KEYS,
    INTERVAL_NAMES,
    MAX_NESTING,
    MAX_SIDES,
    RESERVED_IDS,
    STEP_KEYS,
    TEMPLATE_NAMES,
    TOP_KEYS,
    CueSettings,
    Routine,
    Step,
    Voice,
    too_big,
)
from voiceguide.routine.phrases import ENGLISH
from voiceguide.yamlfile import YList, YMap, read_yaml

_ID = re.compile(r"[a-z0-9][a-z0-9_-]*")


def load_routine(path: str | os.PathLike[str], engines: Sequence[str]) -> Routine:
    """Read and check the routine file at ``path``, whose voices may name ``engines``; raise RoutineError
    listing every problem."""
    checker = _RoutineChecker(Path(path), engines)
    data, where = read_yaml(path, "routine", checker.problems)
    routine = checker.routine(data, where)
    if checker.problems:
        raise RoutineError(sorted(checker.problems, key=_order))
    assert routine is not None
    return routine


class _RoutineChecker(CueChecker):
    def __init__(self, path: Path, engines: Sequence[str]):
        super().__init__(path, engines)
        self.ids: dict[str, Location] = {}

    def routine(self, value: Any, where: Location) -> Routine | None:
        data = self.mapping(value, where, "a routine", TOP_KEYS)
        if data is None:
            return None
        title = self.text(data, "title", "a routine", required=True)
        description = self.text(data, "description", "a routine") or ""
        self.vars = self._vars(data)
        language = self.language(data)
        voice = self.voice(data, "voice") or Voice()
        if language is not None:
            voice = replace(voice, language=language, language_at=data.at("language"))
        chime = self._chime(data)
        pause = self.duration(data, "pause", allow_zero=True)
        intro = self._texts(data, "intro", scope=())
        outro = self._texts(data, "outro", scope=())
        phrases = self._phrases(data, language or ENGLISH)
        # Defaults apply to steps of any shape, so their texts may use only what every hold has.
        cue_settings = self._cue_settings(data, ("hold", "repeat", "repeats") + INTERVAL_NAMES)
        lead_in, lead_in_ms = self._lead_in(data)
        closing, closing_strikes = self._closing(data)
        cover = self._file(data, "cover", "cover image")
        background = self._background(data) if "background" in data else None
        for reserved in RESERVED_IDS:
            self.ids[reserved] = data.where
        steps: tuple[Step, ...] = ()
        if "steps" not in data:
            self.problem(data.where, "a routine needs 'steps', a list of at least one step")
        else:
            steps = self._steps(data["steps"], data.at("steps"), scope=(), top=True)
            if steps:
                self._check_size(steps, cue_settings)
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
            cue_settings=cue_settings,
            lead_in=lead_in,
            lead_in_ms=lead_in_ms,
            closing=closing,
            closing_strikes=closing_strikes,
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

    def _steps(self, value: Any, where: Location, scope: tuple[str, ...], top: bool = False,
               depth: int = 0) -> tuple[Step, ...]:
        """The steps of the routine (``depth`` 0) or of a group ``depth`` groups deep."""
        if not isinstance(value, YList) or not value:
            self.problem(where, f"'steps' must be a list of at least one step, got {_kind(value)}")
            return ()
        if depth > MAX_NESTING:
            self.problem(where, f"groups nest more than {MAX_NESTING} deep here; a routine may nest groups at most "
                                f"{MAX_NESTING} deep")
            return ()
        steps = []
        for item, item_where in zip(value, value.item_at):
            step = self._step(item, item_where, scope, top, depth)
            if step is not None:
                steps.append(step)
        return tuple(steps)

    def _step(self, value: Any, where: Location, scope: tuple[str, ...], top: bool, depth: int) -> Step | None:
        is_group = isinstance(value, YMap) and "steps" in value
        # Keys of the other kind are flagged below with a clearer message.
        keys = STEP_KEYS + tuple(k for k in GROUP_KEYS if k not in STEP_KEYS)
        data = self.mapping(value, where, "a group" if is_group else "a step", keys)
        if data is None:
            return None
        for key in data:
            if key in ("hold", "repeat", "between", "rest-between") and is_group:
                self.problem(data.key_at[key], f"'{key}' belongs on a step; a group has 'rounds' and 'steps'")
            elif key in ("rounds", "strict", "chapters", "last-round") and not is_group:
                self.problem(data.key_at[key], f"'{key}' belongs on a group (a step with 'steps')")
        title = self.text(data, "title", "a step", required=True) or ""
        step_id = self._id(data, title, where)
        sides = self._sides(data)
        repeat = self.count(data, "repeat") or 1
        rounds = self.count(data, "rounds") or 1
        hold = self.duration(data, "hold", allow_zero=False)
        rest_between = self.duration(data, "rest-between", allow_zero=True) or 0
        for key in ("between", "rest-between"):
            if key in data and repeat == 1 and not is_group:
                self.problem(data.key_at[key], f"'{key}' is {'spoken' if key == 'between' else 'a rest'} between "
                                               "repetitions; add 'repeat' of 2 or more")
        strict = self.flag(data, "strict") if is_group else False
        chapters = self._chapters(data, rounds, top) if is_group else None

        inner = scope + (("side",) if sides else ())
        if is_group:
            # A group's texts may count the work intervals (holds) of the circuit: {interval} of {intervals}.
            inner += ("round", "rounds") + tuple(name for name in INTERVAL_NAMES if name not in inner)
            say_scope = inner
        else:
            with_hold = ("hold",) + tuple(name for name in INTERVAL_NAMES if name not in inner) if hold is not None else ()
            say_scope = inner + ("repeat", "repeats") + with_hold
        say = self._texts(data, "say", say_scope)
        between = self._texts(data, "between", say_scope)
        # Cue texts inside a group apply to the steps in it, which each have a hold.
        cue_settings = self._cue_settings(data, say_scope + ("hold", "repeat", "repeats") if is_group else say_scope)
        steps = self._steps(data["steps"], data.at("steps"), inner, depth=depth + 1) if is_group else ()
        return Step(
            id=step_id,
            title=title,
            where=where,
            say=say,
            hold=hold,
            hold_at=data.at("hold") if hold is not None else None,
            repeat=repeat,
            between=between,
            rest_between=rest_between if not is_group else 0,
            sides=sides,
            rest=self.duration(data, "rest", allow_zero=True) or 0,
            chime=self._chime(data),
            voice=self.voice(data, "voice"),
            steps=steps,
            rounds=rounds,
            cue_settings=cue_settings,
            strict=strict,
            chapters=chapters,
        )

    def flag(self, data: YMap, key: str) -> bool:
        """A true/false setting; false when absent."""
        if key not in data:
            return False
        value = data[key]
        if not isinstance(value, bool):
            self.problem(data.at(key), f"'{key}' must be true or false, got {_kind(value)}")
            return False
        return value

    def _chapters(self, data: YMap, rounds: int, top: bool) -> str | None:
        """`chapters: rounds`: a chapter for each round of a group at the top of the routine."""
        if "chapters" not in data:
            return None
        value, at = data["chapters"], data.at("chapters")
        if value != "rounds":
            self.problem(at, f"'chapters' must be rounds (a chapter for each round), got {_kind(value)}")
        elif not top:
            self.problem(at, "'chapters: rounds' works on a group at the top of the routine's 'steps'")
        elif rounds < 2:
            self.problem(at, "'chapters: rounds' needs 'rounds' of 2 or more")
        else:
            return value
        return None

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
        if len(value) > MAX_SIDES:
            self.problem(data.at("sides"), f"'sides' lists {len(value)} sides; a step or group may have at most {MAX_SIDES}")
            return ()
        sides: dict[str, None] = {}  # in order, each once
        for item, at, raw in zip(value, value.item_at, value.raw):
            name = raw if raw is not None and not isinstance(item, (YMap, YList)) else None
            if not name or not name.strip():
                self.problem(at, "each side must be a name such as left or right")
            elif name in sides:
                self.problem(at, f"side {quote(name)} is listed twice")
            else:
                sides[name] = None
        return tuple(sides)

    def _check_size(self, steps: tuple[Step, ...], settings: CueSettings) -> None:
        """Refuse sessions over 12 hours or MAX_EVENTS before anything is expanded in memory."""
        found = too_big(steps, settings)
        if found is not None:
            self.problem(found[0].where, found[1])

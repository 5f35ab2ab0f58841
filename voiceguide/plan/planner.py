"""Plan a session: expand a routine into parts, then place them on the timeline.

Expanding fills in templates and unrolls sides, repetitions and rounds, with
every cue attached to the hold or rest it sits in; it needs no audio. Placing
(placing.py) gives each part its time from the real lengths of the clips.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TypeVar

from voiceguide.errors import Location, Problem, RoutineError, quote
from voiceguide.plan.parts import Chapter, Part, Section
from voiceguide.plan.placing import REMAINING_MARGIN_MS, place
from voiceguide.plan.strict import strict_block
from voiceguide.plan.timeline import Context, CueKind, Line
from voiceguide.routine import (
    DEFAULT_CHIME,
    DEFAULT_SWITCH_GAP_MS,
    MAX_LINE_CHARS,
    CueSettings,
    Routine,
    Signal,
    Sound,
    Step,
    Text,
    Voice,
    intervals,
    speakable,
    too_big,
)

__all__ = ["Part", "Section", "expand", "lines_of", "place", "sounds_of"]

T = TypeVar("T")
# Different lines a session may speak, cues included: far more than any routine says (the samples, 20 to 50),
# and few enough to speak in minutes. `remaining: {every: 1s}` through long holds would otherwise queue tens of
# thousands of lines, each taken for a new clip.
MAX_LINES = 2_000


def expand(routine: Routine, chosen_voice: Voice, defaults: Voice) -> tuple[Section, ...]:
    """The routine's parts in playing order, templates filled in.

    ``chosen_voice`` holds the listener's own voice settings (profile, command
    line): they win over the file at every level; ``defaults`` fill what nobody
    set. Holds must already carry any overrides: `{hold}` is spoken from them.
    """
    # Checked again here: holds changed since loading (--hold, --fit) change how many cues they hold.
    found = too_big(routine.steps, routine.cue_settings)
    if found is not None:
        raise RoutineError([Problem(found[0].where, found[1])])
    expander = _Expander(routine, chosen_voice)
    voice = chosen_voice.over(routine.voice.over(defaults))
    default_chime = routine.chime or Sound(DEFAULT_CHIME, Location(str(routine.path)))
    sections = []
    if routine.intro:
        sections.append(Section("intro", routine.phrases.title("intro"), tuple(expander.lines("intro", routine.intro, {}, voice, Context()))))
    if routine.lead_in.on:
        line = expander.signal_line(routine.lead_in, "lead-in", {}, voice)
        sections.append(Section("lead-in", routine.phrases.title("lead-in"), (
            Part("rest", "lead-in", line=line, ms=routine.lead_in_ms, cue="lead-in", where=Location(str(routine.path))),
        )))
    for step in routine.steps:
        # {interval} counts the holds of the whole top-level step: every round, step and side of a circuit.
        expander.done, expander.intervals = 0, intervals(step)
        parts = tuple(expander.step(step, {}, default_chime, voice, routine.cue_settings))
        sections.append(Section(step.id, step.title, parts))
    if routine.outro:
        sections.append(Section("outro", routine.phrases.title("outro"), tuple(expander.lines("outro", routine.outro, {}, voice, Context()))))
    if routine.closing and routine.closing.name != "none":
        last = sections[-1]
        closing = Part("chime", last.id, sound=routine.closing, strikes=routine.closing_strikes)
        sections[-1] = replace(last, parts=last.parts + (closing,))
    planned = _announce_next(routine, tuple(sections), expander, voice)
    lines = lines_of(planned)
    if len(lines) > MAX_LINES:
        first_over = lines[MAX_LINES]
        where = first_over.where or Location(str(routine.path))
        raise RoutineError([Problem(where, f"the session would speak {len(lines):,} different lines, cues included; "
                                           f"at most {MAX_LINES:,} are spoken (use fewer timed cues or repeats)")])
    return planned


def lines_of(sections: tuple[Section, ...]) -> list[Line]:
    """Every distinct line to speak, in first-use order: what the speech layer must provide."""
    return _distinct(part.line for section in sections for part in section.parts)


def sounds_of(sections: tuple[Section, ...]) -> list[Sound]:
    return _distinct(part.sound for section in sections for part in section.parts)


def _distinct(items: Iterable[T | None]) -> list[T]:
    return list(dict.fromkeys(item for item in items if item is not None))


class _Expander:
    def __init__(self, routine: Routine, chosen_voice: Voice):
        self.routine = routine
        self.chosen_voice = chosen_voice
        self.phrases = routine.phrases
        self.done = 0  # holds expanded so far in the current top-level step
        self.intervals = 0  # and how many it has in all
        self.strict = False  # inside a strict group: counts into each hold are said in the rest before it

    def fill(self, text: Text, values: dict[str, object]) -> str:
        return text.template.format(**{**self.routine.vars, **{k: str(v) for k, v in values.items()}})

    def line(self, text: str, voice: Voice, where: Location) -> Line:
        """A line to speak, made from the text at ``where``. The loader checked the text with the routine's
        own vars; what the planner fills in (a side's name, a changed hold) is checked here, as the line
        the engine would get."""
        if len(text) > MAX_LINE_CHARS:
            raise RoutineError([Problem(where, f"a line of {len(text)} characters once filled in; a spoken line "
                                               f"may have at most {MAX_LINE_CHARS}: {quote(text[:60])}...")])
        if not speakable(text):
            raise RoutineError([Problem(where, f"nothing to say in {quote(text)} once filled in; a line needs a "
                                               "letter or a digit")])
        return Line(text, voice, where)

    def number(self, n: int) -> str:
        return self.phrases.number(n)

    def duration(self, ms: int) -> str:
        return self.phrases.duration(ms)

    def lines(self, step_id: str, texts: tuple[Text, ...], values: dict[str, object], voice: Voice,
              context: Context) -> Iterator[Part]:
        for text in texts:
            yield Part("speech", step_id, line=self.line(self.fill(text, values), voice, text.where), context=context,
                       where=text.where)

    def said_at_end(self, step_id: str, texts: tuple[Text, ...], values: dict[str, object], voice: Voice,
                    context: Context) -> Iterator[Part]:
        """Lines said at the end of the rest just before, the last ending as the next hold starts."""
        for part in self.lines(step_id, texts, values, voice, context):
            yield replace(part, kind="cue", cue="say", align_end=True)

    def counted(self, values: dict[str, object]) -> dict[str, object]:
        """``values`` with the number of the next hold of the circuit, and how many it has."""
        return dict(values, interval=min(self.done + 1, self.intervals), intervals=self.intervals)

    def signal_line(self, signal: Signal, phrase: str, values: dict[str, object], voice: Voice,
                    at: Location | None = None) -> Line | None:
        """The line a cue speaks: its own text, or the routine's phrase for it. A default phrase is in no
        line of the file: its line is said to come from ``at``, the step it is said in."""
        if signal.text is not None:
            return self.line(self.fill(signal.text, values), voice, signal.text.where)
        if signal.phrase:
            text = self.phrases.texts[phrase]
            where = text.where if text.where.line or at is None else at
            return self.line(self.fill(text, values), voice, where)
        return None

    def step(self, step: Step, values: dict[str, object], chime: Sound, voice: Voice,
             cue_settings: CueSettings) -> Iterator[Part]:
        chime = step.chime or chime
        cue_settings = step.cue_settings.over(cue_settings)
        # A step's voice refines its parent's, but never the listener's own settings.
        voice = self.chosen_voice.over(step.voice.over(voice)) if step.voice else voice
        sides = step.sides or (None,)
        for index, side in enumerate(sides):
            on_side = dict(values, side=side) if side is not None else dict(values)
            if index > 0:
                yield from self._switch(step, cue_settings, on_side, voice, side)
            if step.is_group:
                yield from self._group(step, on_side, chime, voice, side, cue_settings)
            else:
                yield from self._leaf(step, on_side, chime, voice, side, cue_settings)
        if not step.is_group and step.rest:
            yield Part("rest", step.id, ms=step.rest, where=step.where)

    def _switch(self, step: Step, cue_settings: CueSettings, values: dict[str, object], voice: Voice,
                side: str | None) -> Iterator[Part]:
        """Between sides: "switch to the right side", then time to change position."""
        signal = cue_settings.switch if cue_settings.switch is not None else Signal(phrase=True)
        gap = DEFAULT_SWITCH_GAP_MS if cue_settings.switch_gap is None else cue_settings.switch_gap
        line = self.signal_line(signal, "switch", values, voice, step.where)
        if line is not None or signal.sound is not None or gap:
            yield Part("rest", step.id, line=line, sound=signal.sound, ms=gap, cue="switch",
                       context=Context(side=side), where=step.where)

    def _group(self, step: Step, values: dict[str, object], chime: Sound, voice: Voice, side: str | None,
               cue_settings: CueSettings) -> Iterator[Part]:
        if not step.strict or self.strict:  # a strict group inside a strict group is strict already
            yield from self._rounds(step, values, chime, voice, side, cue_settings)
            return
        self.strict = True
        try:
            parts = list(self._rounds(step, values, chime, voice, side, cue_settings))
        finally:
            self.strict = False
        yield from strict_block(parts)

    def _rounds(self, step: Step, values: dict[str, object], chime: Sound, voice: Voice, side: str | None,
                cue_settings: CueSettings) -> Iterator[Part]:
        for number in range(1, step.rounds + 1):
            chapter = self._chapter(step, number, values, side)
            for part in self._round(step, number, values, chime, voice, side, cue_settings):
                if chapter is not None:
                    part, chapter = replace(part, chapter=chapter), None
                yield part
            if number < step.rounds and step.rest:
                yield Part("rest", step.id, ms=step.rest, context=Context(side=side, round=number), where=step.where)

    def _round(self, step: Step, number: int, values: dict[str, object], chime: Sound, voice: Voice,
               side: str | None, cue_settings: CueSettings) -> Iterator[Part]:
        in_round = self.counted(dict(values, round=number, rounds=step.rounds))
        context = Context(side=side, round=number if step.rounds > 1 else None)
        signal = cue_settings.last_round
        if number == step.rounds > 1 and signal is not None and signal.on:
            line = self.signal_line(signal, "last-round", in_round, voice, step.where)
            yield Part("rest", step.id, line=line, sound=signal.sound, cue="last-round", context=context,
                       where=step.where)
        yield from self.lines(step.id, step.say, in_round, voice, context)
        for child in step.steps:
            for part in self.step(child, in_round, chime, voice, cue_settings):
                if part.context.round is None and step.rounds > 1:
                    part = replace(part, context=replace(part.context, round=number))
                yield part

    def _chapter(self, step: Step, number: int, values: dict[str, object], side: str | None) -> Chapter | None:
        """The chapter a round begins, with `chapters: rounds`; titles are read, so numbers are digits."""
        if step.chapters != "rounds":
            return None
        title = self.fill(self.phrases.texts["chapter"], dict(values, title=step.title, round=number,
                                                                rounds=step.rounds))
        return Chapter(title + (f" ({side})" if side else ""), number, side)

    def _leaf(self, step: Step, values: dict[str, object], chime: Sound, voice: Voice, side: str | None,
              cue_settings: CueSettings) -> Iterator[Part]:
        for number in range(1, step.repeat + 1):
            in_repeat = self.counted(dict(values, repeat=number, repeats=step.repeat))
            if step.hold is not None:
                in_repeat["hold"] = self.duration(step.hold)
            context = Context(side=side, repeat=number if step.repeat > 1 else None)
            # Later repetitions speak `between` when given; otherwise the instruction again.
            texts = step.between if number > 1 and step.between else step.say
            if number > 1 and step.rest_between:
                # Rest, then the words that lead into the next repetition, ending as its hold starts.
                yield Part("rest", step.id, ms=step.rest_between, context=replace(context, repeat=number - 1),
                           where=step.where)
                yield from self.said_at_end(step.id, texts, in_repeat, voice, context)
            else:
                yield from self.lines(step.id, texts, in_repeat, voice, context)
            if step.hold is not None:
                if self.strict:
                    yield from self._count_in(step, cue_settings, voice, context)
                yield Part("hold", step.id, ms=step.hold, where=step.where, context=context)
                self.done += 1
                yield from self._hold_cues(step, step.hold, cue_settings, in_repeat, voice, context)
                if chime.name != "none":
                    yield Part("chime", step.id, sound=chime, strikes=cue_settings.strikes or 1, context=context)

    def _count_in(self, step: Step, cue_settings: CueSettings, voice: Voice, context: Context) -> Iterator[Part]:
        """In a strict group, the countdown also counts into each hold, at the end of the rest before it."""
        for count in range(cue_settings.countdown or 0, 0, -1):
            sound = cue_settings.countdown_sound
            line = None if sound is not None else self.line(self.number(count), voice, step.where)
            yield Part("cue", step.id, line=line, sound=sound, cue="countdown", at=-count * 1000, lead=True,
                       context=context, where=step.where)

    def _hold_cues(self, step: Step, hold: int, cue_settings: CueSettings, values: dict[str, object], voice: Voice,
                   context: Context) -> Iterator[Part]:
        """The cues inside one hold, each at its offset; they never change the hold's length."""

        def cue(kind: CueKind, at: int, line: Line | None = None, sound: Sound | None = None,
                place: Location | None = None) -> Part:
            return Part("cue", step.id, line=line, sound=sound, cue=kind, at=at, where=place or step.where,
                        context=context)

        if cue_settings.bell_every and cue_settings.bell_every < hold:
            bell = cue_settings.bell or Sound("bell", step.where)
            for at in range(cue_settings.bell_every, hold, cue_settings.bell_every):
                yield cue("bell", at, sound=bell)
        if cue_settings.halfway is not None and cue_settings.halfway.on:
            line = self.signal_line(cue_settings.halfway, "halfway", values, voice, step.where)
            yield cue("halfway", hold // 2, line, cue_settings.halfway.sound)
        for left in _remaining_times(hold, cue_settings, own=step.cue_settings.remaining is not None):
            line = self.signal_line(Signal(phrase=True), "remaining", dict(values, time=self.duration(left)), voice,
                                    step.where)
            yield cue("remaining", -left, line)
        for timed in cue_settings.cues or ():
            text = timed.signal.text
            line = self.line(self.fill(text, values), voice, text.where) if text else None
            yield cue("cue", timed.at, line, timed.signal.sound, timed.where)
        for count in range(min(cue_settings.countdown or 0, hold // 1000), 0, -1):
            if cue_settings.countdown_sound is not None:
                yield cue("countdown", -count * 1000, sound=cue_settings.countdown_sound)
            else:
                yield cue("countdown", -count * 1000, self.line(self.number(count), voice, step.where))


def _remaining_times(hold: int, cue_settings: CueSettings, own: bool) -> list[int]:
    """Times before the end to announce, longest first.

    A default (from the routine or a group) is left out of the holds it does
    not fit, as a countdown is; a time the step lists itself is kept, and
    placing reports it when it does not fit.
    """
    times = set(t for t in cue_settings.remaining or () if own or t <= hold - REMAINING_MARGIN_MS)
    if cue_settings.remaining_every:
        times.update(range(cue_settings.remaining_every, hold - REMAINING_MARGIN_MS + 1, cue_settings.remaining_every))
    return sorted(times, reverse=True)


def _announce_next(routine: Routine, sections: tuple[Section, ...], expander: _Expander,
                   voice: Voice) -> tuple[Section, ...]:
    """Add "next up: <title>" at the end of each rest that another step comes after.

    Done after expansion because the step that follows a rest is only known
    then. It names the step that will be done next, never a group around it,
    and is said once, at the end of the last of several rests in a row.
    """
    titles = {step.id: step.title for step in routine.all_steps() if not step.is_group}
    groups = {step.id for step in routine.all_steps() if step.is_group}
    cue_settings = {step.id: step.cue_settings for step in routine.all_steps()}
    parents = _parents(routine)
    flat = [(index, part) for index, section in enumerate(sections) for part in section.parts]
    rebuilt: list[list[Part]] = [[] for _ in sections]
    for position, (index, part) in enumerate(flat):
        rebuilt[index].append(part)
        if part.kind != "rest" or part.cue is not None:
            continue
        signal = _setting(part.step, cue_settings, parents, routine.cue_settings, "next")
        if signal is None or not signal.on:
            continue
        later = (flat[i][1] for i in range(position + 1, len(flat)))
        after = next((p for p in later if p.kind != "cue" or p.cue == "say"), None)
        if after is not None and after.kind == "rest" and after.cue is None:
            continue  # the next rest says it
        found = itertools.chain([after] if after else [], later)
        following = next((p for p in found if (p.kind in ("speech", "hold") or p.cue == "say") and p.step not in groups),
                         None)
        # Not for the intro or outro, nor between two repetitions or rounds of the same step.
        if following is None or following.step not in titles or following.step == part.step:
            continue
        line = expander.signal_line(signal, "next", {"title": titles[following.step]}, voice, part.where)
        rebuilt[index].append(Part("cue", part.step, line=line, sound=signal.sound, cue="next", align_end=True,
                                   context=part.context, where=part.where))
    return tuple(replace(section, parts=tuple(parts)) for section, parts in zip(sections, rebuilt))


def _parents(routine: Routine) -> dict[str, str | None]:
    parents: dict[str, str | None] = {}

    def walk(steps: tuple[Step, ...], parent: str | None) -> None:
        for step in steps:
            parents[step.id] = parent
            walk(step.steps, step.id)

    walk(routine.steps, None)
    return parents


def _setting(step_id: str, cue_settings: dict[str, CueSettings], parents: dict[str, str | None], top: CueSettings,
             name: str) -> Signal | None:
    """A cue setting as it applies to a step: its own, else its group's, else the routine's."""
    current: str | None = step_id
    while current is not None:
        value = getattr(cue_settings[current], name)
        if value is not None:
            return value
        current = parents[current]
    return getattr(top, name)



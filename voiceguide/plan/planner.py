"""Plan a session: expand a routine into parts, then place them on the timeline.

Expanding fills in templates and unrolls sides, repetitions and rounds, with
every cue attached to the hold or rest it sits in; it needs no audio. Placing
gives each part its time from the real lengths of the clips, and reports cues
that overlap or do not fit, so that nothing ever drifts silently.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import TypeVar

from voiceguide.durations import format_clock, number_words, spoken_duration
from voiceguide.errors import InputError, Location, Problem
from voiceguide.plan.timeline import (
    STRIKE_SPACING_MS,
    Context,
    CueKind,
    Event,
    Line,
    PartKind,
    StepSpan,
    Timeline,
)
from voiceguide.routine import (
    DEFAULT_CHIME,
    DEFAULT_SWITCH_GAP_MS,
    MAX_SESSION_MS,
    CueSettings,
    Routine,
    Signal,
    Sound,
    Step,
    Text,
    Voice,
)
from voiceguide.units import FRAME, SAMPLE_RATE, milliseconds, samples

T = TypeVar("T")
INTRO_TITLE = "Introduction"
OUTRO_TITLE = "Closing"
LEAD_IN_TITLE = "Get ready"
# A remaining-time call closer than this to the start of a hold would only talk over its instruction.
REMAINING_MARGIN_MS = 2000


@dataclass(frozen=True)
class Part:
    """A piece of the session before it has a time: what happens, and in which step.

    A ``cue`` part belongs to the hold or rest before it, at ``at`` ms from its
    start (from its end when negative, or ending at its end with ``align_end``).
    A ``rest`` part with a ``line`` begins with that line spoken as a cue and
    lasts the line's length plus ``ms``.
    """

    kind: PartKind
    step: str
    line: Line | None = None
    sound: Sound | None = None
    ms: int = 0
    context: Context = Context()
    cue: CueKind | None = None
    at: int = 0
    align_end: bool = False
    strikes: int = 1
    where: Location | None = None


@dataclass(frozen=True)
class Section:
    """A top-level step (or the intro, lead-in or outro) and its parts, in order."""

    id: str
    title: str
    parts: tuple[Part, ...]


def expand(routine: Routine, chosen_voice: Voice, defaults: Voice) -> tuple[Section, ...]:
    """The routine's parts in playing order, templates filled in.

    ``chosen_voice`` holds the listener's own voice settings (profile, command
    line): they win over the file at every level; ``defaults`` fill what nobody
    set. Holds must already carry any overrides: `{hold}` is spoken from them.
    """
    expander = _Expander(routine, chosen_voice)
    voice = chosen_voice.over(routine.voice.over(defaults))
    default_chime = routine.chime or Sound(DEFAULT_CHIME, Location(str(routine.path)))
    sections = []
    if routine.intro:
        sections.append(Section("intro", INTRO_TITLE, tuple(expander.lines("intro", routine.intro, {}, voice, Context()))))
    if routine.lead_in.on:
        line = expander.signal_line(routine.lead_in, "lead-in", {}, voice)
        sections.append(Section("lead-in", LEAD_IN_TITLE, (
            Part("rest", "lead-in", line=line, ms=routine.lead_in_ms, cue="lead-in", where=Location(str(routine.path))),
        )))
    for step in routine.steps:
        parts = tuple(expander.step(step, {}, default_chime, voice, routine.cue_settings))
        sections.append(Section(step.id, step.title, parts))
    if routine.outro:
        sections.append(Section("outro", OUTRO_TITLE, tuple(expander.lines("outro", routine.outro, {}, voice, Context()))))
    if routine.closing and routine.closing.name != "none":
        last = sections[-1]
        sections[-1] = replace(last, parts=last.parts + (Part("chime", last.id, sound=routine.closing),))
    return _announce_next(routine, tuple(sections), expander, voice)


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

    def fill(self, text: Text, values: dict[str, object]) -> str:
        return text.template.format(**{**self.routine.vars, **{k: str(v) for k, v in values.items()}})

    def number(self, n: int) -> str:
        return str(n) if self.phrases.digits else number_words(n)

    def duration(self, ms: int) -> str:
        return spoken_duration(ms, self.phrases.units, self.number)

    def lines(self, step_id: str, texts: tuple[Text, ...], values: dict[str, object], voice: Voice,
              context: Context) -> Iterator[Part]:
        for text in texts:
            yield Part("speech", step_id, line=Line(self.fill(text, values), voice), context=context)

    def signal_line(self, signal: Signal, phrase: str, values: dict[str, object], voice: Voice) -> Line | None:
        """The line a cue speaks: its own text, or the routine's phrase for it."""
        if signal.text is not None:
            return Line(self.fill(signal.text, values), voice)
        if signal.phrase:
            return Line(self.fill(self.phrases.texts[phrase], values), voice)
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
        line = self.signal_line(signal, "switch", values, voice)
        if line is not None or signal.sound is not None or gap:
            yield Part("rest", step.id, line=line, sound=signal.sound, ms=gap, cue="switch",
                       context=Context(side=side), where=step.where)

    def _group(self, step: Step, values: dict[str, object], chime: Sound, voice: Voice, side: str | None,
               cue_settings: CueSettings) -> Iterator[Part]:
        for number in range(1, step.rounds + 1):
            in_round = dict(values, round=number, rounds=step.rounds)
            context = Context(side=side, round=number if step.rounds > 1 else None)
            yield from self.lines(step.id, step.say, in_round, voice, context)
            for child in step.steps:
                for part in self.step(child, in_round, chime, voice, cue_settings):
                    if part.context.round is None and step.rounds > 1:
                        part = replace(part, context=replace(part.context, round=number))
                    yield part
            if number < step.rounds and step.rest:
                yield Part("rest", step.id, ms=step.rest, context=Context(side=side, round=number), where=step.where)

    def _leaf(self, step: Step, values: dict[str, object], chime: Sound, voice: Voice, side: str | None,
              cue_settings: CueSettings) -> Iterator[Part]:
        for number in range(1, step.repeat + 1):
            in_repeat = dict(values, repeat=number, repeats=step.repeat)
            if step.hold is not None:
                in_repeat["hold"] = self.duration(step.hold)
            context = Context(side=side, repeat=number if step.repeat > 1 else None)
            # Later repetitions speak `between` when given; otherwise the instruction again.
            texts = step.between if number > 1 and step.between else step.say
            yield from self.lines(step.id, texts, in_repeat, voice, context)
            if step.hold is not None:
                yield Part("hold", step.id, ms=step.hold, where=step.where, context=context)
                yield from self._hold_cues(step, step.hold, cue_settings, in_repeat, voice, context)
                if chime.name != "none":
                    yield Part("chime", step.id, sound=chime, strikes=cue_settings.strikes or 1, context=context)

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
            line = self.signal_line(cue_settings.halfway, "halfway", values, voice)
            yield cue("halfway", hold // 2, line, cue_settings.halfway.sound)
        for left in _remaining_times(hold, cue_settings):
            line = self.signal_line(Signal(phrase=True), "remaining", dict(values, time=self.duration(left)), voice)
            yield cue("remaining", -left, line)
        for timed in cue_settings.cues or ():
            line = Line(self.fill(timed.signal.text, values), voice) if timed.signal.text else None
            yield cue("cue", timed.at, line, timed.signal.sound, timed.where)
        for count in range(min(cue_settings.countdown or 0, hold // 1000), 0, -1):
            if cue_settings.countdown_sound is not None:
                yield cue("countdown", -count * 1000, sound=cue_settings.countdown_sound)
            else:
                yield cue("countdown", -count * 1000, Line(self.number(count), voice))


def _remaining_times(hold: int, cue_settings: CueSettings) -> list[int]:
    """Times before the end to announce, longest first; those that would not fit are left out."""
    times = set(t for t in cue_settings.remaining or () if t <= hold - REMAINING_MARGIN_MS)
    if cue_settings.remaining_every:
        times.update(range(cue_settings.remaining_every, hold - REMAINING_MARGIN_MS + 1, cue_settings.remaining_every))
    return sorted(times, reverse=True)


def _announce_next(routine: Routine, sections: tuple[Section, ...], expander: _Expander,
                   voice: Voice) -> tuple[Section, ...]:
    """Add "next up: <title>" at the end of each rest that a following step comes after.

    Done after expansion because the step that follows a rest is only known then.
    """
    titles = {step.id: step.title for step in routine.all_steps()}
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
        following = next((p for _, p in flat[position + 1:] if p.kind in ("speech", "hold")), None)
        if following is None or following.step not in titles:
            continue
        line = expander.signal_line(signal, "next", {"title": titles[following.step]}, voice)
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


def place(
    routine: Routine,
    sections: tuple[Section, ...],
    speech_length: Callable[[Line], int],
    sound_length: Callable[[Sound], int],
) -> Timeline:
    """Give every part its start and end, in samples.

    A hold begins where the speech before it ends and its chime starts exactly
    where it ends. A pause of the routine's `pause` (and up to one MP3 frame
    more, see _frame_grid) separates two sounds that would otherwise touch,
    and opens and closes the session. Cues sit inside their hold or rest and
    never move anything else.
    """
    gap = samples(routine.pause)
    events: list[Event] = []
    spans: list[StepSpan] = []
    warnings: list[Problem] = []
    position = 0
    last_sounded = True  # so the session opens with a pause
    anchor: Event | None = None
    anchored: list[tuple[Event, Part]] = []

    def length_of(part: Part) -> int:
        if part.line is not None:
            return speech_length(part.line)
        if part.sound is not None:
            return sound_length(part.sound)
        return 0

    for section in sections:
        section_start = position
        for part in section.parts:
            if part.kind == "cue":
                cue_event = _place_cue(part, anchor, length_of(part), warnings)
                if cue_event is not None:
                    anchored.append((cue_event, part))
                continue
            if part.kind in ("speech", "chime"):
                length = length_of(part)
                if part.kind == "chime" and length:
                    length += (part.strikes - 1) * samples(STRIKE_SPACING_MS)
                if length <= 0:
                    continue
                if last_sounded and gap:
                    events.append(Event("pause", position, position + gap, part.step))
                    position += gap
                events.append(Event(part.kind, position, position + length, part.step, line=part.line,
                                    sound=part.sound, strikes=part.strikes, context=part.context))
                last_sounded = True
            else:
                spoken = length_of(part) if part.kind == "rest" else 0
                if spoken and last_sounded and gap:
                    # A rest that opens with a spoken cue is a sound too: keep it off the one before.
                    events.append(Event("pause", position, position + gap, part.step))
                    position += gap
                length = samples(part.ms) + spoken
                event = Event(part.kind, position, position + length, part.step, context=part.context)
                events.append(event)
                anchor = event
                if spoken or (part.kind == "rest" and part.sound is not None):
                    opening = Event("cue", position, position + (spoken or length_of(part)), part.step,
                                    line=part.line, sound=part.sound, cue=part.cue, context=part.context)
                    anchored.append((opening, part))
                last_sounded = False
            position += length
        if section is sections[-1] and gap:
            events.append(Event("pause", position, position + gap, section.id))
            position += gap
        spans.append(StepSpan(section.id, section.title, section_start, position))

    warnings.extend(_overlaps(anchored))
    moved = _frame_grid(events)
    events = [replace(e, start=moved(e.start), end=moved(e.end)) for e in events]
    anchored = [(replace(cue, start=moved(cue.start), end=moved(cue.end)), part) for cue, part in anchored]
    spans = [replace(span, start=moved(span.start), end=moved(span.end)) for span in spans]
    ordered = sorted(events + [cue for cue, _ in anchored], key=lambda e: (e.start, e.kind == "cue"))
    timeline = Timeline(routine.title, routine.description, tuple(ordered), tuple(spans), tuple(warnings),
                        routine.background)
    if timeline.duration > samples(MAX_SESSION_MS):
        raise InputError(f"{routine.path}: the session would last {format_clock(milliseconds(timeline.duration))}, more than 12 hours")
    return timeline


def _frame_grid(events: list[Event]) -> Callable[[int], int]:
    """Where each position moves when every pause grows, by less than one MP3 frame, to put a hold's end on the frame grid.

    What follows a pause up to the next one is fixed by the plan: speech, a
    hold of the exact length asked, its chime. Ending that hold on a frame
    boundary makes the chime, and everything that follows it to the next
    pause, start at the same place within an MP3 frame however long the holds
    are, so their encoded frames are reused when a hold changes. Only the
    pause before gives way: a hold still lasts exactly as long as it says.
    """
    growth: list[tuple[int, int]] = []  # (end of a pause, how much everything from there on moves)
    moved = 0
    for index, event in enumerate(events):
        if event.kind != "pause":
            continue
        target = event.end
        for later in events[index + 1 :]:
            if later.kind == "pause":
                break
            if later.kind == "hold":
                target = later.end
                break
        moved += -(target + moved) % FRAME
        growth.append((event.end, moved))
    ends = [end for end, _ in growth]

    def at(position: int) -> int:
        passed = bisect.bisect_right(ends, position)
        return position + (growth[passed - 1][1] if passed else 0)

    return at


def _place_cue(part: Part, anchor: Event | None, length: int, warnings: list[Problem]) -> Event | None:
    if anchor is None or length <= 0:
        return None
    if part.align_end:
        start = anchor.end - length
    elif part.at >= 0:
        start = anchor.start + samples(part.at)
    else:
        start = anchor.end - samples(-part.at)
    label = _label(part)
    span = f"{anchor.kind} of {format_clock(milliseconds(anchor.length))}"
    if not anchor.start <= start < anchor.end:
        if part.align_end:
            start = anchor.start
            warnings.append(Problem(part.where or Location("?"), f"step '{part.step}': {label} ({_secs(length)}) is longer than "
                            f"its {span}; it runs {_secs(length - anchor.length)} past it at {format_clock(milliseconds(anchor.end))}"))
        else:
            warnings.append(Problem(part.where or Location("?"), f"step '{part.step}': {label} at {_secs(samples(part.at))} "
                            f"does not fit in its {span}; it is left out"))
            return None
    elif start + length > anchor.end:
        warnings.append(Problem(part.where or Location("?"), f"step '{part.step}': {label} at {format_clock(milliseconds(start))} runs "
                        f"{_secs(start + length - anchor.end)} past the end of its {span}"))
    return Event("cue", start, start + length, part.step, line=part.line, sound=part.sound, cue=part.cue,
                 context=part.context)


def _overlaps(anchored: list[tuple[Event, Part]]) -> list[Problem]:
    found = []
    ordered = sorted(anchored, key=lambda item: item[0].start)
    for (before, before_part), (after, after_part) in zip(ordered, ordered[1:]):
        if before.end > after.start:
            found.append(Problem(after_part.where or Location("?"), f"step '{after.step}': {_label(after_part)} at "
                         f"{format_clock(milliseconds(after.start))} overlaps {_label(before_part)} by {_secs(before.end - after.start)}"))
    return found


def _label(part: Part) -> str:
    what = f'"{part.line.text}"' if part.line else f"({part.sound.name if part.sound else ''})"
    return f"cue {what}" if part.cue == "cue" else f"{part.cue} cue {what}"


def _secs(count: int) -> str:
    return f"{count / SAMPLE_RATE:.1f} s"

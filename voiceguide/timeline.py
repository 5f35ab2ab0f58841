"""Plan a session: expand a routine into parts, then place them on a timeline.

The timeline is the single source of truth: `plan` prints it, `build` renders
exactly it, and tests compare decoded audio against it. Times are whole samples
at SAMPLE_RATE so that what is planned is what is rendered, to the sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Iterator

from voiceguide.durations import format_clock, format_short, spoken_duration
from voiceguide.errors import InputError, Location
from voiceguide.routine import DEFAULT_CHIME, MAX_SESSION_MS, Chime, Routine, Step, Text, Voice

SAMPLE_RATE = 44100
JSON_FORMAT = 1
INTRO_TITLE = "Introduction"
OUTRO_TITLE = "Closing"


def samples(ms: int) -> int:
    return round(ms * SAMPLE_RATE / 1000)


def seconds(count: int) -> float:
    return round(count / SAMPLE_RATE, 3)


@dataclass(frozen=True)
class Line:
    """One thing to say, with the voice to say it in."""

    text: str
    voice: Voice


@dataclass(frozen=True)
class Part:
    """A piece of the session before it has a time: what happens, and in which step."""

    kind: str  # speech, hold, chime or rest
    step: str
    line: Line | None = None
    chime: Chime | None = None
    ms: int = 0
    side: str | None = None
    repeat: int | None = None
    round: int | None = None


@dataclass(frozen=True)
class Section:
    """A top-level step (or the intro or outro) and its parts, in order."""

    id: str
    title: str
    parts: tuple[Part, ...]


@dataclass(frozen=True)
class Event:
    kind: str  # speech, pause, hold, chime or rest
    start: int
    end: int
    step: str
    line: Line | None = None
    chime: Chime | None = None
    side: str | None = None
    repeat: int | None = None
    round: int | None = None

    @property
    def length(self) -> int:
        return self.end - self.start

    def describe(self, width: int = 64) -> str:
        """What happens, in a few words for the plan's table."""
        if self.kind == "speech" and self.line:
            text = self.line.text if len(self.line.text) <= width else self.line.text[: width - 1] + "…"
            return f'"{text}"'
        if self.kind == "chime" and self.chime:
            return f"chime ({self.chime.name})"
        extra = [f"{self.side} side" if self.side else "", f"repeat {self.repeat}" if self.repeat else "",
                 f"round {self.round}" if self.round else ""]
        extra = [e for e in extra if e]
        return self.kind + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class StepSpan:
    id: str
    title: str
    start: int
    end: int


@dataclass(frozen=True)
class Timeline:
    title: str
    description: str
    events: tuple[Event, ...]
    steps: tuple[StepSpan, ...]
    step_titles: dict[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> int:
        return self.events[-1].end if self.events else 0

    def to_json(self) -> dict:
        """The documented JSON form, format 1; times in seconds, to the millisecond."""
        events = []
        for event in self.events:
            item: dict = {"kind": event.kind, "start": seconds(event.start), "end": seconds(event.end), "step": event.step}
            if event.line:
                item["text"] = event.line.text
                item["voice"] = {k: v for k, v in (("engine", event.line.voice.engine), ("voice", event.line.voice.voice),
                                                   ("rate", event.line.voice.rate), ("volume", event.line.voice.volume)) if v is not None}
            if event.chime:
                item["sound"] = event.chime.name
            for key in ("side", "repeat", "round"):
                value = getattr(event, key)
                if value is not None:
                    item[key] = value
            events.append(item)
        return {
            "format": JSON_FORMAT,
            "title": self.title,
            "description": self.description,
            "duration": seconds(self.duration),
            "steps": [{"id": s.id, "title": s.title, "start": seconds(s.start), "end": seconds(s.end)} for s in self.steps],
            "events": events,
        }

    def table(self) -> str:
        """A readable plan: one row per event (pauses folded away), then the total."""
        rows = [("start", "step", "what happens", "length")]
        for event in self.events:
            if event.kind == "pause":
                continue
            rows.append((format_clock(_ms(event.start)), event.step, event.describe(), _length(event.length)))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]
        lines.append(f"total {format_clock(_ms(self.duration))} ({len(self.steps)} steps, "
                     f"{sum(1 for e in self.events if e.kind == 'hold')} holds)")
        return "\n".join(lines)


def _ms(count: int) -> int:
    return round(count * 1000 / SAMPLE_RATE)


def _length(count: int) -> str:
    ms = _ms(count)
    return f"{ms / 1000:.1f}s" if ms < 60_000 and ms % 1000 else format_short(ms)


def expand(routine: Routine, person: Voice, defaults: Voice) -> tuple[Section, ...]:
    """The routine's parts in playing order, templates filled in.

    ``person`` holds the listener's own voice settings (profile, command line):
    they win over the file at every level; ``defaults`` fill what nobody set.
    Holds must already carry any overrides: `{hold}` is spoken from them.
    """
    expander = _Expander(routine, person)
    voice = person.over(routine.voice.over(defaults))
    default_chime = routine.chime or Chime(DEFAULT_CHIME, Location(str(routine.path)))
    sections = []
    if routine.intro:
        sections.append(Section("intro", INTRO_TITLE, tuple(expander.lines("intro", routine.intro, {}, voice))))
    for step in routine.steps:
        parts = tuple(expander.step(step, {}, default_chime, voice))
        sections.append(Section(step.id, step.title, parts))
    if routine.outro:
        sections.append(Section("outro", OUTRO_TITLE, tuple(expander.lines("outro", routine.outro, {}, voice))))
    return tuple(sections)


def lines_of(sections: tuple[Section, ...]) -> list[Line]:
    """Every distinct line to speak, in first-use order: what the speech layer must provide."""
    seen: dict[Line, None] = {}
    for section in sections:
        for part in section.parts:
            if part.line is not None:
                seen.setdefault(part.line)
    return list(seen)


def chimes_of(sections: tuple[Section, ...]) -> list[Chime]:
    seen: dict[Chime, None] = {}
    for section in sections:
        for part in section.parts:
            if part.chime is not None:
                seen.setdefault(part.chime)
    return list(seen)


class _Expander:
    def __init__(self, routine: Routine, person: Voice):
        self.routine = routine
        self.person = person

    def fill(self, text: Text, values: dict[str, object]) -> str:
        return text.template.format(**{**self.routine.vars, **{k: str(v) for k, v in values.items()}})

    def lines(self, step_id: str, texts: tuple[Text, ...], values: dict[str, object], voice: Voice,
              **where: object) -> Iterator[Part]:
        for text in texts:
            yield Part("speech", step_id, line=Line(self.fill(text, values), voice), **where)

    def step(self, step: Step, values: dict[str, object], chime: Chime, voice: Voice) -> Iterator[Part]:
        chime = step.chime or chime
        # A step's voice refines its parent's, but never the listener's own settings.
        voice = self.person.over(step.voice.over(voice)) if step.voice else voice
        for side in step.sides or (None,):
            context = dict(values, side=side) if side is not None else dict(values)
            if step.is_group:
                yield from self._group(step, context, chime, voice, side)
            else:
                yield from self._leaf(step, context, chime, voice, side)
        if not step.is_group and step.rest:
            yield Part("rest", step.id, ms=step.rest)

    def _group(self, step: Step, values: dict[str, object], chime: Chime, voice: Voice, side: str | None) -> Iterator[Part]:
        for number in range(1, step.rounds + 1):
            context = dict(values, round=number, rounds=step.rounds)
            where = {"side": side, "round": number if step.rounds > 1 else None}
            yield from self.lines(step.id, step.say, context, voice, **where)
            for child in step.steps:
                for part in self.step(child, context, chime, voice):
                    if part.round is None and step.rounds > 1:
                        part = replace(part, round=number)
                    yield part
            if number < step.rounds and step.rest:
                yield Part("rest", step.id, ms=step.rest, side=side, round=number)

    def _leaf(self, step: Step, values: dict[str, object], chime: Chime, voice: Voice, side: str | None) -> Iterator[Part]:
        for number in range(1, step.repeat + 1):
            context = dict(values, repeat=number, repeats=step.repeat)
            if step.hold is not None:
                context["hold"] = spoken_duration(step.hold)
            repeat = number if step.repeat > 1 else None
            # Later repetitions speak `between` when given; otherwise the instruction again.
            texts = step.between if number > 1 and step.between else step.say
            yield from self.lines(step.id, texts, context, voice, side=side, repeat=repeat)
            if step.hold is not None:
                yield Part("hold", step.id, ms=step.hold, side=side, repeat=repeat)
                if chime.name != "none":
                    yield Part("chime", step.id, chime=chime, side=side, repeat=repeat)


def place(
    routine: Routine,
    sections: tuple[Section, ...],
    speech_length: Callable[[Line], int],
    chime_length: Callable[[Chime], int],
) -> Timeline:
    """Give every part its start and end, in samples.

    A hold begins where the speech before it ends and its chime starts exactly
    where it ends. A pause of the routine's `pause` separates two sounds that
    would otherwise touch, and opens and closes the session.
    """
    gap = samples(routine.pause)
    events: list[Event] = []
    spans: list[StepSpan] = []
    position = 0
    last_sounded = True  # so the session opens with a pause

    for section in sections:
        section_start = position
        for part in section.parts:
            where = {"side": part.side, "repeat": part.repeat, "round": part.round}
            if part.kind in ("speech", "chime"):
                length = speech_length(part.line) if part.kind == "speech" else chime_length(part.chime)
                if length <= 0:
                    continue
                if last_sounded and gap:
                    events.append(Event("pause", position, position + gap, part.step))
                    position += gap
                events.append(Event(part.kind, position, position + length, part.step, line=part.line, chime=part.chime, **where))
                last_sounded = True
            else:
                length = samples(part.ms)
                events.append(Event(part.kind, position, position + length, part.step, **where))
                last_sounded = False
            position += length
        if section is sections[-1] and gap:
            events.append(Event("pause", position, position + gap, section.id))
            position += gap
        spans.append(StepSpan(section.id, section.title, section_start, position))

    timeline = Timeline(routine.title, routine.description, tuple(events), tuple(spans))
    if timeline.duration > samples(MAX_SESSION_MS):
        raise InputError(f"{routine.path}: the session would last {format_clock(_ms(timeline.duration))}, more than 12 hours")
    return timeline

"""The timeline: every event of a session with its start and end.

The timeline is the single source of truth: `plan` prints it, `build` renders
exactly it, and tests compare decoded audio against it. Times are whole samples
at SAMPLE_RATE so that what is planned is what is rendered, to the sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from voiceguide.durations import format_clock, format_short
from voiceguide.errors import Location, Problem
from voiceguide.routine import Background, Sound, Voice
from voiceguide.units import milliseconds, samples, seconds

JSON_FORMAT = 1
# Struck chimes ring over each other at this spacing, as a bell struck again does.
STRIKE_SPACING_MS = 2500

# These names are written into the JSON plan and compared by later stages: they are part of the format.
PartKind = Literal["speech", "hold", "chime", "rest", "cue"]
# Pauses are not planned as parts: placing puts them between sounds.
EventKind = Literal[PartKind, "pause"]
CueKind = Literal["countdown", "halfway", "remaining", "bell", "cue", "switch", "next", "lead-in", "say", "last-round"]


@dataclass(frozen=True)
class Line:
    """One thing to say, with the voice to say it in.

    ``where`` is the place in the file of the text it was made from, for
    messages; it is not part of the line's identity (the same words from two
    places are one clip).
    """

    text: str
    voice: Voice
    where: Location | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Context:
    """Which side, repeat and round of its step something belongs to; None where the step has no such choice."""

    side: str | None = None
    repeat: int | None = None
    round: int | None = None


@dataclass(frozen=True)
class Event:
    """Something that happens from ``start`` to ``end`` (samples).

    Cue events (kind ``cue``) lie inside a hold or a rest; all other events
    follow one another and cover the session end to end.
    """

    kind: EventKind
    start: int
    end: int
    step: str
    line: Line | None = None
    sound: Sound | None = None  # a chime, a cue's sound
    context: Context = Context()
    cue: CueKind | None = None
    strikes: int = 1

    @property
    def side(self) -> str | None:
        return self.context.side

    @property
    def repeat(self) -> int | None:
        return self.context.repeat

    @property
    def round(self) -> int | None:
        return self.context.round

    def strike_starts(self) -> list[int]:
        """Where each strike of a chime begins."""
        return [self.start + i * samples(STRIKE_SPACING_MS) for i in range(self.strikes)]

    @property
    def length(self) -> int:
        return self.end - self.start

    def describe(self, width: int = 64) -> str:
        """What happens, in a few words for the plan's table."""
        if self.kind == "speech" and self.line:
            text = self.line.text if len(self.line.text) <= width else self.line.text[: width - 1] + "…"
            return f'"{text}"'
        if self.kind == "chime" and self.sound:
            return f"chime ({self.sound.name}{f' x{self.strikes}' if self.strikes > 1 else ''})"
        if self.kind == "cue":
            what = f'"{self.line.text}"' if self.line else f"({self.sound.name if self.sound else ''})"
            return f"  {self.cue}: {what}"
        extra = [f"{self.side} side" if self.side else "", f"repeat {self.repeat}" if self.repeat else "",
                 f"round {self.round}" if self.round else ""]
        extra = [e for e in extra if e]
        return self.kind + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class StepSpan:
    """A chapter: a top-level step, or one round of a group with `chapters: rounds`."""

    id: str
    title: str
    start: int
    end: int
    round: int | None = None
    side: str | None = None

    def to_json(self) -> dict[str, Any]:
        found: dict[str, Any] = {"id": self.id, "title": self.title, "start": seconds(self.start), "end": seconds(self.end)}
        for key in ("round", "side"):
            if getattr(self, key) is not None:
                found[key] = getattr(self, key)
        return found


@dataclass(frozen=True)
class Timeline:
    title: str
    description: str
    events: tuple[Event, ...]  # in order of start; a cue after the hold or rest it lies in
    steps: tuple[StepSpan, ...]
    warnings: tuple[Problem, ...] = ()  # cues that overlap or do not fit
    background: Background | None = None  # sounds under everything, from start to end

    @property
    def duration(self) -> int:
        return self.steps[-1].end if self.steps else 0

    def to_json(self) -> dict[str, Any]:
        """The documented JSON form, format 1; times in seconds, to the millisecond."""
        events = []
        for event in self.events:
            item: dict[str, Any] = {"kind": event.kind, "start": seconds(event.start), "end": seconds(event.end), "step": event.step}
            if event.line:
                item["text"] = event.line.text
                item["voice"] = {k: v for k, v in (("engine", event.line.voice.engine), ("voice", event.line.voice.voice),
                                                   ("rate", event.line.voice.rate), ("volume", event.line.voice.volume),
                                                   ("language", event.line.voice.language)) if v is not None}
            if event.sound:
                item["sound"] = event.sound.name
            if event.cue:
                item["cue"] = event.cue
            if event.strikes > 1:
                item["strikes"] = event.strikes
            for key in ("side", "repeat", "round"):
                value = getattr(event, key)
                if value is not None:
                    item[key] = value
            events.append(item)
        found = {
            "format": JSON_FORMAT,
            "title": self.title,
            "description": self.description,
            "duration": seconds(self.duration),
            "steps": [span.to_json() for span in self.steps],
            "events": events,
        }
        if self.background:
            bed = self.background
            background: dict[str, object] = {
                "sound": [file.name for file in bed.playlist] if bed.playlist else bed.name,
                "level": bed.level, "fade": bed.fade / 1000,
                "duck": {"depth": bed.depth, "attack": bed.attack / 1000, "release": bed.release / 1000}}
            if bed.files:
                background["crossfade"] = bed.crossfade / 1000
            found["background"] = background
        return found

    def table(self) -> str:
        """A readable plan: one row per event (pauses folded away), then the total.

        Times are all written alike, to the tenth (2:49.0 above 2:50.8), so
        the column reads at a glance. The steps counted are the session's:
        intro, lead-in, each top-level step, outro, as `check` counts them.
        """

        def clock(count: int) -> str:
            text = format_clock(milliseconds(count))
            return text if "." in text else f"{text}.0"

        def counted(count: int, word: str) -> str:
            return f"{count} {word}{'' if count == 1 else 's'}"

        rows = [("start", "step", "what happens", "length")]
        for event in self.events:
            if event.kind == "pause":
                continue
            rows.append((clock(event.start), event.step, event.describe(), _length(event.length)))
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        lines = [f"{r[0]:>{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}".rstrip() for r in rows]
        cues = sum(1 for e in self.events if e.kind == "cue")
        steps = len({span.id for span in self.steps})  # a group with a chapter for each round is one step
        counts = [counted(steps, "step"), counted(sum(1 for e in self.events if e.kind == "hold"), "hold")]
        lines.append(f"total {clock(self.duration)} ({', '.join(counts + ([counted(cues, 'cue')] if cues else []))})")
        if self.background:
            bed = self.background
            ducked = f", another {bed.depth:g} dB lower while anything else sounds" if bed.depth else ""
            sound = f"playlist ({bed.name})" if bed.playlist else bed.name
            lines.append(f"background: {sound}, {-bed.level:g} dB under the speech{ducked}")
        return "\n".join(lines)


def _length(count: int) -> str:
    ms = milliseconds(count)
    return f"{ms / 1000:.1f}s" if ms < 60_000 and ms % 1000 else format_short(ms)

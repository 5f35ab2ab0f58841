"""The pieces of a session before they have a time: what expanding a routine gives and placing reads."""

from __future__ import annotations

from dataclasses import dataclass

from voiceguide.errors import Location
from voiceguide.plan.timeline import Context, CueKind, Line, PartKind
from voiceguide.routine import Sound


@dataclass(frozen=True)
class Chapter:
    """A chapter that begins with the part that carries it (a round of a group with `chapters: rounds`)."""

    title: str
    round: int | None = None
    side: str | None = None


@dataclass(frozen=True)
class Part:
    """A piece of the session before it has a time: what happens, and in which step.

    A ``cue`` part belongs to the hold or rest before it, at ``at`` ms from its
    start (from its end when negative). Cues with ``align_end`` are said one
    after another, a pause apart, so that the last ends where the rest ends
    (or where the count into the next hold begins). A ``lead`` cue counts
    into the hold after its rest: "three" at -3 s. A ``rest`` part with a
    ``line`` begins with that line spoken as a cue and lasts the line's length
    plus ``ms``. A ``strict`` chime takes its time out of the rest after it, so
    that the next hold still starts one cycle after the one before.
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
    lead: bool = False
    strict: bool = False
    strikes: int = 1
    where: Location | None = None
    chapter: Chapter | None = None

    @property
    def sounds(self) -> bool:
        """Whether the part says or plays something (a rest part may open with a line or a sound)."""
        return self.line is not None or self.sound is not None


@dataclass(frozen=True)
class Section:
    """A top-level step (or the intro, lead-in or outro) and its parts, in order."""

    id: str
    title: str
    parts: tuple[Part, ...]

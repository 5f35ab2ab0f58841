"""Placing: give every part of a session its start and end, in samples, from the real lengths of its clips.

A hold begins where the speech before it ends and its chime starts exactly
where it ends. A pause of the routine's `pause` (and up to one MP3 frame
more, see _frame_grid) separates two sounds that would otherwise touch, and
opens and closes the session. Cues sit inside their hold or rest and never
move anything else; those that overlap or do not fit are reported, so that
nothing ever drifts silently.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, replace

from voiceguide.durations import format_clock
from voiceguide.errors import InputError, Location, Problem, printable
from voiceguide.plan.parts import Chapter, Part, Section
from voiceguide.plan.timeline import STRIKE_SPACING_MS, Event, Line, StepSpan, Timeline
from voiceguide.routine import MAX_SESSION_MS, Routine, Sound
from voiceguide.units import FRAME, SAMPLE_RATE, milliseconds, samples

# A remaining-time call closer than this to the start of a hold would only talk over its instruction.
REMAINING_MARGIN_MS = 2000


def place(
    routine: Routine,
    sections: tuple[Section, ...],
    speech_length: Callable[[Line], int],
    sound_length: Callable[[Sound], int],
) -> Timeline:
    """Give every part its start and end, in samples (see the module's notes)."""
    placer = _Placer(samples(routine.pause), speech_length, sound_length)
    for section in sections:
        placer.section(section, closes=section is sections[-1])
    placer.warnings.extend(_overlaps(placer.anchored))
    moved = _frame_grid(placer.events)
    events = [replace(e, start=moved(e.start), end=moved(e.end)) for e in placer.events]
    cues = [replace(cue, start=moved(cue.start), end=moved(cue.end)) for cue, _ in placer.anchored]
    spans = [replace(span, start=moved(span.start), end=moved(span.end)) for span in placer.spans]
    ordered = sorted(events + cues, key=lambda e: (e.start, e.kind == "cue"))
    # A cue that does not fit says so once, not once for every round it is left out of.
    warnings = tuple(dict.fromkeys(placer.warnings))
    timeline = Timeline(routine.title, routine.description, tuple(ordered), tuple(spans), warnings, routine.background)
    if timeline.duration > samples(MAX_SESSION_MS):
        raise InputError(f"{routine.path}: the session would last {format_clock(milliseconds(timeline.duration))}, more than 12 hours")
    return timeline


@dataclass
class _Placer:
    gap: int  # the routine's pause, in samples
    speech_length: Callable[[Line], int]
    sound_length: Callable[[Sound], int]

    def __post_init__(self) -> None:
        self.events: list[Event] = []
        self.spans: list[StepSpan] = []
        self.warnings: list[Problem] = []
        self.anchored: list[tuple[Event, Part]] = []
        self.position = 0
        self.last_sounded = True  # so the session opens with a pause
        self.anchor: Event | None = None  # the hold or rest that cues belong to
        self.heard_until = -1  # where the cues of the rest just placed end
        self.taken = 0  # what a strict chime took out of the rest after it
        self.marks: list[tuple[int, Chapter]] = []  # chapters begun in the current section

    def length_of(self, part: Part) -> int:
        if part.line is not None:
            return self.speech_length(part.line)
        if part.sound is not None:
            return self.sound_length(part.sound)
        return 0

    def section(self, section: Section, closes: bool) -> None:
        start = self.position
        self.marks = []
        parts = section.parts
        index = 0
        while index < len(parts):
            part = parts[index]
            if part.kind == "cue":
                end = index
                while end < len(parts) and parts[end].kind == "cue":
                    end += 1
                self.cues(parts[index:end])
                index = end
                continue
            if part.chapter is not None:
                self.marks.append((self.position, part.chapter))
            if part.kind in ("speech", "chime"):
                self.sound(part, parts[index + 1 :])
            else:
                self.timed(part)
            index += 1
        if closes and self.gap:
            self.pause(self.gap, section.id)
        self.spans.extend(_spans(section, start, self.position, self.marks))

    def pause(self, length: int, step: str) -> None:
        self.events.append(Event("pause", self.position, self.position + length, step))
        self.position += length

    def keep_apart(self, step: str) -> None:
        """Before a sound: a pause after the sound before it, or after a cue that ends with its rest (and as much
        more as that cue runs past the rest, which was reported)."""
        overrun = self.heard_until - self.position
        if self.last_sounded or overrun >= 0:
            length = self.gap + max(0, overrun)
            if length:
                self.pause(length, step)
        self.heard_until = -1

    def sound(self, part: Part, following: tuple[Part, ...]) -> None:
        length = self.length_of(part)
        if part.kind == "chime" and length:
            length += (part.strikes - 1) * samples(STRIKE_SPACING_MS)
        if length <= 0:
            return
        rest = next((p for p in following if p.kind != "cue"), None)
        if part.strict and rest is not None and rest.kind == "rest" and not rest.sounds:
            # In a strict block the chime rings within the rest: the next hold keeps its time. A chime longer
            # than the rest rings on into the hold (its event ends where the rest does).
            length = min(length, samples(rest.ms))
            self.taken = length
        else:
            self.keep_apart(part.step)
        self.events.append(Event(part.kind, self.position, self.position + length, part.step, line=part.line,
                                 sound=part.sound, strikes=part.strikes, context=part.context))
        self.last_sounded = True
        self.heard_until = -1
        self.position += length

    def timed(self, part: Part) -> None:
        """A hold or a rest; a rest may open with a spoken cue."""
        opening = self.length_of(part) if part.kind == "rest" else 0
        if opening:
            self.keep_apart(part.step)
        self.heard_until = -1
        length = samples(part.ms) + opening - self.taken
        self.taken = 0
        event = Event(part.kind, self.position, self.position + length, part.step, context=part.context)
        if length > 0:
            self.events.append(event)
        self.anchor = event
        if opening:
            cue = Event("cue", self.position, self.position + opening, part.step, line=part.line,
                        sound=part.sound, cue=part.cue, context=part.context)
            self.anchored.append((cue, part))
            self.heard_until = cue.end
        self.last_sounded = False
        self.position += length

    def cues(self, run: tuple[Part, ...]) -> None:
        """The cues of the hold or rest just placed: each at its time, then those said at its end."""
        anchor = self.anchor
        if anchor is None:
            return
        placed: dict[int, Event] = {}
        for index, part in enumerate(run):
            if not part.align_end and not part.lead:
                event = self.at_time(part, anchor)
                if event is not None:
                    placed[index] = event
        placed.update(self.at_end(run, anchor))
        for index, part in enumerate(run):
            event = placed.get(index)
            if event is not None:
                self.anchored.append((event, part))
                if anchor.kind == "rest":
                    self.heard_until = max(self.heard_until, event.end)
            if part.chapter is not None:
                self.marks.append((event.start if event else anchor.end, part.chapter))

    def at_time(self, part: Part, anchor: Event) -> Event | None:
        """A cue at ``at`` ms from the start of its hold or rest (from its end when negative)."""
        length = self.length_of(part)
        if length <= 0:
            return None
        start = anchor.start + samples(part.at) if part.at >= 0 else anchor.end - samples(-part.at)
        span = f"{anchor.kind} of {format_clock(milliseconds(anchor.length))}"
        if part.cue == "remaining" and start < anchor.start + samples(REMAINING_MARGIN_MS):
            # Set on the step itself, so the listener asked for it: say why it is not there.
            self.warn(part, f"{_label(part)} does not fit in its {span} (it must start at least "
                            f"{REMAINING_MARGIN_MS // 1000} s after the hold does); it is left out")
            return None
        if not anchor.start <= start < anchor.end:
            self.warn(part, f"{_label(part)} at {_secs(samples(part.at))} does not fit in its {span}; it is left out")
            return None
        if start + length > anchor.end:
            self.warn(part, f"{_label(part)} at {format_clock(milliseconds(start))} runs "
                            f"{_secs(start + length - anchor.end)} past the end of its {span}")
        return _cue_event(part, start, length)

    def at_end(self, run: tuple[Part, ...], anchor: Event) -> dict[int, Event]:
        """The lines said at the end of a rest, a pause apart, then any count into the next hold.

        The count keeps to the time the lines leave (fewer counts rather than a
        line cut short). Lines that do not fit start with the rest and run past
        its end, reported: they never move what follows.
        """
        lines = [(index, part, self.length_of(part)) for index, part in enumerate(run) if part.align_end]
        lines = [line for line in lines if line[2] > 0]
        spoken = sum(length for _, _, length in lines) + self.gap * (len(lines) - 1) if lines else 0
        before_count = spoken + self.gap if lines else 0
        counts = [(index, part) for index, part in enumerate(run)
                  if part.lead and samples(-part.at) + before_count <= anchor.length]
        placed: dict[int, Event] = {}
        end = anchor.end
        for index, part in counts:
            length = self.length_of(part)
            if length > 0:
                placed[index] = _cue_event(part, anchor.end - samples(-part.at), length)
                end = min(end, anchor.end - samples(-part.at) - self.gap)
        position = max(anchor.start, end - spoken)
        span = f"{anchor.kind} of {format_clock(milliseconds(anchor.length))}"
        for number, (index, part, length) in enumerate(lines):
            placed[index] = _cue_event(part, position, length)
            if position + length > end:
                before = {0: "", 1: " after the line before it"}.get(number, f" after the {number} lines before it")
                fit = f"does not fit in its {span}{before}" if number else f"is longer than its {span}"
                self.warn(part, f"{_label(part)} ({_secs(length)}) {fit}; it runs {_secs(position + length - end)} "
                                f"past it at {format_clock(milliseconds(end))}")
            position += length + self.gap
        return placed

    def warn(self, part: Part, message: str) -> None:
        self.warnings.append(Problem(part.where or Location("?"), f"step '{part.step}': {message}"))


def _cue_event(part: Part, start: int, length: int) -> Event:
    return Event("cue", start, start + length, part.step, line=part.line, sound=part.sound, cue=part.cue,
                 context=part.context)


def _spans(section: Section, start: int, end: int, marks: list[tuple[int, Chapter]]) -> list[StepSpan]:
    """A section's chapters: the section whole, or cut where each of its marked chapters (its rounds) begins."""
    if not marks:
        return [StepSpan(section.id, section.title, start, end)]
    cuts = [(start, Chapter(section.title))] + sorted(marks, key=lambda mark: mark[0]) + [(end, Chapter(""))]
    return [StepSpan(section.id, chapter.title, begin, until, chapter.round, chapter.side)
            for (begin, chapter), (until, _) in zip(cuts, cuts[1:]) if until > begin]


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


def _overlaps(anchored: list[tuple[Event, Part]]) -> list[Problem]:
    found = []
    ordered = sorted(anchored, key=lambda item: item[0].start)
    for (before, before_part), (after, after_part) in zip(ordered, ordered[1:]):
        if before.end > after.start:
            found.append(Problem(after_part.where or Location("?"), f"step '{after.step}': {_label(after_part)} at "
                         f"{format_clock(milliseconds(after.start))} overlaps {_label(before_part)} by {_secs(before.end - after.start)}"))
    return found


def _label(part: Part) -> str:
    # Warnings are printed as they are: a line break in the text must not split one in two.
    what = f'"{printable(part.line.text)}"' if part.line else f"({printable(part.sound.name) if part.sound else ''})"
    return f"cue {what}" if part.cue == "cue" else f"{part.cue} cue {what}"


def _secs(count: int) -> str:
    return f"{count / SAMPLE_RATE:.1f} s"

"""Strict groups: interval training, where every hold starts one cycle (its hold and the rest after it) after
the hold before, however long the words between them take.

A strict group is expanded as any group, then reshaped here: from its first
hold on, everything between two holds (rests, a side switch, the next step's
instruction, a round's `say`, "last round") becomes one rest as long as all
those rests together, with the lines said inside it, ending where the next
hold starts. Each chime rings inside the rest after its hold. The lines
before the first hold are said as usual, and what follows the last hold runs
as usual too (its chime still rings inside the rest right after it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from voiceguide.plan.parts import Part


def strict_block(parts: Iterable[Part]) -> Iterator[Part]:
    """The parts of one pass of a strict group, reshaped so that each hold starts one cycle after the last."""
    held: Part | None = None  # the last hold: what follows it until the next one is its cycle's rest
    in_hold = False  # between a hold and its chime, cues are the hold's own
    between: list[Part] = []
    for part in parts:
        if part.kind == "hold":
            if held is not None:
                yield from _rest(between, held)
            between = []
            held, in_hold = part, True
            yield part
        elif held is None:
            # Before the first hold the lines are said as usual; there is no rest to count into it in.
            if not part.lead:
                yield part
        elif in_hold and part.kind == "cue" and not part.lead:
            yield part
        elif in_hold and part.kind == "chime":
            in_hold = False
            yield replace(part, strict=True)
        else:
            in_hold = False
            between.append(part)
    # After the last hold nothing more is timed: its rest, and anything said after it, run as usual.
    yield from (part for part in between if not part.lead)


def _rest(between: list[Part], held: Part) -> Iterator[Part]:
    """What lies between two holds as one rest, with every line in it said at its end, in order."""
    rests = [part for part in between if part.kind == "rest"]
    first = rests[0] if rests else held
    marked = next((part.chapter for part in rests if part.chapter is not None and not part.sounds), None)
    yield Part("rest", first.step, ms=sum(part.ms for part in rests), context=first.context, where=first.where,
               chapter=marked)
    for part in between:
        if part.kind == "speech":
            yield replace(part, kind="cue", cue="say", align_end=True)
        elif part.kind == "rest" and part.sounds:
            # A side switch or "last round": its line joins the others; its time, the rest.
            yield replace(part, kind="cue", ms=0, align_end=True)
        elif part.kind == "cue":
            yield part

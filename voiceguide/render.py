"""Render a timeline into an encoder: every sound laid over silence, one short stretch at a time.

Sounds (speech, chimes, cues) are layers at their planned start. Between two
moments where a layer starts or ends the mix does not change, so silence is
written without being computed and only the clips sounding at that moment are
in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from voiceguide.audio import Mp3Encoder
from voiceguide.sounds import Sounds
from voiceguide.speech import Speech
from voiceguide.timeline import Timeline


@dataclass(frozen=True)
class Layer:
    start: int
    length: int
    load: Callable[[], np.ndarray]


def layers(timeline: Timeline, speech: Speech, sounds: Sounds) -> list[Layer]:
    """Every sound of the session, in order of start."""
    found = []
    for event in timeline.events:
        if event.line is not None:
            line = event.line
            found.append(Layer(event.start, speech.clip(line).length, lambda line=line: speech.clip(line).samples()))
        elif event.chime is not None:
            chime = event.chime
            for start in event.strike_starts():
                found.append(Layer(start, sounds.length(chime), lambda chime=chime: sounds.samples(chime)))
    _check_speech(timeline, speech)
    return sorted(found, key=lambda layer: layer.start)


def _check_speech(timeline: Timeline, speech: Speech) -> None:
    # The plan was made from these very clips; a mismatch would shift everything after it.
    for event in timeline.events:
        if event.kind == "speech" and event.line is not None and speech.clip(event.line).length != event.length:
            raise AssertionError(f"speech at {event.start} has {speech.clip(event.line).length} samples, planned {event.length}")


def render(timeline: Timeline, speech: Speech, sounds: Sounds, encoder: Mp3Encoder) -> None:
    pending = layers(timeline, speech, sounds)
    total = timeline.duration
    active: list[tuple[int, np.ndarray]] = []
    position = 0
    index = 0
    while position < total:
        while index < len(pending) and pending[index].start <= position:
            layer = pending[index]
            active.append((layer.start, layer.load()))
            index += 1
        active = [(start, data) for start, data in active if start + len(data) > position]
        upcoming = pending[index].start if index < len(pending) else total
        stop = min([upcoming, total] + [start + len(data) for start, data in active])
        if not active:
            encoder.silence(stop - position)
        elif len(active) == 1:
            start, data = active[0]
            encoder.write(data[position - start : stop - start])
        else:
            mix = np.zeros(stop - position, dtype=np.int32)
            for start, data in active:
                mix += data[position - start : stop - start]
            # Overlapping cues are reported when planning; here they only must not wrap around.
            encoder.write(np.clip(mix, -32768, 32767).astype("<i2"))
        position = stop
    assert encoder.written == total, "the rendered length must be the planned length"

"""Render a timeline into an encoder, event by event, holding one clip at a time."""

from __future__ import annotations

from voiceguide.audio import Mp3Encoder
from voiceguide.sounds import Sounds
from voiceguide.speech import Speech
from voiceguide.timeline import Timeline


def render(timeline: Timeline, speech: Speech, sounds: Sounds, encoder: Mp3Encoder) -> None:
    for event in timeline.events:
        assert event.start == encoder.written, "timeline events must be contiguous"
        if event.kind == "speech" and event.line is not None:
            samples = speech.clip(event.line).samples()
        elif event.kind == "chime" and event.chime is not None:
            samples = sounds.samples(event.chime)
        else:
            encoder.silence(event.length)
            continue
        # The plan was made from these very clips; a mismatch would shift everything after it.
        if len(samples) != event.length:
            raise AssertionError(f"{event.kind} at {event.start} has {len(samples)} samples, planned {event.length}")
        encoder.write(samples)

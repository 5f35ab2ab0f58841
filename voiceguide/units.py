"""The shared vocabulary of every stage: the sample rate, the MP3 frame and its delays, time conversions.

Times inside voiceguide are whole samples at SAMPLE_RATE, so that what is
planned is what is rendered, to the sample. A number a later stage needs
early (the planner puts holds on the MP3 frame grid) lives here, not there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SAMPLE_RATE = 44100
FRAME = 1152  # samples per MPEG-1 Layer III frame
# LAME's delay before the first input sample (in its tag), and the decoder's own; together they
# place input sample n at decoded sample n + DELAY, so frame k carries input from k * FRAME - DELAY.
ENCODER_DELAY = 576
DELAY = ENCODER_DELAY + 529
# Silence kept on each side of a cut: the encoder looks about two frames around the one it makes
# (overlapping transforms, window switching), so frames this far from any sound are plain silent frames.
MARGIN = 4 * FRAME + DELAY
# Bed heard by the encoder before a piece under a bed, whose frames are dropped: LAME's state (the block type
# it chose, the masking it follows from frame to frame) is then that of a LAME that has heard the bed all along.
WARM = 8 * FRAME


def samples(ms: int) -> int:
    """Milliseconds as samples."""
    return round(ms * SAMPLE_RATE / 1000)


def milliseconds(count: int) -> int:
    """Samples as whole milliseconds."""
    return round(count * 1000 / SAMPLE_RATE)


def seconds(count: int) -> float:
    """Samples as seconds, to the millisecond."""
    return round(count / SAMPLE_RATE, 3)


@dataclass(frozen=True)
class Piece:
    """Sound from sample ``start`` for ``length`` samples; silence lies all around it.

    Render cuts a session into pieces and the MP3 writer encodes each on its
    own. ``key`` names a piece's encoded frames in the cache; None keeps them
    out of it (a background bed sounds through the whole session and never repeats).
    """

    start: int
    length: int
    key: str | None


@dataclass(frozen=True)
class Ground:
    """What sounds between the pieces of a session under a background bed: one period of the bed, steady
    (neither faded nor dipped), repeated from the session's first sample.

    ``length`` is a whole number of MP3 frames, so the period starts on the
    same frame boundary each time and its frames, encoded once, can be copied
    as silent frames are. ``pcm`` gives the period as s16le; ``key`` names
    its encoded frames in the cache. Pieces under a ground are encoded with
    the bed around them, not silence (see voiceguide.mp3).
    """

    key: str
    length: int
    pcm: Callable[[], bytes]
